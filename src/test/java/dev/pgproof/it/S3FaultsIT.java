package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * S3 faults against the real server (s3proxy), which tests stop and start again (same port, same
 * data): stopped in the middle of a backup, of archive-push and of archive-get; wrong credentials,
 * a missing bucket, an unreachable endpoint; keys in a configuration file others can read, and a
 * secret on the command line. pgproof runs with s3-request-timeout 2 and s3-timeout 8, so every
 * failure must come within seconds: a hang is a bug.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class S3FaultsIT {
    private static final String CLUSTER = "main";
    private static final String BUCKET = "pgproof-faults";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration HOOK_TIMEOUT = Duration.ofSeconds(90);
    /** s3-timeout (8 s) per operation, a few operations, JVM start: generous, but far from a hang. */
    private static final long FAIL_WITHIN_MS = 45_000;

    @TempDir
    static Path tmp;

    private S3Server server;
    private Path root;
    private Path work;
    private Path conf;
    private String url;
    private PgCluster main;
    private String initOutput;

    @BeforeAll
    void setUp() throws IOException {
        server = S3Server.shared();
        server.createBucket(BUCKET);
        root = tmp.toRealPath();
        PgCluster.makeReachable(root);
        work = Files.createDirectories(root.resolve("work"));
        PgCluster.chownToOwner(work, false);
        conf = server.writeConfig(root.resolve("pgproof.conf"), "s3-request-timeout = 2\ns3-timeout = 8");
        url = "s3://" + BUCKET + "/faults-" + ProcessHandle.current().pid();
        main = PgCluster.create(root.resolve("clusters"), "main", PgCluster.freePort());
        main.configure("archive_mode", "on");
        main.start();
        PgCluster.ProcessResult init = Pgproof.run(args("init", "--cluster", CLUSTER, "--pgdata", main.dataDir().toString(), "--configure"));
        init.assertOk("init");
        initOutput = init.stdout();
        main.restart(); // archive_mode was off
        main.psql("CREATE TABLE keeper AS SELECT g, repeat(md5(g::text), 4) AS pad FROM generate_series(1, 20000) g");
        Pgproof.run(args("backup", "--cluster", CLUSTER, "--pgdata", main.dataDir().toString(), "--start-fast")).assertOk("first backup");
    }

    @AfterEach
    void serverBack() {
        server.start();
    }

    @AfterAll
    void tearDown() {
        if (main != null) {
            main.stop();
        }
    }

    @Test
    @Order(0)
    void initConfiguresArchiveCommandWithTheConfigFileNotTheKeys() {
        assertThat(initOutput).contains("archive_command = '" + Pgproof.LAUNCHER + " archive-push --cluster " + CLUSTER + " --repo " + url
                + " --config " + conf + " %p'");
        assertThat(initOutput).doesNotContain(S3Server.CREDENTIAL).doesNotContain(S3Server.IDENTITY);
        assertThat(main.psql("SHOW archive_command")).contains("--config " + conf).doesNotContain(S3Server.CREDENTIAL);
    }

    @Test
    @Order(1)
    void backupFailsCleanlyWhenTheServerStopsMidCopy() throws Exception {
        List<String> before = completeLabels();
        Path release = work.resolve("release-backup");
        long elapsed;
        PgCluster.ProcessResult r;
        try (Running p = Running.asOwner(work, hook("backup-mid-copy", release),
                args("backup", "--cluster", CLUSTER, "--pgdata", main.dataDir().toString(), "--start-fast", "--jobs", "2"))) {
            p.awaitLine("HOOK backup-mid-copy", HOOK_TIMEOUT);
            server.stop();
            long t0 = System.nanoTime();
            Files.createFile(release);
            r = p.waitFor(Duration.ofMinutes(3));
            elapsed = (System.nanoTime() - t0) / 1_000_000;
        } finally {
            server.start();
        }
        assertThat(r.exitCode()).as("backup exit code\n" + r.stderr()).isEqualTo(8);
        assertThat(elapsed).as("backup failed after %d ms", elapsed).isLessThan(FAIL_WITHIN_MS);
        String error = firstError(r.stderr());
        assertThat(error).startsWith("ERROR: could not write to repository \"" + url + " (endpoint " + server.endpoint() + ")\": S3 ")
                .contains(server.endpoint());
        assertThat(r.stderr()).contains("HINT: check free space and permissions of the repository; the backup was not marked complete");
        assertThat(r.stdout()).isEmpty();
        assertThat(completeLabels()).as("complete backups after the failed one").isEqualTo(before);
    }

    @Test
    @Order(2)
    void archivePushFailsWithinTheTimeoutWhenTheServerStopsAndPostgresRetriesAfterwards() throws Exception {
        // pgproof alone, paused before its upload, then the server goes away.
        String segment = main.psql("SELECT pg_walfile_name(pg_current_wal_lsn())");
        Path copy = work.resolve("segment-copy");
        Files.createDirectories(copy);
        PgCluster.chownToOwner(copy, false);
        main.psql("SELECT pg_switch_wal()");
        awaitArchived(segment);
        PgCluster.runAsOwner(List.of("cp", main.dataDir().resolve("pg_wal").resolve(segment).toString(), copy.toString()), null, null)
                .assertOk("copy of " + segment);
        Path release = work.resolve("release-push");
        long elapsed;
        PgCluster.ProcessResult r;
        // The segment is stored already: delete it so that the push has to upload.
        for (String key : objectsOf(segment)) {
            delete(key);
        }
        try (Running p = Running.asOwner(work, hook("archive-push-before-commit", release),
                args("archive-push", "--cluster", CLUSTER, copy.resolve(segment).toString()))) {
            p.awaitLine("HOOK archive-push-before-commit", HOOK_TIMEOUT);
            server.stop();
            long t0 = System.nanoTime();
            Files.createFile(release);
            r = p.waitFor(Duration.ofMinutes(2));
            elapsed = (System.nanoTime() - t0) / 1_000_000;
        } finally {
            server.start();
        }
        assertThat(r.exitCode()).as("archive-push exit code\n" + r.stderr()).isBetween(1, 125);
        assertThat(elapsed).as("archive-push failed after %d ms", elapsed).isLessThan(FAIL_WITHIN_MS);
        assertThat(firstError(r.stderr())).startsWith("ERROR: could not store WAL file \"" + segment + "\" in repository \"" + url
                + " (endpoint " + server.endpoint() + ")\": S3 ");
        assertThat(objectsOf(segment)).as("stored copies of " + segment + " after the failed push").isEmpty();
        // Put it back the normal way, so that the archive has no gap.
        PgCluster.ProcessResult again = Pgproof.runAsOwner(work, Map.of(), args("archive-push", "--cluster", CLUSTER,
                copy.resolve(segment).toString())).assertOk("push again");
        // What PostgreSQL's log gets from a push to S3: pgproof's one line, nothing from the SDK or a logger.
        assertThat(again.stderr().lines().toList()).singleElement().asString().startsWith("archive-push: stored " + segment + " for cluster");

        // PostgreSQL's archiver: failures while the server is down, success once it is back.
        server.stop();
        String next;
        long failedBefore = Long.parseLong(main.psql("SELECT failed_count FROM pg_stat_archiver"));
        try {
            next = main.psql("SELECT pg_walfile_name(pg_current_wal_lsn())");
            main.psql("CREATE TABLE during_outage AS SELECT g FROM generate_series(1, 1000) g");
            main.psql("SELECT pg_switch_wal()");
            long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
            while (Long.parseLong(main.psql("SELECT failed_count FROM pg_stat_archiver")) <= failedBefore) {
                assertThat(System.nanoTime()).as("pg_stat_archiver shows no failure while the server is down").isLessThan(deadline);
                PgCluster.pause(200);
            }
            // pg_walfile_name() of an LSN right on a segment boundary names the segment before it, so the failing
            // segment is the one named or the next.
            assertThat(main.psql("SELECT last_failed_wal FROM pg_stat_archiver")).isGreaterThanOrEqualTo(next);
        } finally {
            server.start();
        }
        awaitArchived(next);
        assertThat(objectsOf(next)).hasSize(1);
    }

    @Test
    @Order(3)
    void archiveGetExitsAbove125WhenTheServerStopsMidGet() throws Exception {
        String name = newestBackup().path("startWal").asText();
        Path dest = work.resolve("fetched-" + name);
        Path release = work.resolve("release-get");
        PgCluster.ProcessResult r;
        try (Running p = Running.asOwner(work, hook("archive-get-before-read", release),
                args("archive-get", "--cluster", CLUSTER, name, dest.toString()))) {
            p.awaitLine("HOOK archive-get-before-read", HOOK_TIMEOUT);
            server.stop();
            Files.createFile(release);
            r = p.waitFor(Duration.ofMinutes(2));
        } finally {
            server.start();
        }
        assertThat(r.exitCode()).as("archive-get exit code (never 1, \"not found\")\n" + r.stderr()).isEqualTo(200);
        assertThat(firstError(r.stderr())).startsWith("ERROR: could not read WAL file \"" + CLUSTER + "/wal/").contains(server.endpoint());
        assertThat(dest).doesNotExist();

        // Stopped before archive-get starts: the same, never "not found".
        server.stop();
        try {
            long t0 = System.nanoTime();
            r = Pgproof.runAsOwner(work, Map.of(), args("archive-get", "--cluster", CLUSTER, "0000000100000000000000F0", dest.toString()));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertThat(r.exitCode()).as(r.stderr()).isEqualTo(200);
            assertThat(ms).as("archive-get against a stopped server took %d ms", ms).isLessThan(FAIL_WITHIN_MS);
            assertThat(errorLines(r.stderr())).first().asString().startsWith("ERROR: repository \"" + url + "\": could not reach endpoint "
                    + server.endpoint() + " for bucket \"" + BUCKET + "\": ");
            assertThat(errorLines(r.stderr())).contains("HINT: check --s3-endpoint " + server.endpoint()
                    + ", that the store is running and reachable from this host");
        } finally {
            server.start();
        }
    }

    @Test
    @Order(4)
    void wrongCredentialsGiveOneLineAndAHint() throws Exception {
        Path bad = root.resolve("bad-keys.conf");
        Files.writeString(bad, "[global]\ns3-endpoint = " + server.endpoint() + "\ns3-path-style = true\ns3-access-key = "
                + S3Server.IDENTITY + "\ns3-secret-key = not-the-secret\ns3-request-timeout = 2\ns3-timeout = 8\n");
        Files.setPosixFilePermissions(bad, PosixFilePermissions.fromString("rw-------"));
        PgCluster.chownToOwner(bad, false);
        for (String cmd : List.of("info", "archive-get")) {
            PgCluster.ProcessResult r = cmd.equals("info")
                    ? Pgproof.run("info", "--cluster", CLUSTER, "--repo", url, "--config", bad.toString())
                    : Pgproof.runAsOwner(work, Map.of(), "archive-get", "--cluster", CLUSTER, "--repo", url, "--config", bad.toString(),
                            "000000010000000000000001", work.resolve("x").toString());
            assertThat(r.exitCode()).as(cmd + "\n" + r.stderr()).isEqualTo(cmd.equals("info") ? 6 : 200);
            List<String> lines = errorLines(r.stderr());
            assertThat(lines.get(0)).startsWith("ERROR: repository \"" + url + "\": access to bucket \"" + BUCKET + "\" at endpoint "
                    + server.endpoint() + " was denied: ");
            assertThat(lines.subList(1, lines.size())).containsExactly(
                    "HINT: check the credentials: s3-access-key and s3-secret-key in the configuration file, or the AWS SDK's chain "
                            + "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance or container role)",
                    "HINT: they need s3:ListBucket on " + BUCKET + " and s3:GetObject, s3:PutObject, s3:DeleteObject on its objects (see the README)");
            assertThat(r.stderr()).doesNotContain("Exception").doesNotContain("\tat ");
        }
    }

    @Test
    @Order(5)
    void aMissingBucketIsNamedAndNeverCreated() {
        String missing = "s3://pgproof-no-such-bucket/x";
        PgCluster.ProcessResult r = Pgproof.run("info", "--cluster", CLUSTER, "--repo", missing, "--config", conf.toString());
        FaultsIT.assertError(r, 6, "repository \"" + missing + "\": bucket \"pgproof-no-such-bucket\" does not exist at endpoint "
                + server.endpoint(),
                "pgproof never creates buckets: create it (e.g. aws s3 mb s3://pgproof-no-such-bucket), or fix --repo and --s3-endpoint "
                        + server.endpoint());
        r = Pgproof.run("init", "--cluster", "other", "--repo", missing, "--config", conf.toString(), "--pgdata", main.dataDir().toString());
        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(6);
        try (var c = server.client()) {
            assertThat(c.listBuckets().buckets()).noneMatch(b -> b.name().equals("pgproof-no-such-bucket"));
        }
    }

    @Test
    @Order(6)
    void keysInAFileOthersCanReadAndSecretsOnTheCommandLineAreRefused() throws Exception {
        Path open = root.resolve("open.conf");
        Files.writeString(open, Files.readString(conf));
        Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rw-r--r--"));
        PgCluster.ProcessResult r = Pgproof.run("info", "--cluster", CLUSTER, "--repo", url, "--config", open.toString());
        FaultsIT.assertError(r, 3, "configuration file \"" + open + "\" holds S3 keys but is accessible by group or others (mode 0644)",
                "make it private to its owner: chmod 600 " + open);

        r = Pgproof.runAsOwner(work, Map.of(), "archive-push", "--cluster", CLUSTER, "--repo", url, "--config", conf.toString(),
                "--s3-secret-key", "leaked", "pg_wal/000000010000000000000001");
        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(3);
        assertThat(firstError(r.stderr())).isEqualTo("ERROR: setting \"s3-secret-key\" is a secret and is read only from the configuration "
                + "file, not from --s3-secret-key or PGPROOF_S3_SECRET_KEY");
    }

    // ------------------------------------------------------------------ helpers

    private String[] args(String command, String... rest) {
        List<String> a = new ArrayList<>(List.of(command, "--repo", url, "--config", conf.toString()));
        a.addAll(List.of(rest));
        return a.toArray(new String[0]);
    }

    private static Map<String, String> hook(String point, Path release) {
        return Pgproof.hook(point, release);
    }

    private JsonNode info() throws IOException {
        PgCluster.ProcessResult r = Pgproof.run(args("info", "--cluster", CLUSTER, "--output", "json")).assertOk("info");
        return JSON.readTree(r.stdout()).path("clusters").get(0);
    }

    private JsonNode newestBackup() throws IOException {
        JsonNode b = info().path("backups");
        assertThat(b).isNotEmpty();
        return b.get(b.size() - 1);
    }

    private List<String> completeLabels() throws IOException {
        List<String> out = new ArrayList<>();
        info().path("backups").forEach(b -> out.add(b.path("label").asText()));
        return out;
    }

    private TestRepo view;

    private TestRepo view() {
        if (view == null) {
            view = TestRepo.s3(server, BUCKET, url.substring(("s3://" + BUCKET + "/").length()), conf);
        }
        return view;
    }

    private List<String> objectsOf(String segment) {
        return new ArrayList<>(view().listing(CLUSTER + "/wal/" + segment.substring(0, 16) + "/" + segment + "-").keySet());
    }

    private void delete(String key) throws IOException {
        view().storage().delete(key);
    }

    /** Waits until PostgreSQL's archiver is done with the segment (archive-push exited 0) and its object is there. */
    private void awaitArchived(String segment) {
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (main.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver").compareTo(segment) < 0 || objectsOf(segment).isEmpty()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(segment + " was not archived within 90 s: "
                        + main.psql("SELECT last_archived_wal, failed_count, last_failed_wal FROM pg_stat_archiver") + "\n" + main.logTail(30));
            }
            PgCluster.pause(200);
        }
    }

    private static String firstError(String stderr) {
        return errorLines(stderr).get(0);
    }

    /** The ERROR line and the HINT lines after it. */
    private static List<String> errorLines(String stderr) {
        List<String> lines = stderr.lines().toList();
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).startsWith("ERROR: ")) {
                List<String> out = new ArrayList<>(List.of(lines.get(i)));
                for (int j = i + 1; j < lines.size() && lines.get(j).startsWith("HINT: "); j++) {
                    out.add(lines.get(j));
                }
                return out;
            }
        }
        throw new AssertionError("no ERROR line in:\n" + stderr);
    }
}
