package dev.pgproof.backup;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Lists what a base backup copies from a data directory and its tablespaces, leaving out what
 * PostgreSQL's documentation says to leave out (see docs/repository-format.md).
 */
public final class DataDirScanner {
    /** Directories kept empty in a backup. */
    static final Set<String> EMPTIED = Set.of("pg_wal", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots",
            "pg_stat_tmp", "pg_subtrans");
    /** Files left out at the top of the data directory. */
    static final Set<String> TOP_EXCLUDED = Set.of("postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map",
            "backup_manifest", "recovery.signal", "standby.signal");
    private static final Pattern TEMP_REL = Pattern.compile("t\\d+_\\d+(_(fsm|vm|init))?(\\.\\d+)?");
    private static final Pattern REL_FILE = Pattern.compile("(\\d+)(_(fsm|vm|init))?(\\.\\d+)?");

    /** A file to copy: its path in the backup ('/'-separated, tablespaces under pg_tblspc/OID/). */
    public record SourceFile(String path, Path source, long size, long mtimeMillis, String mode) {}

    /** The result of a scan. */
    public record Scan(List<SourceFile> files, List<String[]> directories) {}

    private DataDirScanner() {}

    /** Scans pgdata and the tablespaces (OID to location). */
    public static Scan scan(Path pgdata, Map<Integer, Path> tablespaces) throws IOException {
        List<SourceFile> files = new ArrayList<>();
        List<String[]> dirs = new ArrayList<>();
        walk(pgdata, "", true, files, dirs);
        for (Map.Entry<Integer, Path> t : tablespaces.entrySet()) {
            walk(t.getValue(), "pg_tblspc/" + t.getKey() + "/", false, files, dirs);
        }
        return new Scan(files, dirs);
    }

    private static void walk(Path root, String prefix, boolean isDataDir, List<SourceFile> files, List<String[]> dirs) throws IOException {
        Set<String> unloggedDirs = new HashSet<>();
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) throws IOException {
                String rel = rel(root, dir);
                String name = dir.getFileName() == null ? "" : dir.getFileName().toString();
                if (!rel.isEmpty() && name.startsWith("pgsql_tmp")) {
                    return FileVisitResult.SKIP_SUBTREE;
                }
                if (isDataDir && rel.equals("pg_tblspc")) {
                    dirs.add(new String[] {prefix + rel, mode(dir)});
                    return FileVisitResult.SKIP_SUBTREE; // tablespaces are walked on their own
                }
                if (!rel.isEmpty()) {
                    dirs.add(new String[] {prefix + rel, mode(dir)});
                }
                if (isDataDir && EMPTIED.contains(rel)) {
                    if (rel.equals("pg_wal")) {
                        dirs.add(new String[] {"pg_wal/archive_status", "0700"});
                    }
                    return FileVisitResult.SKIP_SUBTREE;
                }
                if (rel.startsWith("base/") || rel.matches("PG_\\d+_\\d+/\\d+") || rel.equals("global")) {
                    markUnlogged(dir, rel, unloggedDirs);
                }
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                if (!attrs.isRegularFile()) {
                    return FileVisitResult.CONTINUE;
                }
                String rel = rel(root, file);
                String name = file.getFileName().toString();
                if (isDataDir && TOP_EXCLUDED.contains(rel)) {
                    return FileVisitResult.CONTINUE;
                }
                if (name.equals("pg_internal.init") || name.endsWith(".tmp") || name.startsWith("pgsql_tmp")
                        || TEMP_REL.matcher(name).matches()) {
                    return FileVisitResult.CONTINUE;
                }
                String parent = file.getParent() == null ? "" : rel(root, file.getParent());
                if (unloggedDirs.contains(parent + "/" + relNode(name)) && !name.endsWith("_init") && !name.contains("_init.")) {
                    return FileVisitResult.CONTINUE;
                }
                files.add(new SourceFile(prefix + rel, file, attrs.size(), attrs.lastModifiedTime().toMillis(), mode(file)));
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFileFailed(Path file, IOException exc) throws IOException {
                if (exc instanceof NoSuchFileException) {
                    return FileVisitResult.CONTINUE; // vanished during the scan: WAL replay recreates what matters
                }
                throw exc;
            }
        });
    }

    /** Records the relfilenodes of unlogged relations (those with an _init fork) in a database directory. */
    private static void markUnlogged(Path dir, String rel, Set<String> unlogged) throws IOException {
        try (var s = Files.list(dir)) {
            s.forEach(p -> {
                String n = p.getFileName().toString();
                if (n.endsWith("_init")) {
                    unlogged.add(rel + "/" + n.substring(0, n.length() - 5));
                }
            });
        } catch (NoSuchFileException e) {
            // dropped database
        }
    }

    private static String relNode(String name) {
        var m = REL_FILE.matcher(name);
        return m.matches() ? m.group(1) : "\u0000";
    }

    private static String rel(Path root, Path p) {
        return root.relativize(p).toString().replace('\\', '/');
    }

    static String mode(Path p) {
        try {
            String s = PosixFilePermissions.toString(Files.getPosixFilePermissions(p, java.nio.file.LinkOption.NOFOLLOW_LINKS));
            int v = 0;
            for (int i = 0; i < 9; i++) {
                if (s.charAt(i) != '-') {
                    v |= 1 << (8 - i);
                }
            }
            return String.format("%04o", v);
        } catch (IOException | UnsupportedOperationException e) {
            return "0600";
        }
    }
}
