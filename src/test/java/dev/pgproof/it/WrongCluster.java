package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * pgproof talks to the right cluster, or to none. Three clusters run at once:
 * <ul>
 * <li>A on port 5432 when it is free (the port libpq and most tools default to), else any port,
 * and PGHOST/PGPORT in pgproof's environment point at A;
 * <li>B, on a non-standard port, is the cluster "b" in the repository;
 * <li>B2, a restored copy of B (same system identifier, other data directory) on a third port.
 * </ul>
 * A backup given only B's data directory reaches B whatever PGHOST/PGPORT say; A's WAL, a server
 * override to A or to B2, and init of "b" with A's data directory are all refused with exit code
 * 5 (identity mismatch) before anything is stored or copied. Runs once per repository backend
 * (WrongClusterPosixIT, WrongClusterS3IT).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class WrongCluster {
    private static final int IDENTITY = 5;
    private static final int STANDARD_PORT = 5432;
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path tmp;

    private boolean standardPortWasFree;
    private TestRepo repo;
    private PgCluster a;
    private PgCluster b;
    private PgCluster b2;
    private Path aData;
    private Path bData;
    private Path b2Data;
    private String aSysid;
    private String bSysid;
    /** PGHOST and PGPORT naming A, as a user's shell might have them. */
    private Map<String, String> env;
    private PgCluster.ProcessResult backupOfB;
    private String label;

    /** The repository under test; {@code root} is reachable by the cluster OS user. */
    protected abstract TestRepo repository(Path root);

    @BeforeAll
    void setUp() throws IOException {
        Path root = tmp.toRealPath();
        PgCluster.makeReachable(root);
        repo = repository(root);
        Path restores = Files.createDirectories(root.resolve("restores"));
        PgCluster.chownToOwner(restores, false);

        standardPortWasFree = portFree(STANDARD_PORT);
        int aPort = standardPortWasFree ? STANDARD_PORT : PgCluster.freePort();
        a = PgCluster.create(root.resolve("clusters"), "a", aPort);
        b = PgCluster.create(root.resolve("clusters"), "b", PgCluster.freePort());
        b.configure("archive_mode", "on");
        b.configure("archive_command", PgCluster.quote(repo.archiveCommand("b")));
        a.start();
        b.start();
        aData = a.dataDir().toRealPath();
        bData = b.dataDir().toRealPath();
        aSysid = a.controlData().get("Database system identifier");
        bSysid = b.controlData().get("Database system identifier");
        assertThat(aSysid).isNotEqualTo(bSysid);
        env = Map.of("PGHOST", a.socketDir().toString(), "PGPORT", Integer.toString(a.port()));

        // A: a complete WAL segment to push under the wrong name.
        a.psql("CREATE TABLE a_only AS SELECT g FROM generate_series(1, 1000) g");
        a.psql("SELECT pg_switch_wal()");

        Pgproof.run(env, repo.command("init", "--cluster", "b", "--pgdata", bData.toString())).assertOk("init of b");
        backupOfB = Pgproof.run(env, repo.command("backup", "--cluster", "b", "--pgdata", bData.toString(), "--start-fast"));
        backupOfB.assertOk("backup of b with PGHOST/PGPORT naming A");
        label = backupOfB.stdout().strip();

        // B2: B's backup restored elsewhere and started: the same system identifier in another data directory.
        Path dest = restores.resolve("b2");
        Pgproof.run(env, repo.command("restore", "--cluster", "b", "--pgdata", dest.toString(), "--archive-mode", "off"))
                .assertOk("restore of b into " + dest);
        b2 = PgCluster.adopt(dest, restores.resolve("b2-sock"), PgCluster.freePort());
        b2.start();
        b2Data = b2.dataDir().toRealPath();
        assertThat(b2.controlData().get("Database system identifier")).isEqualTo(bSysid);
    }

    @AfterAll
    void tearDown() {
        for (PgCluster c : new PgCluster[] {b2, b, a}) {
            if (c != null) {
                c.stop();
            }
        }
    }

    @Test
    void threeClustersRunAtOnceAndAUsesTheStandardPortWhenItIsFree() {
        if (standardPortWasFree) {
            assertThat(a.port()).isEqualTo(STANDARD_PORT);
        }
        assertThat(a.psql("SHOW port")).isEqualTo(Integer.toString(a.port()));
        assertThat(b.port()).isNotEqualTo(STANDARD_PORT).isNotEqualTo(a.port());
        assertThat(b2.port()).isNotEqualTo(STANDARD_PORT).isNotEqualTo(a.port()).isNotEqualTo(b.port());
        assertThat(a.psql("SHOW data_directory")).isEqualTo(aData.toString());
        assertThat(b.psql("SHOW data_directory")).isEqualTo(bData.toString());
        assertThat(b2.psql("SHOW data_directory")).isEqualTo(b2Data.toString());
        assertThat(b2.psql("SELECT system_identifier FROM pg_control_system()")).isEqualTo(bSysid);
    }

    @Test
    void backupGivenOnlyTheDataDirectoryReachesBDespitePghostAndPgport() throws IOException {
        assertThat(label).matches("\\d{8}-\\d{6}F");
        assertThat(backupOfB.stderr()).contains("cluster \"b\": connecting to port " + b.port() + " (socket \"" + b.socketDir()
                + "\") for data directory \"" + bData + "\"");
        assertThat(backupOfB.stderr()).doesNotContain("ERROR");

        PgCluster.ProcessResult r = Pgproof.run(env, repo.command("info", "--cluster", "b", "--output", "json"));
        r.assertOk("info");
        JsonNode c = JSON.readTree(r.stdout()).path("clusters").get(0);
        assertThat(c.path("name").asText()).isEqualTo("b");
        assertThat(c.path("identity").path("systemIdentifier").asText()).isEqualTo(bSysid);
        assertThat(c.path("backups")).hasSize(1);
        assertThat(c.path("backups").get(0).path("label").asText()).isEqualTo(label);
    }

    @Test
    void walOfAPushedAsClusterBIsRefusedAndNothingIsStored() throws IOException {
        String segment = firstCompleteSegment(aData.resolve("pg_wal"));
        waitUntilArchiverIdle(b); // B's own archiver must not change R/b/wal between the listings
        Map<String, Long> before = repo.listing("b/wal/");
        assertThat(before).isNotEmpty();

        PgCluster.ProcessResult r = Pgproof.runAsOwner(aData, env, repo.command("archive-push", "--cluster", "b", "pg_wal/" + segment));

        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(IDENTITY);
        assertThat(errorLines(r.stderr())).containsExactly(
                "ERROR: WAL file \"" + aData.resolve("pg_wal").resolve(segment) + "\" belongs to system identifier " + aSysid
                        + ", but cluster \"b\" in repository \"" + repo.describe() + "\" is pinned to system identifier " + bSysid,
                "HINT: this server's archive_command names the wrong cluster: give it the --cluster (and --repo) initialised for this server",
                "HINT: see which clusters a repository holds with: pgproof info --repo " + repo.location());
        assertThat(repo.listing("b/wal/")).as("R/b/wal after the refused push").isEqualTo(before);
    }

    @Test
    void backupOfBWithAsPortIsRefusedBeforeCopying() throws IOException {
        List<String> backupsBefore = backupDirs();

        PgCluster.ProcessResult r = Pgproof.run(env, repo.command("backup", "--cluster", "b", "--pgdata", bData.toString(),
                "--start-fast", "--port", Integer.toString(a.port()), "--host", a.socketDir().toString()));

        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(IDENTITY);
        assertThat(r.stdout()).isEmpty();
        assertThat(errorLines(r.stderr())).containsExactly(
                "ERROR: cluster \"b\": the server at port " + a.port() + " (socket \"" + a.socketDir() + "\") is not the cluster in "
                        + "data directory \"" + bData + "\": it runs data directory \"" + aData + "\" with system identifier " + aSysid
                        + ", while \"" + bData + "\" has system identifier " + bSysid,
                overrideHint());
        assertThat(backupDirs()).as("backups of b after the refused backup").isEqualTo(backupsBefore);
    }

    @Test
    void backupOfBWithItsRestoredCopysPortIsRefusedThoughTheSystemIdentifiersAreEqual() throws IOException {
        List<String> backupsBefore = backupDirs();

        PgCluster.ProcessResult r = Pgproof.run(env, repo.command("backup", "--cluster", "b", "--pgdata", bData.toString(),
                "--start-fast", "--port", Integer.toString(b2.port()), "--host", b2.socketDir().toString()));

        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(IDENTITY);
        assertThat(r.stdout()).isEmpty();
        assertThat(errorLines(r.stderr())).containsExactly(
                "ERROR: cluster \"b\": the server at port " + b2.port() + " (socket \"" + b2.socketDir() + "\") is not the cluster in "
                        + "data directory \"" + bData + "\": it runs data directory \"" + b2Data + "\" with system identifier " + bSysid
                        + ", while \"" + bData + "\" has system identifier " + bSysid,
                overrideHint());
        assertThat(backupDirs()).as("backups of b after the refused backup").isEqualTo(backupsBefore);
    }

    @Test
    void initOfBWithAsDataDirectoryIsRefused() throws IOException {
        byte[] pinned = repo.read("b/cluster.info");

        PgCluster.ProcessResult r = Pgproof.run(env, repo.command("init", "--cluster", "b", "--pgdata", aData.toString()));

        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(IDENTITY);
        assertThat(errorLines(r.stderr())).containsExactly(
                "ERROR: cluster \"b\" in repository \"" + repo.describe() + "\" is pinned to system identifier " + bSysid + ", PostgreSQL 15, "
                        + "but data directory \"" + aData + "\" has system identifier " + aSysid + ", PostgreSQL 15",
                "HINT: this name belongs to another cluster: choose a new --cluster name for \"" + aData + "\"");
        assertThat(repo.read("b/cluster.info")).as("cluster.info of b after the refused init").isEqualTo(pinned);
        assertThat(a.psql("SHOW archive_mode")).isEqualTo("off");
    }

    // ------------------------------------------------------------------ helpers

    private String overrideHint() {
        return "HINT: remove --host/--port (or host/port in the configuration and PGPROOF_HOST/PGPROOF_PORT): pgproof finds the server of \""
                + bData + "\" from its postmaster.pid (port " + b.port() + " (socket \"" + b.socketDir() + "\"))";
    }

    /** Waits until the cluster has no WAL file left to archive (the backup history file comes last). */
    private static void waitUntilArchiverIdle(PgCluster c) throws IOException {
        Path status = c.dataDir().resolve("pg_wal/archive_status");
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (true) {
            List<String> ready;
            try (Stream<Path> files = Files.list(status)) {
                ready = files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".ready")).toList();
            }
            if (ready.isEmpty()) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError(c + " did not archive " + ready + " within 60 s\n--- log ---\n" + c.logTail(40));
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted", e);
            }
        }
    }

    /** The lines of stderr from the first ERROR line on. */
    private static List<String> errorLines(String stderr) {
        List<String> lines = Arrays.asList(stderr.split("\n"));
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).startsWith("ERROR: ")) {
                return new ArrayList<>(lines.subList(i, lines.size()));
            }
        }
        throw new AssertionError("no ERROR line in:\n" + stderr);
    }

    /** The name of the first complete (16 MiB) segment in a pg_wal directory. */
    private static String firstCompleteSegment(Path pgWal) throws IOException {
        try (Stream<Path> files = Files.list(pgWal)) {
            return files.filter(p -> p.getFileName().toString().matches("[0-9A-F]{24}"))
                    .filter(p -> size(p) == 16L * 1024 * 1024)
                    .map(p -> p.getFileName().toString())
                    .sorted()
                    .findFirst()
                    .orElseThrow(() -> new AssertionError("no 16 MiB segment in " + pgWal));
        }
    }

    private List<String> backupDirs() throws IOException {
        return repo.storage().listPrefixes("b/backup/");
    }

    private static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static boolean portFree(int port) {
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(false);
            s.bind(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), port));
            return !Files.exists(Path.of("/var/run/postgresql/.s.PGSQL." + port));
        } catch (IOException busy) {
            return false;
        }
    }
}
