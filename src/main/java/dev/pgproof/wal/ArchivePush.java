package dev.pgproof.wal;

import dev.pgproof.io.Compression;
import dev.pgproof.io.Hashes;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import dev.pgproof.util.TestHooks;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * archive-push: stores one WAL segment, .partial, timeline history or backup history file, after
 * checking that a segment belongs to the pinned cluster. Exits 0 only when the stored copy is
 * durable and has been read back and verified.
 */
public final class ArchivePush {
    /** Files up to this size (every usual WAL segment size) are pushed from memory in one read. */
    static final long IN_MEMORY_MAX = 64L << 20;
    private final WalArchive archive;
    private final ClusterIdentity identity;
    private final Compression compression;
    private final int level;

    public ArchivePush(WalArchive archive, ClusterIdentity identity, Compression compression, int level) {
        this.archive = archive;
        this.identity = identity;
        this.compression = compression;
        this.level = level;
    }

    /** Result of a push, for the caller's one-line report. */
    public record Result(String name, boolean alreadyStored, long size, long storedSize, String key) {}

    public Result push(Path file) {
        String name = file.getFileName().toString();
        String cluster = archive.layout().cluster();
        WalFileName.Kind kind;
        try {
            kind = WalFileName.kindOf(name);
        } catch (IllegalArgumentException e) {
            throw new PgproofException(ExitCode.WAL_REJECTED, "\"" + file + "\" is not a WAL segment, .partial, .history or .backup file name",
                    "archive_command passes %p, the path of the file to archive: archive_command = 'pgproof archive-push --cluster "
                            + cluster + " %p'");
        }
        long fileSize;
        try {
            fileSize = Files.size(file);
        } catch (NoSuchFileException e) {
            throw missing(file);
        } catch (IOException e) {
            throw unreadable(file, e);
        }
        if (fileSize <= IN_MEMORY_MAX) {
            CompletableFuture<List<WalArchive.StoredWal>> listing = CompletableFuture.supplyAsync(() -> find(name), Background.POOL);
            byte[] data;
            try {
                data = Files.readAllBytes(file);
            } catch (NoSuchFileException e) {
                throw missing(file);
            } catch (IOException e) {
                throw unreadable(file, e);
            }
            Log.timing("segment read");
            return pushInMemory(name, kind, data, file.toString(), listing);
        }
        // A large segment (initdb --wal-segsize up to 1 GiB) is streamed in three passes.
        // Pass 1: checksum, size and (for segments) the page header.
        byte[] head = new byte[40];
        int headLen = 0;
        long size = 0;
        MessageDigest md = Hashes.sha256();
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) > 0) {
                if (headLen < head.length) {
                    int take = Math.min(n, head.length - headLen);
                    System.arraycopy(buf, 0, head, headLen, take);
                    headLen += take;
                }
                md.update(buf, 0, n);
                size += n;
            }
        } catch (NoSuchFileException e) {
            throw missing(file);
        } catch (IOException e) {
            throw unreadable(file, e);
        }
        String sha = Hashes.hex(md.digest());
        if (kind == WalFileName.Kind.SEGMENT || kind == WalFileName.Kind.PARTIAL) {
            checkSegment(file.toString(), name, size, head, headLen);
        }
        return storeLarge(file, name, sha, size);
    }

    /**
     * Stores WAL content held in memory (a segment wal-receive assembled from the stream, or a
     * timeline history file it fetched) with the same checks, no-replace rule and read-back as a file.
     */
    public Result push(String name, byte[] data, String source) {
        WalFileName.Kind kind;
        try {
            kind = WalFileName.kindOf(name);
        } catch (IllegalArgumentException e) {
            throw new PgproofException(ExitCode.WAL_REJECTED, "\"" + name + "\" is not a WAL segment, .partial, .history or .backup file name");
        }
        return pushInMemory(name, kind, data, source, CompletableFuture.supplyAsync(() -> find(name), Background.POOL));
    }

    /** Stores a segment too large to hold in memory: read again for the write, after the checksum pass. */
    private Result storeLarge(Path file, String name, String sha, long size) {
        List<WalArchive.StoredWal> existing = find(name);
        if (!existing.isEmpty()) {
            return sameOrFail(name, sha, existing, size);
        }

        String key = archive.layout().walKey(name, sha, compression);
        Storage storage = archive.storage();
        long stored;
        try (Storage.Writer w = storage.create(key)) {
            dev.pgproof.io.CountingOutputStream counter = new dev.pgproof.io.CountingOutputStream(w.stream());
            try (InputStream in = Files.newInputStream(file); OutputStream z = compression.compress(dev.pgproof.io.Streams.nonClosing(counter), level)) {
                in.transferTo(z);
            }
            stored = counter.count();
            TestHooks.pause("archive-push-before-commit", "temporary file written for " + key);
            try {
                w.commit(true);
            } catch (FileAlreadyExistsException e) {
                // A concurrent push of the same content stored it first: that is success.
                return new Result(name, true, size, stored, key);
            }
        } catch (IOException e) {
            throw storeFailed(name, storage, e);
        }
        // Re-check what was stored: read it back, decompress, compare the checksum.
        try {
            WalArchive.StoredWal mine = new WalArchive.StoredWal(key, name, sha, compression, stored);
            if (archive.copyVerified(mine, OutputStream.nullOutputStream()) != size) {
                throw new IOException("stored object \"" + key + "\" has the wrong size after decompression");
            }
        } catch (IOException e) {
            throw verificationFailed(name, storage, key, e);
        }
        return new Result(name, false, size, stored, key);
    }

    /**
     * The path for segments of the usual sizes: the repository is listed (a round trip on S3) while
     * the file is read once (or for wal-receive, the content is already in memory), then its SHA-256
     * is computed on a second thread while this one compresses. The stored object is read back and
     * compared byte for byte with what was written, and the compressed copy is decompressed and
     * compared with the content, so what is stored is known to
     * decompress to content with the SHA-256 in its name; as strong as re-hashing the stored copy.
     */
    private Result pushInMemory(String name, WalFileName.Kind kind, byte[] data, String source,
            CompletableFuture<List<WalArchive.StoredWal>> listing) {
        if (kind == WalFileName.Kind.SEGMENT || kind == WalFileName.Kind.PARTIAL) {
            checkSegment(source, name, data.length, data, Math.min(data.length, 40));
        }
        CompletableFuture<String> hashing = CompletableFuture.supplyAsync(() -> Hashes.hex(Hashes.sha256().digest(data)), Background.POOL);
        List<WalArchive.StoredWal> existing = join(listing);
        if (!existing.isEmpty()) {
            return sameOrFail(name, join(hashing), existing, data.length);
        }
        byte[] packed;
        try {
            ByteArrayOutputStream buf = new ByteArrayOutputStream(Math.max(1024, data.length / 4));
            try (OutputStream z = compression.compress(buf, level)) {
                z.write(data);
            }
            packed = buf.toByteArray();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("compressing in memory failed (a bug)", e);
        }
        Log.timing("compressed to %d bytes", packed.length);
        String sha = join(hashing);
        String key = archive.layout().walKey(name, sha, compression);
        Storage storage = archive.storage();
        // Meanwhile, prove that the compressed copy decompresses to the file.
        CompletableFuture<Boolean> roundTrip = CompletableFuture.supplyAsync(() -> decompressesTo(packed, data), Background.POOL);
        try (Storage.Writer w = storage.create(key)) {
            w.stream().write(packed);
            TestHooks.pause("archive-push-before-commit", "temporary file written for " + key);
            try {
                w.commit(true);
                Log.timing("stored, fsync'd");
            } catch (FileAlreadyExistsException e) {
                // A concurrent push of the same content stored it first: that is success.
                return new Result(name, true, data.length, packed.length, key);
            }
        } catch (IOException e) {
            throw storeFailed(name, storage, e);
        }
        try {
            if (!join(roundTrip)) {
                throw new IOException(compression.id + " compression of \"" + source + "\" does not decompress to the file");
            }
            byte[] back;
            try (InputStream in = storage.open(key)) {
                back = in.readAllBytes();
            }
            if (!Arrays.equals(back, packed)) {
                throw new IOException("stored object \"" + key + "\" reads back different from what was written (" + back.length
                        + " bytes, " + packed.length + " written)");
            }
        } catch (IOException e) {
            throw verificationFailed(name, storage, key, e);
        }
        Log.timing("read back and verified");
        return new Result(name, false, data.length, packed.length, key);
    }

    /**
     * The object under its final name is not what it must be: it is taken away, so that PostgreSQL's
     * retry stores it again instead of finding it "already stored".
     */
    private static PgproofException verificationFailed(String name, Storage storage, String key, IOException e) {
        String removed;
        try {
            storage.delete(key);
            removed = "the stored copy was removed";
        } catch (IOException | RuntimeException d) {
            removed = "the stored copy could not be removed (" + d.getMessage() + "): remove \"" + key + "\" by hand";
        }
        return new PgproofException(ExitCode.REPOSITORY, "WAL file \"" + name + "\" failed verification after it was stored: "
                + e.getMessage() + "; " + removed, "the repository may be failing; check its storage. PostgreSQL keeps the segment and retries");
    }

    private PgproofException storeFailed(String name, Storage storage, IOException e) {
        String cluster = archive.layout().cluster();
        if (e instanceof dev.pgproof.storage.RepositoryFullException full) {
            return new PgproofException(ExitCode.REPOSITORY, "repository \"" + storage.describe() + "\" is full: could not store WAL file \""
                    + name + "\" for cluster \"" + cluster + "\" (" + full.reason() + ")",
                    "nothing was stored; PostgreSQL keeps the segment in pg_wal and retries, so pg_wal grows until the repository has room",
                    "free space: pgproof expire --cluster " + cluster + " removes what the retention policy no longer keeps; or enlarge the file system");
        }
        return new PgproofException(ExitCode.REPOSITORY, "could not store WAL file \"" + name + "\" in repository \""
                + storage.describe() + "\": " + e.getMessage(),
                "check free space and permissions of the repository; PostgreSQL keeps the segment and retries");
    }

    private boolean decompressesTo(byte[] packed, byte[] data) {
        try (InputStream in = compression.decompress(new ByteArrayInputStream(packed))) {
            byte[] got = in.readNBytes(data.length + 1);
            return Arrays.equals(got, data);
        } catch (IOException e) {
            return false;
        }
    }

    private static <T> T join(CompletableFuture<T> f) {
        try {
            return f.join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw e;
        }
    }

    private static PgproofException missing(Path file) {
        return new PgproofException(ExitCode.WAL_REJECTED, "WAL file \"" + file + "\" does not exist",
                "archive_command runs in the data directory and passes %p; run it from there or give an absolute path");
    }

    private static PgproofException unreadable(Path file, IOException e) {
        return new PgproofException(ExitCode.WAL_REJECTED, "could not read WAL file \"" + file + "\": " + e.getMessage(),
                "check the file's permissions: archive-push runs as the cluster owner");
    }

    /** Daemon threads for the work a push overlaps with its own; never keeps the JVM alive. */
    private static final class Background {
        static final ExecutorService POOL = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "archive-push");
            t.setDaemon(true);
            return t;
        });
    }

    private void checkSegment(String file, String name, long size, byte[] head, int headLen) {
        String cluster = archive.layout().cluster();
        if (size != identity.walSegmentSize()) {
            throw new PgproofException(ExitCode.WAL_REJECTED, "WAL file \"" + file + "\" is " + size + " bytes, but cluster \"" + cluster
                    + "\" has " + identity.walSegmentSize() + "-byte WAL segments; refusing a truncated or foreign file",
                    "archive only complete segments from pg_wal; nothing was stored");
        }
        WalHeader h;
        try {
            h = WalHeader.parse(java.util.Arrays.copyOf(head, headLen), file);
        } catch (IOException e) {
            throw new PgproofException(ExitCode.WAL_REJECTED, "WAL file \"" + file + "\" has no valid page header: " + e.getMessage(),
                    "this is not a WAL segment of PostgreSQL " + identity.pgVersion() + "; nothing was stored");
        }
        if (h.systemIdentifier() != identity.systemIdentifier()) {
            throw new PgproofException(ExitCode.IDENTITY, "WAL file \"" + file + "\" belongs to system identifier "
                    + Long.toUnsignedString(h.systemIdentifier()) + ", but cluster \"" + cluster + "\" in repository \""
                    + archive.storage().describe() + "\" is pinned to system identifier " + identity.systemIdentifierString(),
                    "this server's archive_command names the wrong cluster: give it the --cluster (and --repo) initialised for this server",
                    "see which clusters a repository holds with: pgproof info --repo " + archive.storage().location());
        }
        Integer major = h.majorVersion();
        if (major == null || major != identity.pgVersion() || h.segmentSize() != identity.walSegmentSize()) {
            throw new PgproofException(ExitCode.IDENTITY, "WAL file \"" + file + "\" was written by PostgreSQL "
                    + (major == null ? "(unknown magic " + Integer.toHexString(h.magic()) + ")" : major) + " with " + h.segmentSize()
                    + "-byte segments, but cluster \"" + cluster + "\" is pinned to PostgreSQL " + identity.pgVersion() + " with "
                    + identity.walSegmentSize() + "-byte segments",
                    "after pg_upgrade: pgproof init --upgrade --cluster " + cluster + " --pgdata <the upgraded data directory>");
        }
        long expected = WalFileName.segmentNumber(name.substring(0, 24), identity.walSegmentSize()) * identity.walSegmentSize();
        if (h.pageAddress() != expected || Integer.compareUnsigned(h.timeline(), WalFileName.timeline(name)) > 0) {
            throw new PgproofException(ExitCode.WAL_REJECTED, "WAL file \"" + file + "\" does not match its name: its first page is at "
                    + WalFileName.formatLsn(h.pageAddress()) + " on timeline " + h.timeline(),
                    "the file was renamed or damaged; nothing was stored");
        }
    }

    private List<WalArchive.StoredWal> find(String name) {
        try {
            return archive.find(name);
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not list repository \"" + archive.storage().describe() + "\": "
                    + e.getMessage(), "check that the repository is mounted and readable by the cluster owner");
        }
    }

    private Result sameOrFail(String name, String sha, List<WalArchive.StoredWal> existing, long size) {
        for (WalArchive.StoredWal w : existing) {
            if (!w.sha256().equals(sha)) {
                throw new PgproofException(ExitCode.WAL_REJECTED, "WAL file \"" + name + "\" is already archived for cluster \""
                        + archive.layout().cluster() + "\" with different content (stored SHA-256 " + w.sha256().substring(0, 16)
                        + "..., this file " + sha.substring(0, 16) + "...)",
                        "the stored copy was left untouched; if two servers archive under one --cluster name, give each its own",
                        "inspect the archive with: pgproof info --cluster " + archive.layout().cluster());
            }
        }
        Log.debug("WAL file %s already stored with identical content", name);
        WalArchive.StoredWal w = existing.get(0);
        return new Result(name, true, size, w.storedSize(), w.key());
    }
}
