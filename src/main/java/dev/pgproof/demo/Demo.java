package dev.pgproof.demo;

import dev.pgproof.cluster.Endpoint;
import dev.pgproof.cluster.PgConnection;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * The demo: a throwaway cluster, archiving to a local repository, a backup, more writes, a dropped
 * table, and a point-in-time restore to the moment before the drop, started and checked. It runs
 * the real pgproof commands as separate processes and prints each one.
 */
public final class Demo {
    private final List<String> pgproof;
    private final Path bin;
    private final Path dir;
    private final boolean keep;

    public Demo(List<String> pgproofCommand, Path dir, boolean keep) {
        this.pgproof = pgproofCommand;
        this.bin = findBin();
        this.dir = dir;
        this.keep = keep;
    }

    static Path findBin() {
        Path base = Path.of("/usr/lib/postgresql");
        try (var s = Files.list(base)) {
            return s.filter(p -> p.getFileName().toString().matches("\\d+") && Integer.parseInt(p.getFileName().toString()) >= 15)
                    .max(Comparator.comparingInt(p -> Integer.parseInt(p.getFileName().toString())))
                    .map(p -> p.resolve("bin")).filter(p -> Files.exists(p.resolve("initdb"))).orElseThrow();
        } catch (IOException | RuntimeException e) {
            throw new PgproofException(ExitCode.CONFIG, "PostgreSQL 15 or later is not installed (no /usr/lib/postgresql/<version>/bin/initdb)",
                    "install it: apt-get install postgresql-15");
        }
    }

    public int run() throws IOException, SQLException, InterruptedException {
        Path data = dir.resolve("data");
        Path copy = dir.resolve("restored");
        Path sock = dir.resolve("sock");
        Path repo = dir.resolve("repo");
        Files.createDirectories(sock);
        int port = freePort();
        int port2 = freePort();
        String launcher = String.join(" ", pgproof);
        boolean ok = false;
        try {
            step("1. Create a throwaway PostgreSQL cluster in %s (port %d, data checksums on)", data, port);
            run(List.of(bin.resolve("initdb").toString(), "--data-checksums", "-A", "trust", "-E", "UTF8", "--locale=C", "-D", data.toString()));
            Files.writeString(data.resolve("postgresql.conf"), "\n# pgproof demo\nport = " + port + "\nunix_socket_directories = '" + sock
                    + "'\nlisten_addresses = ''\nwal_level = replica\narchive_mode = on\narchive_command = '" + launcher
                    + " archive-push --cluster demo --repo " + repo + " %p'\nmax_wal_size = '128MB'\ntimezone = 'UTC'\n",
                    StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.APPEND);
            run(List.of(bin.resolve("pg_ctl").toString(), "-w", "-D", data.toString(), "-l", dir.resolve("source.log").toString(), "start"));

            step("2. Pin the cluster's identity in a new repository %s", repo);
            pgproofCmd("init", "--cluster", "demo", "--repo", repo.toString(), "--pgdata", data.toString());

            step("3. Load data: table orders with 10000 rows");
            Endpoint ep = new Endpoint(sock.toString(), null, port);
            try (Connection c = PgConnection.open(ep, System.getProperty("user.name"), 10); Statement st = c.createStatement()) {
                st.execute("CREATE TABLE orders (id int PRIMARY KEY, item text, qty int)");
                st.execute("INSERT INTO orders SELECT g, 'item ' || g, g % 7 FROM generate_series(1, 10000) g");
            }

            step("4. Take a full backup");
            pgproofCmd("backup", "--cluster", "demo", "--repo", repo.toString(), "--pgdata", data.toString(), "--start-fast");

            String target;
            long before;
            step("5. Write more (5000 rows), note the time, then DROP TABLE orders by mistake");
            try (Connection c = PgConnection.open(ep, System.getProperty("user.name"), 10); Statement st = c.createStatement()) {
                st.execute("INSERT INTO orders SELECT g, 'item ' || g, g % 7 FROM generate_series(10001, 15000) g");
                before = Long.parseLong(PgConnection.queryString(c, "SELECT count(*) FROM orders"));
                target = PgConnection.queryString(c, "SELECT now()");
                Thread.sleep(1000);
                st.execute("DROP TABLE orders");
                Log.info("   orders had %d rows at %s; the table is now dropped", before, target);
                String wal = PgConnection.queryString(c, "SELECT pg_walfile_name(pg_switch_wal())");
                Log.info("   switched WAL; waiting until %s is archived", wal);
                for (int i = 0; i < 600; i++) {
                    String last = PgConnection.queryString(c, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
                    if (last.compareTo(wal) >= 0) {
                        break;
                    }
                    Thread.sleep(100);
                }
            }

            step("6. Restore to the moment before the drop into %s", copy);
            pgproofCmd("restore", "--cluster", "demo", "--repo", repo.toString(), "--pgdata", copy.toString(), "--target-time", target,
                    "--target-action", "promote", "--archive-mode", "off");

            step("7. Start the restored copy on port %d and let it recover", port2);
            run(List.of(bin.resolve("pg_ctl").toString(), "-w", "-t", "120", "-D", copy.toString(), "-l", dir.resolve("restored.log").toString(),
                    "-o", "-p " + port2 + " -k " + sock, "start"));
            Endpoint ep2 = new Endpoint(sock.toString(), null, port2);
            long rows;
            try (Connection c = PgConnection.open(ep2, System.getProperty("user.name"), 10)) {
                for (int i = 0; i < 600 && "t".equals(PgConnection.queryString(c, "SELECT pg_is_in_recovery()")); i++) {
                    Thread.sleep(100);
                }
                rows = Long.parseLong(PgConnection.queryString(c, "SELECT count(*) FROM orders"));
            }
            if (rows != before) {
                throw new PgproofException(ExitCode.RESTORE_FAILED, "demo: the restored table orders has " + rows + " rows, expected " + before);
            }
            step("8. The table is back with all %d rows. pgproof info shows the repository:", rows);
            pgproofCmd("info", "--cluster", "demo", "--repo", repo.toString());
            ok = true;
            return 0;
        } finally {
            stop(copy);
            stop(data);
            if (keep || !ok) {
                Log.info("demo files kept in %s (server logs: source.log, restored.log)", dir);
            } else {
                step("9. Clean up: servers stopped, %s removed", dir);
                deleteTree(dir);
            }
        }
    }

    private static void step(String fmt, Object... args) {
        Log.info("");
        Log.info("== " + String.format(fmt, args));
    }

    private void pgproofCmd(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(pgproof);
        cmd.addAll(Arrays.asList(args));
        run(cmd);
    }

    private void run(List<String> cmd) throws IOException, InterruptedException {
        Log.info("$ %s", String.join(" ", cmd));
        Process p = new ProcessBuilder(cmd).inheritIO().redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        int rc = p.waitFor();
        if (rc != 0) {
            throw new PgproofException(ExitCode.INTERNAL, "demo step failed with exit code " + rc + ": " + String.join(" ", cmd),
                    "the demo files are kept in " + dir + " for a look");
        }
    }

    private void stop(Path data) {
        if (Files.exists(data.resolve("postmaster.pid"))) {
            try {
                new ProcessBuilder(bin.resolve("pg_ctl").toString(), "-w", "-m", "fast", "-D", data.toString(), "stop")
                        .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor();
            } catch (IOException | InterruptedException e) {
                Log.warn("could not stop the server on %s: %s", data, e.getMessage());
            }
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static void deleteTree(Path p) throws IOException {
        try (var s = Files.walk(p)) {
            for (Path x : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(x);
            }
        }
    }
}
