package dev.pgproof.prove;

import dev.pgproof.cluster.Endpoint;
import dev.pgproof.util.Log;
import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A PostgreSQL server started on a restored copy that cannot harm anything: no TCP
 * ({@code listen_addresses = ''}), its unix socket in a private 0700 directory of the scratch
 * directory, a free port, {@code archive_mode = off} (it never pushes into the repository), no
 * WAL senders, no logical replication workers, no preloaded libraries (no scheduled jobs), hot
 * standby off, modest memory. It reads its own configuration file (written here) and never the
 * copy's postgresql.conf or a Debian /etc/postgresql one; the settings that keep it harmless are
 * also given on the command line, which outranks postgresql.auto.conf (ALTER SYSTEM settings
 * restored with the data directory).
 */
final class ThrowawayServer {
    private static final int MAX_SOCKET_PATH = 107;
    private final Path bin;
    private final Path data;
    private final Path scratch;
    private final Path socketDir;
    /** Whether the socket directory is outside the scratch directory (its path was too long for a socket). */
    private final boolean socketOutside;
    private final Path confDir;
    private final Path logFile;
    private final int port;
    private final String clusterName;
    private Process process;

    ThrowawayServer(Path bin, Path data, Path scratch, String cluster) throws IOException {
        this.bin = bin;
        this.data = data;
        this.scratch = scratch;
        this.confDir = scratch.resolve("conf");
        this.logFile = scratch.resolve("postgres.log");
        this.port = freePort();
        this.clusterName = "pgproof-prove-" + cluster;
        Path inside = scratch.resolve("sock");
        // A unix socket path holds at most 107 bytes: ".s.PGSQL.<port>" must fit after the directory.
        if ((inside + "/.s.PGSQL.65535").getBytes(StandardCharsets.UTF_8).length <= MAX_SOCKET_PATH) {
            socketDir = inside;
            socketOutside = false;
            Files.createDirectories(socketDir);
            Files.setPosixFilePermissions(socketDir, PosixFilePermissions.fromString("rwx------"));
        } else {
            socketDir = Files.createTempDirectory(Path.of("/tmp"), "pgproof-sock-",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            socketOutside = true;
            Log.info("prove: the scratch path is too long for a unix socket; the socket goes into the private directory \"%s\" (0700)", socketDir);
        }
        Files.createDirectories(confDir);
    }

    /** Removes the socket directory when it lies outside the scratch directory (the server must be stopped). */
    void removeSocketDir() {
        if (socketOutside) {
            try (var s = Files.list(socketDir)) {
                for (Path p : s.toList()) {
                    Files.deleteIfExists(p);
                }
                Files.deleteIfExists(socketDir);
            } catch (IOException e) {
                Log.warn("could not remove socket directory \"%s\": %s", socketDir, e.getMessage());
            }
        }
    }

    Endpoint endpoint() {
        return new Endpoint(socketDir.toString(), null, port);
    }

    Path logFile() {
        return logFile;
    }

    int port() {
        return port;
    }

    Path socketDir() {
        return socketDir;
    }

    /** The settings that keep the server harmless and small; also passed on the command line. */
    Map<String, String> settings() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("listen_addresses", "");
        m.put("port", Integer.toString(port));
        m.put("unix_socket_directories", socketDir.toString());
        m.put("unix_socket_permissions", "0700");
        m.put("hba_file", confDir.resolve("pg_hba.conf").toString());
        m.put("ident_file", confDir.resolve("pg_ident.conf").toString());
        m.put("cluster_name", clusterName);
        m.put("archive_mode", "off");
        m.put("archive_command", "");
        m.put("max_wal_senders", "0");
        m.put("max_replication_slots", "0");
        m.put("hot_standby", "off");
        m.put("max_logical_replication_workers", "0");
        m.put("max_worker_processes", "4");
        m.put("max_parallel_workers", "2");
        m.put("shared_preload_libraries", "");
        m.put("session_preload_libraries", "");
        m.put("local_preload_libraries", "");
        m.put("shared_buffers", "32MB");
        m.put("work_mem", "4MB");
        m.put("maintenance_work_mem", "64MB");
        m.put("max_connections", "20");
        m.put("max_prepared_transactions", "64");
        m.put("autovacuum", "off");
        m.put("jit", "off");
        m.put("ssl", "off");
        m.put("fsync", "off");
        m.put("synchronous_commit", "off");
        m.put("primary_conninfo", "");
        m.put("external_pid_file", "");
        m.put("logging_collector", "off");
        m.put("log_destination", "stderr");
        m.put("log_line_prefix", "%m [%p] ");
        m.put("huge_pages", "off");
        return m;
    }

