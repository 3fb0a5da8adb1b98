package dev.pgproof.it;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Test fixture: a real PostgreSQL 15 cluster in a directory of the test's choosing.
 *
 * <p>PostgreSQL refuses to run as root, so when the JVM runs as root (as in CI) every PostgreSQL
 * program is run as the unprivileged OS user {@value #TEST_USER} through {@code runuser}; otherwise
 * as the current user. That user is also the cluster's superuser role (initdb's default) and all
 * local and 127.0.0.1 connections are trusted.
 *
 * <p>Layout made by {@link #create}: {@code <dir>/<name>/data} (data directory, checksums on),
 * {@code <dir>/<name>/sock} (unix socket directory), {@code <dir>/<name>/log/postgres.log}.
 *
 * <p>{@link #start()} passes the port, the socket directory and {@code listen_addresses=127.0.0.1}
 * on the postgres command line, so a copied or restored data directory whose postgresql.conf names
 * another cluster's port starts on this instance's port without editing its files.
 *
 * <p>Clusters still running when the JVM exits are stopped (immediate mode) by a shutdown hook.
 */
public final class PgCluster implements AutoCloseable {

    public static final Path PG_BIN = Path.of("/usr/lib/postgresql/15/bin");
    /** The OS user that runs PostgreSQL when the JVM runs as root. */
    public static final String TEST_USER = "pgproof-test";

    private static final Duration COMMAND_TIMEOUT = Duration.ofMinutes(5);
    private static final Duration PGBENCH_TIMEOUT = Duration.ofMinutes(15);
    private static final Set<Integer> HANDED_OUT_PORTS = ConcurrentHashMap.newKeySet();
    private static final Set<PgCluster> RUNNING = ConcurrentHashMap.newKeySet();
    private static volatile Boolean root;

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(PgCluster::stopAllImmediately, "pgcluster-cleanup"));
    }

    /** Exit code and complete output of a finished process. */
    public record ProcessResult(int exitCode, String stdout, String stderr) {
        public boolean ok() {
            return exitCode == 0;
        }

        /** Returns this result, or throws an AssertionError naming {@code what} and the output. */
        public ProcessResult assertOk(String what) {
            if (!ok()) {
                throw new AssertionError(what + " failed with exit code " + exitCode
                        + "\n--- stdout ---\n" + stdout + "\n--- stderr ---\n" + stderr);
            }
            return this;
        }
    }

    private final String name;
    private final Path dataDir;
    private final Path socketDir;
    private final Path logFile;
    private volatile int port;

    /**
     * Wraps an existing data directory (for example a restored copy), without touching it.
     * Its log goes to {@code <dataDir>.log}. When the data directory was written by root, call
     * {@link #adopt} instead, or {@link #chownToOwner} before {@link #start()}.
     */
    public PgCluster(Path dataDir, Path socketDir, int port) {
        this(nameOf(dataDir), dataDir, socketDir, dataDir.resolveSibling(dataDir.getFileName() + ".log"), port);
    }

    private PgCluster(String name, Path dataDir, Path socketDir, Path logFile, int port) {
        this.name = name;
        this.dataDir = dataDir.toAbsolutePath();
        this.socketDir = socketDir.toAbsolutePath();
        this.logFile = logFile.toAbsolutePath();
        this.port = port;
    }

    private static String nameOf(Path dataDir) {
        Path abs = dataDir.toAbsolutePath();
        Path file = abs.getFileName();
        if (file != null && file.toString().equals("data") && abs.getParent() != null
                && abs.getParent().getFileName() != null) {
            return abs.getParent().getFileName().toString();
        }
        return String.valueOf(file);
    }

    /**
     * Creates {@code dir} (made reachable, and owned by {@link #osUser()} unless it is a sticky
     * directory such as /tmp), and initdb's a cluster in
     * {@code <dir>/<name>/data} configured for {@code port}. Does not start it.
     */
    public static PgCluster create(Path dir, String name, int port) {
        try {
            Path base = dir.toAbsolutePath().resolve(name);
            boolean existed = Files.isDirectory(dir);
            Files.createDirectories(dir);
            makeReachable(dir);
            // Hand dir to the owner so that it (archive_command, for one) can write beside the cluster;
            // but never a shared sticky directory such as /tmp.
            int mode = (Integer) Files.getAttribute(dir, "unix:mode");
            if (!existed || (mode & 01000) == 0) {
                chownToOwner(dir, false);
            }
            PgCluster cluster = new PgCluster(name, base.resolve("data"), base.resolve("sock"),
                    base.resolve("log").resolve("postgres.log"), port);
            Files.createDirectories(cluster.socketDir);
            Files.createDirectories(cluster.logFile.getParent());
            setMode(base, "rwxr-xr-x");
            chownToOwner(base, true);

            runAsOwner(List.of(bin("initdb"), "--data-checksums", "-E", "UTF8", "--locale=C", "-A", "trust",
                    "-D", cluster.dataDir.toString()), null, base).assertOk("initdb of " + cluster.dataDir);

            cluster.appendConf(String.join("\n",
                    "",
                    "# added by PgCluster",
                    "port = " + port,
                    "unix_socket_directories = " + quote(cluster.socketDir.toString()),
                    "listen_addresses = '127.0.0.1'",
                    "wal_level = replica",
                    "archive_mode = off",
                    "max_wal_size = '256MB'",
                    "checkpoint_timeout = '30min'",
                    "log_min_messages = warning",
                    "fsync = on",
                    "shared_buffers = '32MB'",
                    "max_connections = 30",
                    "hot_standby = on",
                    "timezone = 'UTC'",
                    ""));
            return cluster;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Wraps a data directory written by someone else (for example restored by pgproof running as
     * root): hands it to {@link #osUser()} recursively, sets mode 0700 (PostgreSQL demands 0700 or
     * 0750), makes its parents reachable and creates the socket directory. Contents are untouched.
     */
    public static PgCluster adopt(Path dataDir, Path socketDir, int port) {
        PgCluster cluster = new PgCluster(dataDir, socketDir, port);
        makeReachable(cluster.dataDir.getParent());
        chownToOwner(cluster.dataDir, true);
        setMode(cluster.dataDir, "rwx------");
        cluster.prepareRuntimeDirs();
        return cluster;
    }

    // ------------------------------------------------------------------ accessors

    public Path dataDir() {
        return dataDir;
    }

    public Path socketDir() {
        return socketDir;
    }

    public int port() {
        return port;
    }

    public String name() {
        return name;
    }

    public Path logFile() {
        return logFile;
    }

    /** The superuser role to connect as: initdb names it after the OS user that ran it. */
    public String superuser() {
        return osUser();
    }

    /** {@code jdbc:postgresql://127.0.0.1:<port>/postgres?user=<superuser>}. */
    public String jdbcUrl() {
        return jdbcUrl("postgres");
    }

    public String jdbcUrl(String db) {
        return "jdbc:postgresql://127.0.0.1:" + port + "/" + db + "?user=" + superuser();
    }

    @Override
    public String toString() {
        return "PgCluster[" + name + ", port " + port + ", " + dataDir + "]";
    }

    // ------------------------------------------------------------------ configuration

    /** Changes the port; also appended to postgresql.conf. Takes effect at the next start. */
    public void setPort(int port) {
        this.port = port;
        configure("port", Integer.toString(port));
    }

    /**
     * Appends {@code key = value} to postgresql.conf (not postgresql.auto.conf, so that it does not
     * clash with ALTER SYSTEM). {@code value} is written as given: quote strings yourself, e.g.
     * {@code configure("archive_command", PgCluster.quote(cmd))}.
     */
    public void configure(String key, String value) {
        appendConf(key + " = " + value + "\n");
    }

    /** Quotes a configuration string value: {@code it's} becomes {@code 'it''s'}. */
    public static String quote(String value) {
        return "'" + value.replace("'", "''") + "'";
    }

    private void appendConf(String text) {
        try {
            // Appending keeps the file's owner, so this works as root too.
            Files.writeString(dataDir.resolve("postgresql.conf"), text, StandardCharsets.UTF_8,
                    StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    // ------------------------------------------------------------------ lifecycle

    /** Starts the server and waits until it accepts connections; throws with the log's tail otherwise. */
    public void start() {
        prepareRuntimeDirs();
        String options = "-p " + port + " -k " + shellQuote(socketDir.toString()) + " -h 127.0.0.1";
        ProcessResult r = pgCtl(Duration.ofSeconds(180), "-w", "-t", "120", "-D", dataDir.toString(),
                "-l", logFile.toString(), "-o", options, "start");
        if (!r.ok()) {
            throw new AssertionError("pg_ctl start of " + this + " failed with exit code " + r.exitCode()
                    + "\n--- stdout ---\n" + r.stdout() + "\n--- stderr ---\n" + r.stderr()
                    + "\n--- last 40 lines of " + logFile + " ---\n" + logTail(40));
        }
        RUNNING.add(this);
    }

    /** Fast shutdown, waiting for it; does nothing when the server is not running. */
    public void stop() {
        stop("fast");
    }

    /** Shutdown in the given pg_ctl mode: {@code smart}, {@code fast} or {@code immediate} (a crash). */
    public void stop(String mode) {
        if (!isRunning()) {
            RUNNING.remove(this);
            return;
        }
        ProcessResult r = pgCtl(Duration.ofSeconds(180), "-w", "-t", "120", "-m", mode, "-D", dataDir.toString(),
                "stop");
        if (!r.ok()) {
            throw new AssertionError("pg_ctl stop -m " + mode + " of " + this + " failed with exit code "
                    + r.exitCode() + "\n--- stderr ---\n" + r.stderr()
                    + "\n--- last 40 lines of " + logFile + " ---\n" + logTail(40));
        }
        RUNNING.remove(this);
    }

    public void restart() {
        stop();
        start();
    }

    /** {@code pg_ctl status}: true when a postmaster runs for this data directory. */
    public boolean isRunning() {
        if (!Files.isDirectory(dataDir)) {
            return false;
        }
        return pgCtl(COMMAND_TIMEOUT, "status", "-D", dataDir.toString()).ok();
    }

    @Override
    public void close() {
        stop();
    }

    /** The last {@code lines} lines of the server log (empty when there is no log yet). */
    public String logTail(int lines) {
        try {
            if (!Files.exists(logFile)) {
                return "(no log file " + logFile + ")";
            }
            String text = new String(Files.readAllBytes(logFile), StandardCharsets.UTF_8);
            List<String> all = Arrays.asList(text.split("\n", -1));
            return String.join("\n", all.subList(Math.max(0, all.size() - lines - 1), all.size())).strip();
        } catch (IOException e) {
            return "(cannot read " + logFile + ": " + e + ")";
        }
    }

    private void prepareRuntimeDirs() {
        try {
            Files.createDirectories(socketDir);
            chownToOwner(socketDir, false);
            Files.createDirectories(logFile.getParent());
            if (!Files.exists(logFile)) {
                Files.createFile(logFile);
            }
            chownToOwner(logFile, false);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private ProcessResult pgCtl(Duration timeout, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(bin("pg_ctl"));
        cmd.addAll(Arrays.asList(args));
        return runAsOwner(cmd, null, ownerCwd(), timeout);
    }

    private Path ownerCwd() {
        Path parent = dataDir.getParent();
        return parent != null && Files.isDirectory(parent) ? parent : Path.of("/");
    }

    // ------------------------------------------------------------------ clients

    /** Runs {@code sql} in database postgres; returns trimmed unaligned tuples-only output. */
    public String psql(String sql) {
        return psqlDb("postgres", sql);
    }

    public String psqlDb(String db, String sql) {
        ProcessResult r = psqlResult(db, sql);
        if (!r.ok()) {
            throw new AssertionError("psql on " + this + " (db " + db + ") failed with exit code " + r.exitCode()
                    + ": " + sql + "\n--- stderr ---\n" + r.stderr());
        }
        return r.stdout().strip();
    }

    /** Runs psql without judging the outcome, for tests that expect an error. */
    public ProcessResult psqlResult(String db, String sql) {
        return runAsOwner(List.of(bin("psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", socketDir.toString(), "-p", Integer.toString(port), "-d", db, "-c", sql),
                null, ownerCwd(), COMMAND_TIMEOUT);
    }

    /** {@code pgbench -h <sock> -p <port> <args> postgres}; throws on failure. Returns stdout. */
    public String pgbench(String... args) {
        List<String> cmd = new ArrayList<>(List.of(bin("pgbench"), "-h", socketDir.toString(),
                "-p", Integer.toString(port)));
        cmd.addAll(Arrays.asList(args));
        cmd.add("postgres");
        return runAsOwner(cmd, null, ownerCwd(), PGBENCH_TIMEOUT).assertOk("pgbench " + String.join(" ", args))
                .stdout();
    }

    /** {@code pg_controldata} of the data directory, as "field name" to value. */
    public Map<String, String> controlData() {
        ProcessResult r = runAsOwner(List.of(bin("pg_controldata"), "-D", dataDir.toString()), Map.of("LC_ALL", "C"),
                ownerCwd(), COMMAND_TIMEOUT).assertOk("pg_controldata");
        Map<String, String> fields = new LinkedHashMap<>();
        for (String line : r.stdout().split("\n")) {
            int colon = line.indexOf(':');
            if (colon > 0) {
                fields.put(line.substring(0, colon).strip(), line.substring(colon + 1).strip());
            }
        }
        return fields;
    }

    // ------------------------------------------------------------------ OS user and files

    /** Absolute path of a PostgreSQL program, e.g. {@code bin("pg_verifybackup")}. */
    public static String bin(String program) {
        return PG_BIN.resolve(program).toString();
    }

    public static boolean isRoot() {
        Boolean r = root;
        if (r == null) {
            ProcessResult id = run(List.of("id", "-u"), null, null, Duration.ofSeconds(30)).assertOk("id -u");
            r = id.stdout().strip().equals("0");
            root = r;
        }
        return r;
    }

    /** {@value #TEST_USER} when the JVM runs as root, else the current user. */
    public static String osUser() {
        return isRoot() ? TEST_USER : System.getProperty("user.name");
    }

    /**
     * When root: adds read and search permission for group and others to {@code dir} (JUnit's
     * @TempDir is root's and 0700, so this makes it 0755) and search permission for others to each
     * parent lacking it, so that {@link #osUser()} can reach it. Only adds bits (a sticky /tmp stays
     * as it is). Does nothing when not root.
     */
    public static void makeReachable(Path dir) {
        if (!isRoot() || dir == null) {
            return;
        }
        Path abs = dir.toAbsolutePath();
        if (Files.isDirectory(abs)) {
            addModeBits(abs, 0055);
        }
        for (Path p = abs.getParent(); p != null; p = p.getParent()) {
            addModeBits(p, 0001);
        }
    }

    private static void addModeBits(Path path, int bits) {
        try {
            int mode = (Integer) Files.getAttribute(path, "unix:mode");
            if ((mode & bits) != bits) {
                Files.setAttribute(path, "unix:mode", (mode | bits) & 07777);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * When root: gives {@code path} (recursively if asked) to {@link #osUser()}, e.g. a repository
     * directory that archive_command, running as that user, must write to. Does nothing otherwise.
     */
    public static void chownToOwner(Path path, boolean recursive) {
        if (!isRoot()) {
            return;
        }
        List<String> cmd = new ArrayList<>(List.of("chown"));
        if (recursive) {
            cmd.add("-R");
        }
        cmd.add(TEST_USER + ":");
        cmd.add(path.toAbsolutePath().toString());
        run(cmd, null, null, COMMAND_TIMEOUT).assertOk("chown " + path);
    }

    private static void setMode(Path path, String mode) {
        try {
            Files.setPosixFilePermissions(path, PosixFilePermissions.fromString(mode));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Finds a TCP port in 20000-40000 that is free on 127.0.0.1 and was not handed out before. */
    public static int freePort() {
        int range = 20000;
        int start = ThreadLocalRandom.current().nextInt(range);
        for (int i = 0; i < range; i++) {
            int port = 20000 + (start + i) % range;
            if (HANDED_OUT_PORTS.contains(port)) {
                continue;
            }
            try (ServerSocket s = new ServerSocket()) {
                s.setReuseAddress(false);
                s.bind(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), port));
            } catch (IOException busy) {
                continue;
            }
            if (HANDED_OUT_PORTS.add(port)) {
                return port;
            }
        }
        throw new IllegalStateException("no free port in 20000-40000");
    }

    // ------------------------------------------------------------------ processes

    /** {@link #run} as {@link #osUser()} (through {@code runuser} when root), with a 5 minute timeout. */
    public static ProcessResult runAsOwner(List<String> cmd, Map<String, String> env, Path cwd) {
        return runAsOwner(cmd, env, cwd, COMMAND_TIMEOUT);
    }

    /**
     * {@link #run} as {@link #osUser()}. When root, the command runs through
     * {@code runuser -u pgproof-test --}, which keeps the environment but sets HOME, SHELL, USER and
     * LOGNAME; a null {@code cwd} then means "/", since root's working directory may be out of reach.
     */
    public static ProcessResult runAsOwner(List<String> cmd, Map<String, String> env, Path cwd, Duration timeout) {
        if (!isRoot()) {
            return run(cmd, env, cwd, timeout);
        }
        List<String> full = new ArrayList<>(List.of("runuser", "-u", TEST_USER, "--"));
        full.addAll(cmd);
        return run(full, env, cwd != null ? cwd : Path.of("/"), timeout);
    }

    /**
     * Runs {@code cmd} to completion with stdin from /dev/null, capturing stdout and stderr fully
     * (read concurrently). Inherited PG* variables (PGHOST, PGPORT, ...) are removed before
     * {@code env} (may be null) is applied; {@code cwd} null means the JVM's. On timeout the process
     * and its descendants are killed and an AssertionError carries what they had printed.
     */
    public static ProcessResult run(List<String> cmd, Map<String, String> env, Path cwd, Duration timeout) {
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().keySet().removeIf(k -> k.startsWith("PG"));
        if (env != null) {
            pb.environment().putAll(env);
        }
        if (cwd != null) {
            pb.directory(cwd.toFile());
        }
        pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        Process process;
        try {
            process = pb.start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + cmd, e);
        }
        StreamCollector out = new StreamCollector(process.getInputStream(), "stdout of " + cmd.get(0));
        StreamCollector err = new StreamCollector(process.getErrorStream(), "stderr of " + cmd.get(0));
        try {
            if (!process.waitFor(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)) {
                List<ProcessHandle> descendants = process.descendants().toList();
                descendants.forEach(ProcessHandle::destroyForcibly);
                process.destroyForcibly();
                process.waitFor(10, java.util.concurrent.TimeUnit.SECONDS);
                throw new AssertionError("timed out after " + timeout + ", killed: " + cmd
                        + "\n--- stdout ---\n" + out.finish() + "\n--- stderr ---\n" + err.finish());
            }
            return new ProcessResult(process.exitValue(), out.finish(), err.finish());
        } catch (InterruptedException e) {
            process.descendants().forEach(ProcessHandle::destroyForcibly);
            process.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted while running " + cmd, e);
        }
    }

    /** Reads a stream to its end on a daemon thread. */
    private static final class StreamCollector {
        private final ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        private final Thread thread;

        StreamCollector(InputStream in, String what) {
            thread = new Thread(() -> {
                byte[] chunk = new byte[8192];
                try (in) {
                    int n;
                    while ((n = in.read(chunk)) > 0) {
                        synchronized (buffer) {
                            buffer.write(chunk, 0, n);
                        }
                    }
                } catch (IOException ignored) {
                    // the process went away; keep what was read
                }
            }, "pgcluster-" + what);
            thread.setDaemon(true);
            thread.start();
        }

        /**
         * Waits for the end of the stream, briefly: a background child that inherited the pipe
         * may hold it open, and what was read so far is returned then.
         */
        String finish() throws InterruptedException {
            thread.join(Duration.ofSeconds(10).toMillis());
            synchronized (buffer) {
                return buffer.toString(StandardCharsets.UTF_8);
            }
        }
    }

    private static String shellQuote(String s) {
        return "'" + s.replace("'", "'\\''") + "'";
    }

    private static void stopAllImmediately() {
        for (PgCluster c : new HashSet<>(RUNNING)) {
            try {
                c.pgCtl(Duration.ofSeconds(30), "-w", "-t", "20", "-m", "immediate", "-D", c.dataDir.toString(),
                        "stop");
            } catch (Throwable ignored) {
                // best effort at JVM exit
            }
        }
    }

    /** Waits until this (restored) server has left recovery, or fails with its log tail. */
    public void awaitPromotion(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            ProcessResult r = psqlResult("postgres", "SELECT pg_is_in_recovery()");
            if (r.ok() && r.stdout().strip().equals("f")) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError(this + " still in recovery after " + timeout + " (" + r.stdout().strip() + r.stderr()
                        + ")\n--- log ---\n" + logTail(40));
            }
            pause(200);
        }
    }

    /**
     * Every user table of the public schema with "row count:md5 of its rows in order", to compare a
     * restored copy with its source table by table.
     */
    public Map<String, String> tableDigests() {
        String names = psql("SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_class c "
                + "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')");
        Map<String, String> out = new LinkedHashMap<>();
        for (String t : names.split(" ")) {
            if (!t.isEmpty()) {
                out.put(t, psql("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '-') FROM " + t + " t"));
            }
        }
        return out;
    }

    /** Switches to a new WAL segment and waits until the one switched out is archived; returns its name. */
    public String switchWalAndAwaitArchived(Duration timeout) {
        String segment = psql("SELECT pg_walfile_name(pg_switch_wal())");
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            String[] st = psql("SELECT coalesce(last_archived_wal, ''), failed_count, coalesce(last_failed_wal, '') FROM pg_stat_archiver")
                    .split("\\|", -1);
            if (st[0].length() >= 24 && st[0].substring(0, 24).compareTo(segment) >= 0) {
                return segment;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("segment " + segment + " was not archived within " + timeout + ": pg_stat_archiver says last archived "
                        + st[0] + ", " + st[1] + " failures, last failed " + st[2] + "\n--- log ---\n" + logTail(40));
            }
            pause(200);
        }
    }

    /** Thread.sleep for polling loops in tests. */
    public static void pause(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }
}
