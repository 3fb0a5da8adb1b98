package dev.pgproof.cluster;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Finds the PostgreSQL clusters of a host, wherever they are known from: running postmasters (from
 * /proc), clusters registered with Debian's postgresql-common ({@code /etc/postgresql/<version>/<name>})
 * and data directories named by the caller (pgproof's configuration). One entry per data directory,
 * identified by its real path.
 */
public final class Discovery {
    /** Where a cluster was found. */
    public static final String PROCESS = "process";
    public static final String DEBIAN = "postgresql-common";
    public static final String CONFIGURATION = "configuration";

    private final Path proc;
    private final Path etcPostgresql;

    public Discovery(Path proc, Path etcPostgresql) {
        this.proc = proc;
        this.etcPostgresql = etcPostgresql;
    }

    /** The host's real /proc and /etc/postgresql. */
    public static Discovery host() {
        return new Discovery(Path.of("/proc"), Path.of("/etc/postgresql"));
    }

    /**
     * One data directory found on the host.
     *
     * @param dataDirectory real path (or the path as named, when it does not exist)
     * @param exists        whether the directory exists
     * @param version       major version from PG_VERSION (or the Debian directory name), null if unknown
     * @param port          the port from postmaster.pid when running, else from the Debian configuration, else null
     * @param running       whether a live postmaster serves it (postmaster.pid names a live process)
     * @param pid           the postmaster's process id when running
     * @param status        postmaster.pid's status line ("ready", "standby", "starting", "stopping") when running
     * @param debianCluster "15/main" when registered with postgresql-common
     * @param foundBy       process, postgresql-common, configuration
     * @param note          what could not be read, or null
     */
    public record Found(Path dataDirectory, boolean exists, Integer version, Integer port, boolean running, Long pid, String status,
            String debianCluster, Set<String> foundBy, String note) {}

    /** A postmaster process and the data directory it serves (null when it cannot be read). */
    record Postmaster(long pid, Path dataDirectory, String note) {}

    /** Scans processes, postgresql-common and the named data directories; sorted by data directory. */
    public List<Found> scan(List<Path> configured) {
        Map<Path, Set<String>> sources = new LinkedHashMap<>();
        Map<Path, String> debianNames = new LinkedHashMap<>();
        Map<Path, Integer> debianPorts = new LinkedHashMap<>();
        Map<Path, String> notes = new LinkedHashMap<>();
        List<Found> unreadable = new ArrayList<>();
        for (Postmaster pm : postmasters()) {
            if (pm.dataDirectory() == null) {
                unreadable.add(new Found(null, false, null, null, true, pm.pid(), null, null, Set.of(PROCESS), pm.note()));
                continue;
            }
            Path dir = real(pm.dataDirectory());
            sources.computeIfAbsent(dir, k -> new LinkedHashSet<>()).add(PROCESS);
            if (pm.note() != null) {
                notes.put(dir, pm.note());
            }
        }
        for (DebianCluster dc : debianClusters()) {
            Path dir = real(dc.dataDirectory());
            sources.computeIfAbsent(dir, k -> new LinkedHashSet<>()).add(DEBIAN);
            debianNames.put(dir, dc.version() + "/" + dc.name());
            debianPorts.put(dir, dc.port());
        }
        for (Path p : configured) {
            sources.computeIfAbsent(real(p), k -> new LinkedHashSet<>()).add(CONFIGURATION);
        }
        TreeMap<String, Found> out = new TreeMap<>();
        for (Map.Entry<Path, Set<String>> e : sources.entrySet()) {
            Path dir = e.getKey();
            boolean exists = Files.isDirectory(dir);
            Integer version = readVersion(dir);
            String debian = debianNames.get(dir);
            if (version == null && debian != null) {
                version = Integer.valueOf(debian.substring(0, debian.indexOf('/')));
            }
            Integer port = debianPorts.get(dir);
            boolean running = false;
            Long pid = null;
            String status = null;
            String note = notes.get(dir);
            try {
                PostmasterPid pm = exists ? PostmasterPid.read(dir) : null;
                if (pm != null && pm.processAlive()) {
                    running = true;
                    pid = pm.pid();
                    port = pm.port();
                    status = pm.status().isEmpty() ? null : pm.status();
                }
            } catch (IOException ex) {
                note = ex.getMessage();
                running = e.getValue().contains(PROCESS);
            } catch (SecurityException ex) {
                note = "cannot read postmaster.pid: " + ex.getMessage();
            }
            if (!running && e.getValue().contains(PROCESS) && note == null) {
                note = "a postmaster process serves it, but its postmaster.pid cannot be read (run pgproof clusters as root)";
                running = true;
            }
            out.put(dir.toString(), new Found(dir, exists, version, port, running, pid, status, debian, e.getValue(), note));
        }
        List<Found> list = new ArrayList<>(out.values());
        list.addAll(unreadable);
        return list;
    }

    // ------------------------------------------------------------------ running postmasters

    /** Every process named postgres or postmaster whose parent is not one (the children share the name). */
    List<Postmaster> postmasters() {
        List<Postmaster> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(proc, p -> p.getFileName().toString().matches("[0-9]+"))) {
            for (Path p : ds) {
                String comm = read(p.resolve("comm"));
                if (!isPostgres(comm)) {
                    continue;
                }
                String stat = read(p.resolve("stat"));
                if (stat == null) {
                    continue;
                }
                String[] after = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                if (after.length < 2 || isPostgres(read(proc.resolve(after[1]).resolve("comm")))) {
                    continue; // a backend or auxiliary process of a postmaster
                }
                long pid = Long.parseLong(p.getFileName().toString());
                out.add(dataDirectoryOf(p, pid));
            }
        } catch (IOException e) {
            // no /proc: nothing running can be found, the other sources still are
        }
        return out;
    }

    private static boolean isPostgres(String comm) {
        return comm != null && (comm.equals("postgres") || comm.equals("postmaster"));
    }

    /** The postmaster chdir's into its data directory; -D on its command line is the fallback. */
    private static Postmaster dataDirectoryOf(Path procPid, long pid) {
        try {
            String cwd = Files.readSymbolicLink(procPid.resolve("cwd")).toString();
            if (cwd.endsWith(" (deleted)")) {
                return new Postmaster(pid, Path.of(cwd.substring(0, cwd.length() - 10)),
                        "postmaster " + pid + " runs in a data directory that was deleted");
            }
            return new Postmaster(pid, Path.of(cwd), null);
        } catch (IOException | SecurityException e) {
            // not ours: try the command line
        }
        try {
            byte[] raw = Files.readAllBytes(procPid.resolve("cmdline"));
            String[] args = new String(raw, StandardCharsets.UTF_8).split("\0");
            for (int i = 0; i < args.length; i++) {
                if (args[i].equals("-D") && i + 1 < args.length) {
                    return new Postmaster(pid, Path.of(args[i + 1]), null);
                }
                if (args[i].startsWith("-D") && args[i].length() > 2) {
                    return new Postmaster(pid, Path.of(args[i].substring(2)), null);
                }
            }
        } catch (IOException | SecurityException e) {
            // fall through
        }
        return new Postmaster(pid, null, "postmaster process " + pid + ": its data directory cannot be read (run pgproof clusters as root)");
    }

    // ------------------------------------------------------------------ postgresql-common

    /** A cluster registered with postgresql-common. */
    record DebianCluster(int version, String name, Path dataDirectory, int port) {}

    /** {@code <etc>/<version>/<name>/postgresql.conf} (and its conf.d), with postgresql-common's defaults. */
    List<DebianCluster> debianClusters() {
        List<DebianCluster> out = new ArrayList<>();
        try (DirectoryStream<Path> versions = Files.newDirectoryStream(etcPostgresql, p -> p.getFileName().toString().matches("[0-9]+(\\.[0-9]+)?"))) {
            for (Path v : versions) {
                try (DirectoryStream<Path> names = Files.newDirectoryStream(v, Files::isDirectory)) {
                    for (Path n : names) {
                        Path conf = n.resolve("postgresql.conf");
                        if (!Files.isRegularFile(conf)) {
                            continue;
                        }
                        Map<String, String> settings = new LinkedHashMap<>();
                        readConf(conf, settings, 0);
                        String version = v.getFileName().toString();
                        String name = n.getFileName().toString();
                        String dataDir = settings.getOrDefault("data_directory", "/var/lib/postgresql/" + version + "/" + name);
                        int port = 5432;
                        try {
                            port = Integer.parseInt(settings.getOrDefault("port", "5432"));
                        } catch (NumberFormatException e) {
                            // keep the default
                        }
                        int major = (int) Double.parseDouble(version);
                        out.add(new DebianCluster(major, name, Path.of(dataDir), port));
                    }
                }
            }
        } catch (IOException e) {
            // no postgresql-common
        }
        return out;
    }

    /** Reads postgresql.conf settings, following include, include_if_exists and include_dir (later lines win). */
    static void readConf(Path file, Map<String, String> into, int depth) {
        if (depth > 10) {
            return;
        }
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return;
        }
        for (String raw : lines) {
            String[] kv = confLine(raw);
            if (kv == null) {
                continue;
            }
            String key = kv[0].toLowerCase(java.util.Locale.ROOT);
            Path target = kv[1].startsWith("/") ? Path.of(kv[1]) : file.resolveSibling(kv[1]);
            switch (key) {
                case "include", "include_if_exists" -> readConf(target, into, depth + 1);
                case "include_dir" -> {
                    List<Path> files = new ArrayList<>();
                    try (DirectoryStream<Path> ds = Files.newDirectoryStream(target, "*.conf")) {
                        ds.forEach(files::add);
                    } catch (IOException e) {
                        // missing directory: nothing to include
                    }
                    files.sort(null);
                    for (Path f : files) {
                        readConf(f, into, depth + 1);
                    }
                }
                default -> into.put(key, kv[1]);
            }
        }
    }

    /** One "name = value" line of postgresql.conf ('=' optional, '#' comments, single-quoted values with '' escapes), or null. */
    static String[] confLine(String raw) {
        String line = raw.strip();
        if (line.isEmpty() || line.startsWith("#")) {
            return null;
        }
        int i = 0;
        while (i < line.length() && (Character.isLetterOrDigit(line.charAt(i)) || line.charAt(i) == '_' || line.charAt(i) == '.')) {
            i++;
        }
        if (i == 0) {
            return null;
        }
        String key = line.substring(0, i);
        String rest = line.substring(i).strip();
        if (rest.startsWith("=")) {
            rest = rest.substring(1).strip();
        }
        String value;
        if (rest.startsWith("'")) {
            StringBuilder sb = new StringBuilder();
            int j = 1;
            while (j < rest.length()) {
                char c = rest.charAt(j);
                if (c == '\'' && j + 1 < rest.length() && rest.charAt(j + 1) == '\'') {
                    sb.append('\'');
                    j += 2;
                } else if (c == '\'') {
                    break;
                } else if (c == '\\' && j + 1 < rest.length()) {
                    sb.append(rest.charAt(j + 1));
                    j += 2;
                } else {
                    sb.append(c);
                    j++;
                }
            }
            value = sb.toString();
        } else {
            int hash = rest.indexOf('#');
            value = (hash < 0 ? rest : rest.substring(0, hash)).strip();
        }
        return new String[] {key, value};
    }

    // ------------------------------------------------------------------ helpers

    private static Integer readVersion(Path dir) {
        try {
            return PgControl.majorVersion(dir);
        } catch (IOException | SecurityException e) {
            return null;
        }
    }

    private static String read(Path p) {
        try {
            return Files.readString(p, StandardCharsets.UTF_8).strip();
        } catch (IOException | SecurityException e) {
            return null;
        }
    }

    /** The real path, or the absolute normalized path when it cannot be resolved. */
    /** Whether two repository names are the same repository: S3 URLs compared as text, directories by their real paths. */
    public static boolean sameRepository(String a, String b) {
        if (a.startsWith("s3://") || b.startsWith("s3://")) {
            return a.replaceAll("/+$", "").equals(b.replaceAll("/+$", ""));
        }
        return real(Path.of(a)).equals(real(Path.of(b)));
    }

    public static Path real(Path p) {
        try {
            return p.toRealPath();
        } catch (IOException | SecurityException e) {
            return p.toAbsolutePath().normalize();
        }
    }
}