    /** Writes postgresql.conf, pg_hba.conf (local trust only) and an empty pg_ident.conf into the scratch directory. */
    void writeConfig() throws IOException {
        StringBuilder conf = new StringBuilder("# written by pgproof prove: a throwaway server that cannot reach anything real\n");
        settings().forEach((k, v) -> conf.append(k).append(" = '").append(v.replace("'", "''")).append("'\n"));
        Files.writeString(confDir.resolve("postgresql.conf"), conf.toString(), StandardCharsets.UTF_8);
        Files.writeString(confDir.resolve("pg_hba.conf"), "# pgproof prove: unix socket only, in a private directory\nlocal all all trust\n",
                StandardCharsets.UTF_8);
        Files.writeString(confDir.resolve("pg_ident.conf"), "", StandardCharsets.UTF_8);
    }

    /** The command line that starts the server. */
    List<String> command() {
        List<String> cmd = new ArrayList<>(List.of(bin.resolve("postgres").toString(), "-D", data.toString(), "-c",
                "config_file=" + confDir.resolve("postgresql.conf")));
        settings().forEach((k, v) -> {
            cmd.add("-c");
            cmd.add(k + "=" + v);
        });
        return cmd;
    }

    void start() throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command());
        pb.environment().keySet().removeIf(k -> k.startsWith("PG") && !k.startsWith("PGPROOF"));
        pb.directory(scratch.toFile());
        pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.redirectErrorStream(true);
        pb.redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()));
        process = pb.start();
    }

    /** The postmaster's process id (0 before start). */
    long pid() {
        return process == null ? 0 : process.pid();
    }

    boolean isAlive() {
        return process != null && process.isAlive();
    }

    Integer exitCode() {
        return process == null || process.isAlive() ? null : process.exitValue();
    }

    /**
     * Stops the server: a fast shutdown (pg_ctl -m fast), then an immediate one, then SIGKILL, each
     * only if the one before did not end it. Returns whether the fast shutdown ended it (a clean stop).
     */
    boolean stop(int seconds) {
        if (process == null || !process.isAlive()) {
            return false;
        }
        boolean clean = pgCtlStop("fast", seconds);
        if (!clean && process.isAlive()) {
            Log.warn("the throwaway server on \"%s\" did not stop in %d s; stopping it in immediate mode", data, seconds);
            pgCtlStop("immediate", 30);
        }
        try {
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(30, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        return clean;
    }

    private boolean pgCtlStop(String mode, int seconds) {
        try {
            Process p = new ProcessBuilder(bin.resolve("pg_ctl").toString(), "-D", data.toString(), "-m", mode, "-w", "-t",
                    Integer.toString(seconds), "stop").redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
                    .start();
            return p.waitFor(seconds + 10L, TimeUnit.SECONDS) && p.exitValue() == 0 && process.waitFor(10, TimeUnit.SECONDS);
        } catch (IOException e) {
            process.destroy(); // SIGTERM: a smart shutdown
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** The lines appended to the server log since {@code offset[0]}, which is advanced. */
    List<String> newLogLines(long[] offset) {
        List<String> out = new ArrayList<>();
        try (RandomAccessFile f = new RandomAccessFile(logFile.toFile(), "r")) {
            if (f.length() <= offset[0]) {
                return out;
            }
            f.seek(offset[0]);
            byte[] b = new byte[(int) Math.min(f.length() - offset[0], 1 << 20)];
            f.readFully(b);
            String text = new String(b, StandardCharsets.UTF_8);
            int end = text.lastIndexOf('\n');
            if (end < 0) {
                return out;
            }
            offset[0] += text.substring(0, end + 1).getBytes(StandardCharsets.UTF_8).length;
            for (String line : text.substring(0, end).split("\n")) {
                out.add(line);
            }
        } catch (IOException e) {
            // no log yet
        }
        return out;
    }

    /** The last lines of the server log that say why it failed (FATAL, PANIC, ERROR), or its tail. */
    String failureLines() {
        List<String> all = newLogLines(new long[] {0});
        List<String> bad = new ArrayList<>();
        for (String l : all) {
            if (l.contains("FATAL:") || l.contains("PANIC:") || l.contains("ERROR:")) {
                bad.add(l.strip());
            }
        }
        List<String> pick = bad.isEmpty() ? all : bad;
        return String.join(" | ", pick.subList(Math.max(0, pick.size() - 3), pick.size()));
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket()) {
            s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            return s.getLocalPort();
        }
    }
}
