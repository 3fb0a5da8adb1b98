package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two things the end-to-end test does not cover:
 *
 * <ul>
 *   <li>a user tablespace: backed up from its location outside the data directory, restored with
 *       {@code --tablespace-map} into a new directory, verified by pg_verifybackup (which follows
 *       the pg_tblspc symlinks), started and compared with the source;
 *   <li>a server without unix sockets ({@code unix_socket_directories = ''}): postmaster.pid then
 *       has an empty socket line and pgproof must connect over TCP to the listen address.
 * </ul>
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TablespaceTcpIT {
    private static final Duration ARCHIVE_TIMEOUT = Duration.ofSeconds(90);

    @TempDir
    static Path tmp;

    private Path root;
    private final List<PgCluster> started = new ArrayList<>();

    @BeforeAll
    void setUp() throws IOException {
        root = tmp.toRealPath();
        PgCluster.makeReachable(root);
    }

    @AfterAll
    void tearDown() {
        for (PgCluster c : started) {
            c.stop();
        }
    }

    @Test
    void tablespaceIsRestoredIntoTheMappedDirectoryAndMatchesTheSource() throws IOException {
        Path repo = repoDir("ts-repo");
        PgCluster source = PgCluster.create(root.resolve("clusters"), "tssrc", PgCluster.freePort());
        source.configure("archive_mode", "on");
        source.configure("archive_command", PgCluster.quote(Pgproof.archiveCommand("ts", repo)));
        startTracked(source);
        ok(Pgproof.run("init", "--cluster", "ts", "--repo", repo.toString(), "--pgdata", source.dataDir().toString()), "init");

        // The tablespace lives outside the data directory, in a directory of the cluster owner.
        Path tsDir = Files.createDirectories(root.resolve("tablespaces").resolve("orig"));
        PgCluster.chownToOwner(root.resolve("tablespaces"), true);
        PgCluster.makeReachable(root.resolve("tablespaces"));
        Files.setPosixFilePermissions(tsDir, PosixFilePermissions.fromString("rwx------"));
        source.psql("CREATE TABLESPACE ts LOCATION " + PgCluster.quote(tsDir.toString()));
        source.psql("CREATE TABLE in_ts (id int PRIMARY KEY, note text) TABLESPACE ts");
        source.psql("INSERT INTO in_ts SELECT g, 'tablespace row ' || g FROM generate_series(1, 5000) g");
        source.psql("CREATE INDEX in_ts_note ON in_ts (note) TABLESPACE ts");
        source.psql("CREATE TABLE in_default (id int PRIMARY KEY, note text)");
        source.psql("INSERT INTO in_default SELECT g, 'default row ' || g FROM generate_series(1, 3000) g");
        String oid = source.psql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts'");
        assertThat(oid).matches("\\d+");
        assertThat(source.psql("SELECT coalesce(t.spcname, '-') FROM pg_class c LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace "
                + "WHERE c.relname = 'in_ts'")).isEqualTo("ts");
        Map<String, String> atBackup = snapshot(source, "in_ts", "in_default");
        assertThat(atBackup.get("in_ts")).startsWith("5000:");
        assertThat(atBackup.get("in_default")).startsWith("3000:");

        PgCluster.ProcessResult backup = ok(Pgproof.run("backup", "--cluster", "ts", "--repo", repo.toString(), "--pgdata",
                source.dataDir().toString(), "--start-fast"), "backup");
        String label = backup.stdout().strip();
        assertThat(label).matches("\\d{8}-\\d{6}F");
        // Changes after the backup must not show up in an immediate-target restore.
        source.psql("INSERT INTO in_ts SELECT g, 'after backup ' || g FROM generate_series(5001, 5100) g");
        switchAndWaitForArchive(source);

        Path restores = Files.createDirectories(root.resolve("restores"));
        PgCluster.chownToOwner(restores, false);
        PgCluster.makeReachable(restores);
        Path newTs = Files.createDirectories(restores.resolve("ts-new"));
        PgCluster.chownToOwner(newTs, false);
        Path dest = restores.resolve("ts-copy");
        PgCluster.ProcessResult r = ok(Pgproof.run("restore", "--cluster", "ts", "--repo", repo.toString(), "--pgdata", dest.toString(),
                "--archive-mode", "off", "--target", "immediate", "--target-action", "promote", "--tablespace-map", oid + "=" + newTs), "restore");
        assertThat(r.stderr()).contains("restoring backup " + label + " of cluster \"ts\"");

        Path link = dest.resolve("pg_tblspc").resolve(oid);
        assertThat(Files.isSymbolicLink(link)).as(link + " is a symlink").isTrue();
        assertThat(Files.readSymbolicLink(link)).isEqualTo(newTs);
        try (var s = Files.list(newTs)) {
            assertThat(s.map(p -> p.getFileName().toString()).toList()).as("contents of the mapped tablespace directory")
                    .anyMatch(n -> n.startsWith("PG_15_"));
        }
        // The original location was not touched by the restore: still the source's files only.
        assertThat(Files.readSymbolicLink(source.dataDir().resolve("pg_tblspc").resolve(oid))).isEqualTo(tsDir);

        // Hand the data directory and the mapped tablespace to the owner (restore ran as the test JVM's user).
        PgCluster.chownToOwner(newTs, true);
        PgCluster.ProcessResult verify = PgCluster.runAsOwner(List.of(PgCluster.bin("pg_verifybackup"), "-n", dest.toString()), null, null);
        assertThat(verify.exitCode()).as("pg_verifybackup -n on the restore:\n" + verify.stdout() + verify.stderr()).isZero();
        assertThat(verify.stdout()).contains("backup successfully verified");

        PgCluster copy = PgCluster.adopt(dest, restores.resolve("ts-copy-sock"), PgCluster.freePort());
        startTracked(copy);
        copy.awaitPromotion(Duration.ofSeconds(120));
        assertThat(copy.psql("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'ts'")).isEqualTo(newTs.toString());
        assertThat(snapshot(copy, "in_ts", "in_default")).isEqualTo(atBackup);
        copy.stop();
        source.stop();
    }

    @Test
    void withoutUnixSocketsPgproofConnectsOverTcp() throws IOException {
        Path repo = repoDir("tcp-repo");
        int port = PgCluster.freePort();
        PgCluster c = PgCluster.create(root.resolve("clusters"), "tcpsrc", port);
        c.configure("unix_socket_directories", "''");
        c.configure("listen_addresses", "'127.0.0.1'");
        c.configure("archive_mode", "on");
        c.configure("archive_command", PgCluster.quote(Pgproof.archiveCommand("tcp", repo)));
        // PgCluster.start() would pass -k <sockdir>: start it with an empty socket directory list instead.
        started.add(c);
        PgCluster.runAsOwner(List.of(PgCluster.bin("pg_ctl"), "-w", "-t", "120", "-D", c.dataDir().toString(), "-l",
                c.logFile().toString(), "-o", "-p " + port + " -k '' -h 127.0.0.1", "start"), null, c.dataDir().getParent())
                .assertOk("pg_ctl start of " + c + "\n--- log ---\n" + c.logTail(40));

        List<String> pidLines = Files.readAllLines(c.dataDir().resolve("postmaster.pid"));
        assertThat(pidLines.get(4)).as("socket directory line of postmaster.pid").isEmpty();
        assertThat(pidLines.get(5)).as("listen address line of postmaster.pid").isEqualTo("127.0.0.1");

        tcpPsql(c, "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g");

        PgCluster.ProcessResult init = ok(Pgproof.run("init", "--cluster", "tcp", "--repo", repo.toString(), "--pgdata",
                c.dataDir().toString()), "init");
        assertThat(init.stderr()).contains("port " + port + " on host \"127.0.0.1\"");
        PgCluster.ProcessResult backup = ok(Pgproof.run("backup", "--cluster", "tcp", "--repo", repo.toString(), "--pgdata",
                c.dataDir().toString(), "--start-fast"), "backup");
        assertThat(backup.stderr()).contains("connecting to port " + port + " on host \"127.0.0.1\"");
        assertThat(backup.stdout().strip()).matches("\\d{8}-\\d{6}F");
        c.stop();
    }

    // ------------------------------------------------------------------ helpers

    private Path repoDir(String name) throws IOException {
        Path parent = Files.createDirectories(root.resolve(name));
        PgCluster.chownToOwner(parent, false);
        return parent.resolve("pgproof");
    }

    private void startTracked(PgCluster c) {
        started.add(c);
        c.start();
    }

    private static String tcpPsql(PgCluster c, String sql) {
        return PgCluster.runAsOwner(List.of(PgCluster.bin("psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                Integer.toString(c.port()), "-d", "postgres", "-c", sql), null, null).assertOk("psql -h 127.0.0.1: " + sql).stdout().strip();
    }

    private static Map<String, String> snapshot(PgCluster c, String... tables) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String t : tables) {
            out.put(t, c.psql("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t.id)), '-') FROM " + t + " t"));
        }
        return out;
    }

    private static void switchAndWaitForArchive(PgCluster c) {
        String segment = c.psql("SELECT pg_walfile_name(pg_switch_wal())");
        long deadline = System.nanoTime() + ARCHIVE_TIMEOUT.toNanos();
        while (true) {
            String last = c.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
            if (last.length() >= 24 && last.substring(0, 24).compareTo(segment) >= 0) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("segment " + segment + " not archived within " + ARCHIVE_TIMEOUT + "\n--- log ---\n" + c.logTail(40));
            }
            PgCluster.pause(200);
        }
    }


    private static PgCluster.ProcessResult ok(PgCluster.ProcessResult r, String what) {
        return r.assertOk("pgproof " + what);
    }

}
