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

    public ArchiveGet(WalArchive archive, ClusterIdentity identity) {
        this.archive = archive;
        this.identity = identity;
    }

    /** Returns the stored size fetched; throws PgproofException with NOT_FOUND, GET_FAILED or GET_CORRUPT. */
    public long get(String name, Path dest) {
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
                if (h.systemIdentifier() != identity.systemIdentifier()) {
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
        return copies.get(0).storedSize();
    }
}
