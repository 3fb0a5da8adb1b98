package dev.pgproof.wal;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Acknowledgements of WAL files already durable in the repository, kept in a local spool directory
 * ({@code <spool-path>/<cluster>/ack/<wal file name>}), so that a later {@code archive-push} of the
 * same file can answer at once, even from the launcher without starting a JVM.
 *
 * <p>An ack names the exact file that was stored: "inode size mtime sha256 key", where inode, size
 * and mtime (seconds with nine decimals, as {@code stat -c '%i %s %.9Y'} prints them) are those of
 * the file in pg_wal, identical before and after it was read. It is written only after the stored
 * copy was committed and verified, itself via a temporary file, fsync and rename. A file that
 * differs in any of the three (recycled, rewritten, restored) does not match and is pushed again.
 */
public final class AckSpool {
    private final Path dir;

    public AckSpool(Path spoolPath, String cluster) {
        this.dir = spoolPath.resolve(cluster).resolve("ack");
    }

    public Path dir() {
        return dir;
    }

    /** inode, size and mtime of a file, in the launcher's format. */
    public static String identity(Path file) throws IOException {
        Object ino = Files.getAttribute(file, "unix:ino");
        long size = Files.size(file);
        FileTime t = Files.getLastModifiedTime(file);
        Instant i = t.toInstant();
        return ino + " " + size + " " + i.getEpochSecond() + "." + String.format("%09d", i.getNano());
    }

    /** Records that {@code file}, with the identity it had while it was read, is stored under {@code key}. */
    public void write(String name, String fileIdentity, String sha256, String key) throws IOException {
        Files.createDirectories(dir);
        Path tmp = dir.resolve("." + name + ".tmp." + ProcessHandle.current().pid() + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()));
        try {
            try (FileChannel ch = FileChannel.open(tmp, java.util.Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
                ch.write(java.nio.ByteBuffer.wrap((fileIdentity + " " + sha256 + " " + key + "\n").getBytes(StandardCharsets.UTF_8)));
                ch.force(true);
            }
            Files.move(tmp, dir.resolve(name), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
                d.force(true);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** The stored key if {@code file} is exactly the file acknowledged under its name. */
    public Optional<String> matches(Path file) throws IOException {
        String name = file.getFileName().toString();
        String ack;
        try {
            ack = Files.readString(dir.resolve(name), StandardCharsets.UTF_8).strip();
        } catch (NoSuchFileException e) {
            return Optional.empty();
        }
        String[] f = ack.split(" ");
        if (f.length != 5) {
            return Optional.empty();
        }
        String now;
        try {
            now = identity(file);
        } catch (NoSuchFileException e) {
            return Optional.empty();
        }
        return now.equals(f[0] + " " + f[1] + " " + f[2]) ? Optional.of(f[4]) : Optional.empty();
    }

    /** Removes acks of files no longer in pg_wal (PostgreSQL removed or recycled them). */
    public int prune(Path pgWal) throws IOException {
        if (!Files.isDirectory(dir)) {
            return 0;
        }
        int removed = 0;
        try (var s = Files.list(dir)) {
            for (Path ack : (Iterable<Path>) s::iterator) {
                String n = ack.getFileName().toString();
                boolean staleTmp = n.startsWith(".") && Files.getLastModifiedTime(ack).toInstant().isBefore(Instant.now().minusSeconds(600));
                if (staleTmp || (!n.startsWith(".") && !Files.exists(pgWal.resolve(n)))) {
                    Files.deleteIfExists(ack);
                    removed++;
                }
            }
        }
        return removed;
    }
}
