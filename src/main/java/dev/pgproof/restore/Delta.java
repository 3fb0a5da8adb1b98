package dev.pgproof.restore;

import dev.pgproof.cluster.PgControl;
import dev.pgproof.cluster.PostmasterPid;
import dev.pgproof.io.Hashes;
import dev.pgproof.repo.BackupManifest;
import dev.pgproof.storage.PosixStorage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;

/**
 * A delta restore: over a stopped data directory of the same cluster, every file of the backup is
 * read and compared piece by piece with the checksum the manifest records (never by size or time);
 * only the pieces that differ are fetched, and only their 8 KiB blocks that differ are written.
 * What the backup does not hold is removed, so the result is what a restore into an empty directory
 * gives. While it runs, {@value #MARKER} stands in for global/pg_control (removed first, written
 * last), so a directory left half-done cannot start, and a second --delta recognises it.
 */
final class Delta {
    /** Present while a delta restore has the directory in pieces; names the cluster it belongs to. */
    static final String MARKER = "pgproof_delta_restore.in_progress";
    private static final int BLOCK = 8192;
    private static final Pattern TABLESPACE_LINK = Pattern.compile("pg_tblspc/(\\d+)");

    /** Counters of one delta restore, filled in by the file jobs. */
    static final class Stats {
        final AtomicLong checked = new AtomicLong();
        final AtomicLong checkedBytes = new AtomicLong();
        final AtomicLong rewritten = new AtomicLong();
        final AtomicLong created = new AtomicLong();
        final AtomicLong writtenBytes = new AtomicLong();
        final AtomicLong fetchedBytes = new AtomicLong();
        long removedFiles;
        long removedDirs;
        long removedBytes;
    }

    private Delta() {}

    /**
     * Refuses what --delta must never touch: a file that is not a directory, a running server's
     * directory. A missing directory passes (a normal restore follows).
     */
    static void checkTarget(Path target) {
        if (!Files.exists(target)) {
            return;
        }
        if (!Files.isDirectory(target)) {
            throw new PgproofException(ExitCode.RESTORE_FAILED, "restore target \"" + target + "\" exists and is not a directory",
                    "give --pgdata the data directory to restore over, or a new directory");
        }
        long pid;
        int port = -1;
        try {
            PostmasterPid p = PostmasterPid.read(target);
            if (p == null) {
                return;
            }
            pid = p.pid();
            port = p.port();
        } catch (IOException e) {
            // malformed or still being written: a server may be starting; judge by the pid on its first line
            try {
                List<String> lines = Files.readAllLines(target.resolve("postmaster.pid"));
                pid = lines.isEmpty() ? -1 : Long.parseLong(lines.get(0).trim());
            } catch (IOException | NumberFormatException e2) {
                return;
            }
        }
        if (pid > 0 && ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
            throw new PgproofException(ExitCode.RESTORE_FAILED, "restore target \"" + target + "\" is the data directory of a running server (pid "
                    + pid + (port >= 0 ? ", port " + port : "") + ")",
                    "stop it first (pg_ctl stop -D " + target + "), then run restore --delta again",
                    "if no server runs there, another process has taken the pid: remove the stale postmaster.pid");
        }
    }

