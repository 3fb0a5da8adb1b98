package dev.pgproof.wal;

import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * archive-get (restore_command): fetches one WAL file, verifies it and writes it atomically.
 * "Not found" (exit 1) only when the repository answered and holds no copy; every other failure
 * exits above 125 so that PostgreSQL stops recovery instead of ending it early.
 */
public final class ArchiveGet {
    private final WalArchive archive;
    private final ClusterIdentity identity;

    /** The system identifier of the backup being recovered, when it is a former identity of the cluster (else null). */
    private final Long recovering;

    public ArchiveGet(WalArchive archive, ClusterIdentity identity) {
        this(archive, identity, null);
    }

    public ArchiveGet(WalArchive archive, ClusterIdentity identity, Long recovering) {
        this.archive = archive;
        this.identity = identity;
        this.recovering = recovering;
    }

    /** A WAL file read from the repository and verified: its content and the stored copy it came from. */
    public record Fetched(byte[] data, WalArchive.StoredWal stored) {}

    /** Returns the stored size fetched; throws PgproofException with NOT_FOUND, GET_FAILED or GET_CORRUPT. */
    public long get(String name, Path dest) {
        Fetched f = fetch(name);
        write(f.data(), dest);
        return f.stored().storedSize();
    }

    /** Reads and verifies one WAL file; throws PgproofException with NOT_FOUND, GET_FAILED or GET_CORRUPT. */
    public Fetched fetch(String name) {
        String cluster = archive.layout().cluster();
        String repo = archive.storage().describe();
        List<WalArchive.StoredWal> copies;
        try {
            copies = archive.find(name);
        } catch (IOException e) {
            throw new PgproofException(ExitCode.GET_FAILED, "could not list repository \"" + repo + "\" for WAL file \"" + name + "\": "
                    + e.getMessage(), "recovery stops here rather than ending early; fix access to the repository and start PostgreSQL again");
        }
        if (copies.isEmpty()) {
            throw new PgproofException(ExitCode.NOT_FOUND, "WAL file \"" + name + "\" is not in repository \"" + repo + "\" for cluster \""
                    + cluster + "\"");
        }
        if (copies.stream().map(WalArchive.StoredWal::sha256).distinct().count() > 1) {
            throw new PgproofException(ExitCode.GET_CORRUPT, "WAL file \"" + name + "\" has " + copies.size()
                    + " different copies in repository \"" + repo + "\" for cluster \"" + cluster + "\"; refusing to choose",
                    "two servers archived under one cluster name; run pgproof verify --cluster " + cluster + " and remove the foreign copy");
        }
        dev.pgproof.util.TestHooks.pause("archive-get-before-read", copies.get(0).key());
        byte[] data;
        try {
            data = archive.readVerified(copies.get(0));
        } catch (WalArchive.CorruptWalException e) {
            throw new PgproofException(ExitCode.GET_CORRUPT, e.getMessage(),
                    "recovery stops here rather than replaying bad WAL; restore the file from another copy of the repository, or restore to a target before it");
        } catch (IOException e) {
            throw new PgproofException(ExitCode.GET_FAILED, "could not read WAL file \"" + copies.get(0).key() + "\" from repository \""
                    + repo + "\": " + e.getMessage(), "recovery stops here rather than ending early; fix access to the repository and start PostgreSQL again");
        }
        WalFileName.Kind kind = WalFileName.kindOf(name);
        if ((kind == WalFileName.Kind.SEGMENT || kind == WalFileName.Kind.PARTIAL)) {
            try {
                WalHeader h = WalHeader.parse(java.util.Arrays.copyOf(data, Math.min(40, data.length)), copies.get(0).key());
                long expected = recovering != null ? recovering : identity.systemIdentifier();
                if (h.systemIdentifier() != expected && (h.systemIdentifier() == identity.systemIdentifier()
                        || formerIdentity(h.systemIdentifier()))) {
                    // After pg_upgrade one cluster name holds WAL of two identities; the other one's is not part of this recovery.
                    throw new PgproofException(ExitCode.NOT_FOUND, "WAL file \"" + name + "\" belongs to system identifier "
                            + Long.toUnsignedString(h.systemIdentifier()) + " of cluster \"" + cluster + "\", not to the identity "
                            + Long.toUnsignedString(expected) + " being recovered: the archive of that identity ends before it");
                }
                if (h.systemIdentifier() != expected) {
                    throw new PgproofException(ExitCode.GET_CORRUPT, "WAL file \"" + name + "\" in repository \"" + repo
                            + "\" belongs to system identifier " + Long.toUnsignedString(h.systemIdentifier()) + ", not to cluster \""
                            + cluster + "\" (system identifier " + identity.systemIdentifierString() + ")",
                            "the archive holds a foreign segment; run pgproof verify --cluster " + cluster);
                }
            } catch (IOException e) {
                throw new PgproofException(ExitCode.GET_CORRUPT, "WAL file \"" + name + "\" in repository \"" + repo
                        + "\" has no valid page header: " + e.getMessage(), "run pgproof verify --cluster " + cluster);
            }
        }
        return new Fetched(data, copies.get(0));
    }

