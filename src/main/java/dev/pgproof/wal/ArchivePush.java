package dev.pgproof.wal;

import dev.pgproof.io.Compression;
import dev.pgproof.io.Hashes;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import dev.pgproof.util.TestHooks;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.List;

/**
 * archive-push: stores one WAL segment, .partial, timeline history or backup history file, after
 * checking that a segment belongs to the pinned cluster. Exits 0 only when the stored copy is
 * durable and has been read back and verified.
 */
public final class ArchivePush {
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
            throw new PgproofException(ExitCode.WAL_REJECTED, "WAL file \"" + file + "\" does not exist",
                    "archive_command runs in the data directory and passes %p; run it from there or give an absolute path");
        } catch (IOException e) {
            throw new PgproofException(ExitCode.WAL_REJECTED, "could not read WAL file \"" + file + "\": " + e.getMessage(),
                    "check the file's permissions: archive-push runs as the cluster owner");
        }
        String sha = Hashes.hex(md.digest());
        if (kind == WalFileName.Kind.SEGMENT || kind == WalFileName.Kind.PARTIAL) {
            checkSegment(file.toString(), name, size, head, headLen);
        }
        return store(name, sha, size, () -> Files.newInputStream(file));
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
        String sha = Hashes.sha256Hex(data);
        if (kind == WalFileName.Kind.SEGMENT || kind == WalFileName.Kind.PARTIAL) {
            checkSegment(source, name, data.length, java.util.Arrays.copyOf(data, Math.min(40, data.length)), Math.min(40, data.length));
        }
        return store(name, sha, data.length, () -> new java.io.ByteArrayInputStream(data));
    }

    /** Where the content to store comes from (opened again for the write, after the checksum pass). */
    private interface Source {
        InputStream open() throws IOException;
    }

    private Result store(String name, String sha, long size, Source source) {
        List<WalArchive.StoredWal> existing = find(name);
        if (!existing.isEmpty()) {
            return sameOrFail(name, sha, existing, size);
        }

        String key = archive.layout().walKey(name, sha, compression);
        Storage storage = archive.storage();
        long stored;
        try (Storage.Writer w = storage.create(key)) {
            dev.pgproof.io.CountingOutputStream counter = new dev.pgproof.io.CountingOutputStream(w.stream());
            try (InputStream in = source.open(); OutputStream z = compression.compress(dev.pgproof.io.Streams.nonClosing(counter), level)) {
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
            throw new PgproofException(ExitCode.REPOSITORY, "could not store WAL file \"" + name + "\" in repository \""
                    + storage.describe() + "\": " + e.getMessage(),
                    "check free space and permissions of the repository; PostgreSQL keeps the segment and retries");
        }
        // Re-check what was stored: read it back, decompress, compare the checksum.
        try {
            WalArchive.StoredWal mine = new WalArchive.StoredWal(key, name, sha, compression, stored);
            if (archive.copyVerified(mine, OutputStream.nullOutputStream()) != size) {
                throw new IOException("stored object \"" + key + "\" has the wrong size after decompression");
            }
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "WAL file \"" + name + "\" failed verification after it was stored: "
                    + e.getMessage(), "the repository may be failing; check its storage. PostgreSQL keeps the segment and retries");
        }
        return new Result(name, false, size, stored, key);
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
            h = WalHeader.parse(java.util.Arrays.copyOf(head, headLen), file.toString());
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