    /**
     * Whether the restore works over what the directory holds (true), or the directory is missing or
     * empty (false: a normal restore). Refuses another cluster's directory, one whose identity cannot
     * be read, and one whose pg_wal holds WAL that was never archived.
     */
    static boolean applies(Path target, BackupManifest m, String cluster) {
        try {
            if (!Files.exists(target)) {
                return false;
            }
            try (var s = Files.list(target)) {
                if (s.findAny().isEmpty()) {
                    return false;
                }
            }
            String theirs;
            String source;
            Path control = target.resolve("global/pg_control");
            if (Files.exists(control)) {
                try {
                    theirs = Long.toUnsignedString(PgControl.read(target).systemIdentifier());
                } catch (IOException | RuntimeException e) {
                    throw new PgproofException(ExitCode.RESTORE_FAILED, "restore target \"" + target + "\": global/pg_control cannot be read ("
                            + e.getMessage() + ")", "pgproof cannot tell which cluster the directory belongs to and leaves it alone",
                            "restore into a new directory, or remove \"" + target + "\" and restore without --delta");
                }
                source = "its global/pg_control";
            } else if (Files.exists(target.resolve(MARKER))) {
                theirs = markerIdentity(target.resolve(MARKER));
                source = "the unfinished delta restore it holds (" + MARKER + ")";
            } else {
                throw new PgproofException(ExitCode.RESTORE_FAILED, "restore target \"" + target + "\" is not empty and has no global/pg_control",
                        "pgproof cannot tell which cluster its files belong to, so --delta leaves them alone",
                        "restore into a new directory, or remove \"" + target + "\" and restore without --delta");
            }
            if (!m.systemIdentifier().equals(theirs)) {
                throw new PgproofException(ExitCode.IDENTITY, "restore target \"" + target + "\" holds another cluster's data: " + source
                        + " says system identifier " + theirs + ", backup " + m.label() + " of cluster \"" + cluster + "\" is of system identifier "
                        + m.systemIdentifier(), "--delta only restores over a copy of the same cluster; check --pgdata and --cluster",
                        "to replace that directory, remove it and restore without --delta (its data is lost), or restore into a new directory");
            }
            Path status = target.resolve("pg_wal/archive_status");
            if (Files.isDirectory(status)) {
                List<String> ready = new ArrayList<>();
                try (var s = Files.list(status)) {
                    s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".ready")).sorted().forEach(ready::add);
                }
                if (!ready.isEmpty()) {
                    throw new PgproofException(ExitCode.RESTORE_FAILED, "restore target \"" + target + "\": " + ready.size()
                            + " WAL file(s) in pg_wal were never archived (first " + ready.get(0).replace(".ready", "")
                            + "), and a delta restore would remove them", "start the server and let it archive them (pgproof check --cluster "
                                    + cluster + " confirms it), then stop it and run restore --delta again",
                            "or, if that WAL is not needed, move it away and remove the .ready files in pg_wal/archive_status");
                }
            }
            return true;
        } catch (IOException e) {
            throw new PgproofException(ExitCode.RESTORE_FAILED, "cannot read restore target \"" + target + "\": " + e.getMessage(),
                    "check its permissions");
        }
    }

    private static String markerIdentity(Path marker) throws IOException {
        for (String line : Files.readAllLines(marker, StandardCharsets.UTF_8)) {
            if (line.startsWith("system_identifier = ")) {
                return line.substring("system_identifier = ".length()).strip();
            }
        }
        throw new PgproofException(ExitCode.RESTORE_FAILED, "\"" + marker + "\" names no system identifier",
                "pgproof cannot tell which cluster the directory belongs to; remove it and restore without --delta");
    }

    /**
     * Makes the directory unstartable until the restore is complete: the marker first (durable), then
     * global/pg_control goes. Both are rewritten at the end.
     */
    static void begin(Path target, BackupManifest m) throws IOException {
        Path marker = target.resolve(MARKER);
        String text = "# pgproof restore --delta is rewriting this data directory; global/pg_control is written last.\n"
                + "# While this file is here, the directory is incomplete: run pgproof restore --delta again.\n"
                + "system_identifier = " + m.systemIdentifier() + "\n" + "backup = " + m.label() + "\n" + "started = " + Instant.now() + "\n";
        Path tmp = target.resolve(MARKER + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            ch.write(ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8)));
            ch.force(true);
        }
        Files.move(tmp, marker, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        PosixStorage.fsyncDir(target);
        Path control = target.resolve("global/pg_control");
        if (Files.deleteIfExists(control)) {
            PosixStorage.fsyncDir(control.getParent());
        }
    }

    /**
     * The restore is complete and durable (Restore.run has fsync'd every file and directory, pg_control
     * last): the marker goes.
     */
    static void finish(Path target) throws IOException {
        Files.deleteIfExists(target.resolve(MARKER));
        PosixStorage.fsyncDir(target);
    }

    /** Whether pg_tblspc/OID of the directory is a link to loc already (its tablespace, restored over in place). */
    static boolean linkedTo(Path target, int oid, Path loc) {
        Path link = target.resolve("pg_tblspc/" + oid);
        try {
            return Files.isSymbolicLink(link) && Files.exists(loc) && link.toRealPath().equals(loc.toRealPath());
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Removes from the data directory and the tablespace locations every file, link and directory the
     * backup does not have (pg_tblspc/OID links of the backup's tablespaces stay; {@link Restore} points
     * them). A link of a tablespace the backup does not have goes; its directory is left as it is.
     */
    static void removeStrays(Set<String> files, List<BackupManifest.Directory> directories, Path target, Map<Integer, Path> tablespaces,
            Stats st) throws IOException {
        Set<String> dirs = new HashSet<>();
        for (BackupManifest.Directory d : directories) {
            dirs.add(d.path());
        }
        sweep(target.toRealPath(), "", files, dirs, tablespaces, st);
        for (Map.Entry<Integer, Path> t : tablespaces.entrySet()) {
            sweep(t.getValue().toRealPath(), "pg_tblspc/" + t.getKey() + "/", files, dirs, tablespaces, st);
        }
    }

    private static void sweep(Path root, String prefix, Set<String> files, Set<String> dirs, Map<Integer, Path> tablespaces, Stats st)
            throws IOException {
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) throws IOException {
                if (dir.equals(root)) {
                    return FileVisitResult.CONTINUE;
                }
                String rel = prefix + root.relativize(dir).toString();
                if (dirs.contains(rel)) {
                    return FileVisitResult.CONTINUE;
                }
                Log.debug("delta restore: removing directory %s (not in the backup)", rel);
                removeTree(dir, st);
                return FileVisitResult.SKIP_SUBTREE;
            }

            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                String rel = prefix + root.relativize(file).toString();
                if (prefix.isEmpty() && (rel.equals(MARKER))) {
                    return FileVisitResult.CONTINUE;
                }
                if (attrs.isRegularFile() && files.contains(rel)) {
                    return FileVisitResult.CONTINUE;
                }
                var link = TABLESPACE_LINK.matcher(rel);
                if (prefix.isEmpty() && attrs.isSymbolicLink() && link.matches()) {
                    int oid = Integer.parseInt(link.group(1));
                    if (tablespaces.containsKey(oid)) {
                        return FileVisitResult.CONTINUE;
                    }
                    Log.warn("delta restore: tablespace %d is not in the backup: link %s removed, its directory \"%s\" is left as it is", oid, rel,
                            Files.readSymbolicLink(file));
                }
                Log.debug("delta restore: removing %s (not in the backup)", rel);
                st.removedBytes += attrs.isRegularFile() ? attrs.size() : 0;
                Files.delete(file);
                st.removedFiles++;
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFileFailed(Path file, IOException exc) throws IOException {
                if (exc instanceof NoSuchFileException) {
                    return FileVisitResult.CONTINUE;
                }
                throw exc;
            }
        });
    }

    private static void removeTree(Path top, Stats st) throws IOException {
        Files.walkFileTree(top, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                st.removedBytes += attrs.isRegularFile() ? attrs.size() : 0;
                Files.delete(file);
                st.removedFiles++;
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path dir, IOException exc) throws IOException {
                if (exc != null) {
                    throw exc;
                }
                Files.delete(dir);
                st.removedDirs++;
                return FileVisitResult.CONTINUE;
            }
        });
    }

    /** A piece's bytes: bytes[from, from + the piece's size). */
    record Piece(byte[] bytes, int from) {}

    /** Where a piece's bytes come from: the repository's objects, already checked against the piece's checksum. */
    interface Fetcher {
        Piece fetch(BackupManifest.FileEntry f, BackupManifest.Chunk c);
    }

    /**
     * Brings pieces [from, to) of a file (in file order, covering their range) to the backup's content: each is read
     * from the file and compared with the backup by {@link BackupManifest.Chunk#sameCheck()} (its CRC-32C and XXH64; a
     * piece of an older backup by its strongest checksum); a piece that differs is fetched (checked against its checksum) and only its 8 KiB
     * blocks that differ are written. Returns the bytes written. Parts of one file may run on several jobs at once;
     * {@link #finish} ends the file.
     */
    static long pieces(BackupManifest.FileEntry f, FileChannel ch, int from, int to, boolean existed, Fetcher fetcher, byte[][] buffer,
            Stats st, dev.pgproof.util.Progress progress) throws IOException {
        long written = 0;
        for (int i = from; i < to; i++) {
            BackupManifest.Chunk c = f.chunks().get(i);
            int len = (int) c.size();
            if (buffer[0].length < len) {
                buffer[0] = new byte[len];
            }
            byte[] cur = buffer[0];
            int got = existed ? readAt(ch, c.offset(), cur, len) : 0;
            if (got != len || !c.sameCheck().matches(cur, 0, got)) {
                Piece piece = fetcher.fetch(f, c);
                byte[] obj = piece.bytes();
                int at0 = piece.from();
                for (int b = 0; b < len;) {
                    int n = Math.min(BLOCK, len - b);
                    if (b + n <= got && Arrays.equals(cur, b, b + n, obj, at0 + b, at0 + b + n)) {
                        b += n;
                        continue;
                    }
                    int end = b + n; // coalesce a run of differing blocks into one write
                    while (end < len) {
                        int k = Math.min(BLOCK, len - end);
                        if (end + k <= got && Arrays.equals(cur, end, end + k, obj, at0 + end, at0 + end + k)) {
                            break;
                        }
                        end += k;
                    }
                    ByteBuffer bb = ByteBuffer.wrap(obj, at0 + b, end - b);
                    long at = c.offset() + b;
                    while (bb.hasRemaining()) {
                        at += ch.write(bb, at);
                    }
                    written += end - b;
                    b = end;
                }
            }
            progress.addBytes(len);
            st.checkedBytes.addAndGet(len);
        }
        st.writtenBytes.addAndGet(written);
        return written;
    }

    /** What gives a finished file the backup's mode and time; whether that changed either. */
    interface Settle {
        boolean apply() throws IOException;
    }

    /**
     * Ends a file all of whose pieces were brought to the backup's content: cut to the backup's size (a longer file), then
     * checked to have it, given the backup's mode and time by {@code settle} (after the file's last write: a truncation
     * sets its time too), and fsync'd when anything changed, its mode or time included, so that they are as durable as
     * the content; counted. Each piece was checked as it was read or fetched, and the pieces cover the file: the file is
     * then the backup's without hashing it whole again. {@code written}: the bytes its parts wrote. Returns whether the
     * file's content changed.
     */
    static boolean finish(BackupManifest.FileEntry f, FileChannel ch, boolean existed, long written, Stats st,
            java.util.function.Function<String, PgproofException> corrupt, Settle settle) throws IOException {
        boolean changed = !existed || written > 0;
        if (ch.size() > f.size()) {
            ch.truncate(f.size());
            changed = true;
        }
        if (ch.size() != f.size()) {
            throw corrupt.apply("restored content has " + ch.size() + " bytes, the manifest says " + f.size());
        }
        boolean metadata = settle.apply();
        if (changed || metadata) {
            ch.force(true);
        }
        st.checked.incrementAndGet();
        if (!existed) {
            st.created.incrementAndGet();
        } else if (changed) {
            st.rewritten.incrementAndGet();
            Log.debug("delta restore: %s rewritten (%d bytes written)", f.path(), written);
        }
        return changed;
    }

    /** Reads up to len bytes at pos; fewer at the end of the file. */
    private static int readAt(FileChannel ch, long pos, byte[] into, int len) throws IOException {
        ByteBuffer bb = ByteBuffer.wrap(into, 0, len);
        while (bb.hasRemaining()) {
            int r = ch.read(bb, pos + bb.position());
            if (r < 0) {
                break;
            }
        }
        return bb.position();
    }
}