    /** What {@link #getStreamed} served: the partial copy and how many bytes of WAL it holds. */
    public record Streamed(StreamedWal.Partial partial, long walBytes) {}

    /**
     * For a segment the archive does not hold: the longest partial copy wal-receive stored of it,
     * verified, padded with zeros to the segment size (replay stops at the zeros as at the end of WAL).
     * Null when there is none; throws like {@link #fetch} when the repository fails or the copy is bad.
     */
    public Streamed getStreamed(String name, Path dest) {
        if (WalFileName.kindOf(name) != WalFileName.Kind.SEGMENT) {
            return null;
        }
        String repo = archive.storage().describe();
        StreamedWal streamed = new StreamedWal(archive.storage(), archive.layout());
        StreamedWal.Partial p;
        byte[] data;
        try {
            p = streamed.longest(name);
            if (p == null) {
                return null;
            }
            data = streamed.readVerified(p);
        } catch (WalArchive.CorruptWalException e) {
            throw new PgproofException(ExitCode.GET_CORRUPT, e.getMessage(),
                    "recovery stops here rather than replaying bad WAL; restore to a target before it");
        } catch (java.nio.file.NoSuchFileException e) {
            return null; // replaced by a longer copy or by the complete segment between listing and reading; PostgreSQL asks again
        } catch (IOException e) {
            throw new PgproofException(ExitCode.GET_FAILED, "could not read the streamed copy of WAL file \"" + name + "\" from repository \""
                    + repo + "\": " + e.getMessage(), "recovery stops here rather than ending early; fix access to the repository and start PostgreSQL again");
        }
        if (data.length < 40 || data.length > identity.walSegmentSize()) {
            throw new PgproofException(ExitCode.GET_CORRUPT, "streamed copy \"" + p.key() + "\" holds " + data.length + " bytes, not part of a "
                    + identity.walSegmentSize() + "-byte segment", "run pgproof verify --cluster " + archive.layout().cluster());
        }
        try {
            WalHeader h = WalHeader.parse(java.util.Arrays.copyOf(data, 40), p.key());
            long expected = recovering != null ? recovering : identity.systemIdentifier();
            if (h.systemIdentifier() != expected) {
                throw new PgproofException(ExitCode.NOT_FOUND, "WAL file \"" + name + "\": the streamed copy belongs to system identifier "
                        + Long.toUnsignedString(h.systemIdentifier()) + ", not to the identity " + Long.toUnsignedString(expected) + " being recovered");
            }
        } catch (IOException e) {
            throw new PgproofException(ExitCode.GET_CORRUPT, "streamed copy \"" + p.key() + "\" has no valid page header: " + e.getMessage(),
                    "run pgproof verify --cluster " + archive.layout().cluster());
        }
        write(java.util.Arrays.copyOf(data, identity.walSegmentSize()), dest);
        return new Streamed(p, data.length);
    }

    /** Writes a file via a temporary name and a rename, so a reader never sees part of it. */
    static void write(byte[] data, Path dest) {
        Path tmp = dest.resolveSibling(dest.getFileName() + ".pgproof.tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                    StandardOpenOption.WRITE)) {
                java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(data);
                while (b.hasRemaining()) {
                    ch.write(b);
                }
            }
            Files.move(tmp, dest, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // best effort
            }
            throw new PgproofException(ExitCode.GET_FAILED, "could not write \"" + dest + "\": " + e.getMessage(),
                    "check free space and permissions in the data directory");
        }
    }

    /** Whether a system identifier is one this cluster name had before an upgrade (its old backups need its WAL). */
    private boolean formerIdentity(long sysid) {
        for (ClusterIdentity former : dev.pgproof.repo.ClusterInfo.formers(archive.storage(), archive.layout())) {
            if (former.systemIdentifier() == sysid) {
                return true;
            }
        }
        return false;
    }
}
