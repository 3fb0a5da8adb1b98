package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * verify and prove against a real PostgreSQL 15 cluster archiving into a real repository.
 *
 * <p>One source cluster ("prv": pgbench scale 1, plus a database "shop" with a table the check
 * queries look at) and one repository with one backup are shared by all tests. Tests that damage
 * a repository damage a copy of it ({@code cp -a}), so the original stays healthy for the others.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ProveIT {
    private static final String CLUSTER = "prv";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration ARCHIVE_TIMEOUT = Duration.ofSeconds(90);

    @TempDir
    static Path tmp;

    private Path root;
    private Path repo;
    private Path config;
    private PgCluster source;
    private String label;
    private String stopWal;
    private Path tablespace;
    private String tablespaceOid;
    /** A time after the backup at which shop.orders had 100 rows (50 more are inserted after it). */
    private String targetTime;

    @BeforeAll
    void setUp() throws IOException {
        root = tmp.toRealPath();
        PgCluster.makeReachable(root);
        Path repoParent = Files.createDirectories(root.resolve("repo"));
        PgCluster.chownToOwner(repoParent, false);
        repo = repoParent.resolve("pgproof");

        source = PgCluster.create(root.resolve("clusters"), "prv", PgCluster.freePort());
        source.configure("archive_mode", "on");
        source.configure("archive_command", PgCluster.quote(Pgproof.archiveCommand(CLUSTER, repo)));
        source.start();
        ok(Pgproof.run("init", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", source.dataDir().toString()), "init");

        source.pgbench("-i", "-s", "1", "-q");
        source.psql("CREATE DATABASE shop");
        source.psqlDb("shop", "CREATE TABLE orders (id int PRIMARY KEY, created timestamptz NOT NULL DEFAULT now(), note text)");
        // Long notes go to TOAST, which prove reads too.
        source.psqlDb("shop", "INSERT INTO orders (id, note) SELECT g, repeat(md5(g::text), 200) FROM generate_series(1, 100) g");
        source.psqlDb("shop", "CREATE INDEX orders_created ON orders (created)");

        // A tablespace outside the data directory: prove must remap it into its scratch directory.
        tablespace = Files.createDirectories(root.resolve("tablespaces").resolve("ts1"));
        PgCluster.chownToOwner(root.resolve("tablespaces"), true);
        PgCluster.makeReachable(root.resolve("tablespaces"));
        Files.setPosixFilePermissions(tablespace, PosixFilePermissions.fromString("rwx------"));
        source.psql("CREATE TABLESPACE ts1 LOCATION " + PgCluster.quote(tablespace.toString()));
        source.psqlDb("shop", "CREATE TABLE stock (id int PRIMARY KEY, qty int) TABLESPACE ts1");
        source.psqlDb("shop", "INSERT INTO stock SELECT g, g % 10 FROM generate_series(1, 2000) g");
        tablespaceOid = source.psql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'");

        // Traps for a throwaway server that read the copy's own configuration: an include of a file that
        // does not exist here (as a configuration pointing at real paths might), and an ALTER SYSTEM
        // preload of a library that does not exist. The source never rereads them; prove must ignore them.
        Files.writeString(source.dataDir().resolve("postgresql.conf"), "include '/nonexistent/pgproof-it/live.conf'\n",
                StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.APPEND);
        source.psql("ALTER SYSTEM SET shared_preload_libraries = 'pgproof_it_no_such_library'");

        config = root.resolve("pgproof.conf");
        Files.writeString(config, String.join("\n",
                "[global]",
                "jobs = 2",
                "",
                "[" + CLUSTER + "]",
                "check-query-orders-fresh = SELECT max(created) > now() - interval '1 day' FROM orders",
                "check-database-orders-fresh = shop",
                "check-query-branches = SELECT count(*) = 1 FROM pgbench_branches",
                ""), StandardCharsets.UTF_8);
        Files.setPosixFilePermissions(config, PosixFilePermissions.fromString("rw-r--r--"));

        PgCluster.ProcessResult b = ok(Pgproof.run("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                source.dataDir().toString(), "--start-fast"), "backup");
        label = b.stdout().strip();
        stopWal = info(repo).path("backups").get(0).path("stopWal").asText();

        // WAL after the backup, in at least two more segments: the gap test removes the first of them.
        source.pgbench("-c", "2", "-t", "300", "-n");
        switchAndWaitForArchive();
        source.psql("SELECT pg_sleep(1)");
        targetTime = source.psql("SELECT now()");
        source.psql("SELECT pg_sleep(1)");
        source.psqlDb("shop", "INSERT INTO orders (id, note) SELECT g, 'after the backup' FROM generate_series(101, 150) g");
        switchAndWaitForArchive();
        source.psql("CREATE TABLE prv_last AS SELECT g AS id FROM generate_series(1, 10) g");
        switchAndWaitForArchive();
    }

    @AfterAll
    void tearDown() {
        if (source != null) {
            source.stop();
        }
    }

    @Test
    @Order(1)
    void verify_healthyRepositoryHasNoProblem() throws IOException {
        PgCluster.ProcessResult r = ok(Pgproof.run("verify", "--repo", repo.toString(), "--jobs", "2"), "verify");
        System.out.println("verify (healthy):\n" + r.stdout() + r.stderr());
        assertThat(r.stderr()).contains("verify of cluster \"" + CLUSTER + "\" in repository \"" + repo + "\"");
        assertThat(r.stdout()).doesNotContain("PROBLEM").containsPattern("verified 1 cluster\\(s\\): 1 backup\\(s\\), \\d+ files, \\d+ chunks, "
                + "\\d+ WAL files, .* in .* s \\(.*/s\\): no problems");

        JsonNode j = JSON.readTree(ok(Pgproof.run("verify", "--repo", repo.toString(), "--cluster", CLUSTER, "--output", "json"),
                "verify json").stdout());
        assertThat(j.path("ok").asBoolean()).isTrue();
        assertThat(j.path("problems").asInt()).isZero();
        JsonNode c = j.path("clusters").get(0);
        assertThat(c.path("cluster").asText()).isEqualTo(CLUSTER);
        assertThat(c.path("backups").asInt()).isEqualTo(1);
        assertThat(c.path("files").asLong()).isGreaterThan(900);
        assertThat(c.path("walFiles").asLong()).isGreaterThanOrEqualTo(5);
        assertThat(c.path("problems")).isEmpty();
    }

    @Test
    @Order(2)
    void prove_healthyBackupPassesEveryCheckAndIsRecorded() throws IOException {
        Path proveDir = proveDir("healthy");
        long t0 = System.nanoTime();
        PgCluster.ProcessResult r = Pgproof.run("prove", "--cluster", CLUSTER, "--repo", repo.toString(), "--config", config.toString(),
                "--prove-dir", proveDir.toString(), "--keep");
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.out.printf("prove (healthy) took %.1f s:%n%s%n%s%n", seconds, r.stdout(), r.stderr());
        assertThat(r.exitCode()).as(r.stdout() + r.stderr()).isZero();
        for (String check : List.of("WAL needed by backup " + label, "restore", "pg_verifybackup", "system identifier of the restored pg_control",
                "recovery", "system identifier", "list databases", "amcheck postgres", "read tables postgres", "amcheck shop", "read tables shop",
                "check query branches", "check query orders-fresh", "clean stop", "pg_checksums")) {
            assertThat(r.stdout()).as("check " + check).containsPattern("(?m)^PASS  " + java.util.regex.Pattern.quote(check) + " ");
        }
        assertThat(r.stdout()).doesNotContain("FAIL").contains("of backup " + label + " (cluster \"" + CLUSTER + "\", target: end of archive): PASSED");
        assertThat(r.stdout()).containsPattern("(?m)^PASS  restore .*, 1 tablespace\\(s\\) remapped into the scratch directory");
        assertThat(r.stdout()).containsPattern("PASS  read tables shop .* tables in pg_class read in full \\(\\d+ rows");
        assertThat(r.stdout()).containsPattern("PASS  amcheck postgres .* [1-9]\\d* B-tree index\\(es\\) checked");
        assertThat(r.stderr()).contains("prove: recovering").contains("restored from the archive");

        // The throwaway server ran on its own configuration: no TCP, private socket, no archiving.
        Path scratch = onlyChild(proveDir);
        String conf = Files.readString(scratch.resolve("conf/postgresql.conf"));
        assertThat(conf).contains("listen_addresses = ''").contains("archive_mode = 'off'").contains("shared_preload_libraries = ''")
                .contains("max_logical_replication_workers = '0'").contains("unix_socket_directories = '" + scratch.resolve("sock") + "'");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(scratch.resolve("sock")))).isEqualTo("rwx------");
        assertThat(scratch.resolve("data/postmaster.pid")).as("the throwaway server is stopped").doesNotExist();
        assertThat(Files.readString(scratch.resolve("conf/pg_hba.conf"))).contains("local all all trust").doesNotContain("host");
        assertThat(Files.readSymbolicLink(scratch.resolve("data/pg_tblspc/" + tablespaceOid))).isEqualTo(scratch.resolve("tablespaces/" + tablespaceOid));
        try (Stream<Path> s = Files.list(tablespace)) {
            assertThat(s.toList()).as("the live tablespace holds only the source's directory").hasSize(1);
        }

        // Recorded: info shows the proof, and the promoted copy pushed nothing into the repository.
        JsonNode c = info(repo);
        JsonNode p = c.path("newestProof");
        assertThat(p.path("passed").asBoolean()).isTrue();
        assertThat(p.path("backupLabel").asText()).isEqualTo(label);
        assertThat(p.path("label").asText()).endsWith("-" + label);
        assertThat(p.path("target").asText()).isEqualTo("end of archive");
        assertThat(p.path("reachedLsn").asText()).matches("[0-9A-F]+/[0-9A-F]+");
        assertThat(p.path("failedChecks")).isEmpty();
        assertThat(c.path("wal").path("timelines").toString()).isEqualTo("[1]");
        try (Stream<Path> s = Files.list(repo.resolve(CLUSTER).resolve("proof"))) {
            assertThat(s.map(x -> x.getFileName().toString()).toList()).contains(p.path("label").asText() + ".json");
        }
        String text = ok(Pgproof.run("info", "--repo", repo.toString(), "--cluster", CLUSTER), "info").stdout();
        assertThat(text).contains("newest proof: " + p.path("label").asText() + "  PASSED  backup " + label);
    }

    @Test
    @Order(3)
    void prove_checkQueryReturningFalseFailsTheProofAndKeepsTheCopyWhenAsked() throws IOException {
        // A long scratch path: the socket cannot live in it (107 bytes at most), so it goes to a private directory in /tmp.
        Path proveDir = proveDir("false-check-in-a-directory-whose-long-name-pushes-the-socket-path-past-its-limit");
        PgCluster.ProcessResult r = Pgproof.run("prove", "--cluster", CLUSTER, "--repo", repo.toString(), "--config", config.toString(),
                "--prove-dir", proveDir.toString(), "--keep-on-failure", "--check-query", "no-refunds=SELECT count(*) = 0 FROM pgbench_branches",
                "--check-query", "slow=SELECT pg_sleep(6)::text = ''");
        System.out.println("prove (false check):\n" + r.stdout() + r.stderr());
        assertThat(r.exitCode()).as(r.stdout() + r.stderr()).isEqualTo(13);
        assertThat(r.stdout()).containsPattern("(?m)^FAIL  check query no-refunds .* returned false \\(database postgres\\): "
                + "SELECT count\\(\\*\\) = 0 FROM pgbench_branches");
        assertThat(r.stdout()).containsPattern("(?m)^PASS  check query orders-fresh ").containsPattern("(?m)^PASS  pg_checksums ")
                .containsPattern("(?m)^PASS  check query slow ");
        assertThat(r.stderr()).as("a long step says it still runs").contains("prove: check query slow: still running after 5.");
        assertThat(r.stderr()).contains("ERROR: proof of backup " + label + " of cluster \"" + CLUSTER + "\" failed: check query no-refunds: returned false")
                .contains("HINT: the failed proof is recorded as ");
        JsonNode p = info(repo).path("newestProof");
        assertThat(p.path("passed").asBoolean()).isFalse();
        assertThat(p.path("failedChecks").toString()).isEqualTo("[\"check query no-refunds\"]");
        java.util.regex.Matcher sock = java.util.regex.Pattern.compile("the socket goes into the private directory \"([^\"]+)\" \\(0700\\)")
                .matcher(r.stderr());
        assertThat(sock.find()).as("socket directory outside the long scratch path").isTrue();
        assertThat(Path.of(sock.group(1))).as("socket directory removed").doesNotExist();
        Path scratch = onlyChild(proveDir);
        assertThat(scratch.resolve("data/PG_VERSION")).exists();
        assertThat(scratch.resolve("data/postmaster.pid")).as("stopped, even though kept").doesNotExist();
    }

    @Test
    @Order(4)
    void corruptedChunk_verifyAndProveFailAndNameTheFile() throws IOException {
        Path copy = copyRepo("chunk");
        Path chunk = largestChunk(copy);
        String file = fileOfChunk(copy, chunk);
        damage(chunk);
        String key = copy.relativize(chunk).toString();

        PgCluster.ProcessResult v = Pgproof.run("verify", "--repo", copy.toString());
        System.out.println("verify (corrupt chunk):\n" + v.stdout() + v.stderr());
        assertThat(v.exitCode()).as(v.stdout() + v.stderr()).isEqualTo(10);
        assertThat(v.stdout()).containsPattern("PROBLEM " + CLUSTER + " \\[backup-corrupt\\] " + java.util.regex.Pattern.quote(key)
                + ": file \"" + java.util.regex.Pattern.quote(file) + "\" of backup " + label + ": stored chunk ");
        assertThat(v.stdout()).contains(": 1 problem(s)");
        assertThat(v.stderr()).contains("ERROR: verify found 1 problem(s) in repository \"" + copy + "\"");

        Path proveDir = proveDir("chunk");
        PgCluster.ProcessResult p = Pgproof.run("prove", "--cluster", CLUSTER, "--repo", copy.toString(), "--prove-dir", proveDir.toString());
        System.out.println("prove (corrupt chunk):\n" + p.stdout() + p.stderr());
        assertThat(p.exitCode()).as(p.stdout() + p.stderr()).isEqualTo(13);
        assertThat(p.stdout()).containsPattern("(?m)^FAIL  restore .*file \"" + java.util.regex.Pattern.quote(file) + "\"");
        assertThat(p.stderr()).contains("ERROR: proof of backup " + label + " of cluster \"" + CLUSTER + "\" failed: restore: file \"" + file + "\"");
        assertThat(info(copy).path("newestProof").path("passed").asBoolean()).isFalse();
        assertThat(proveDir).as("scratch copy removed after a failure without --keep-on-failure").isEmptyDirectory();
    }

    @Test
    @Order(5)
    void missingWalSegment_verifyReportsTheGapAndProveFails() throws IOException {
        Path copy = copyRepo("gap");
        String missing = nextSegment(stopWal);
        Path seg = walObject(copy, missing);
        Files.delete(seg);

        PgCluster.ProcessResult v = Pgproof.run("verify", "--repo", copy.toString(), "--cluster", CLUSTER);
        System.out.println("verify (gap):\n" + v.stdout() + v.stderr());
        assertThat(v.exitCode()).as(v.stdout() + v.stderr()).isEqualTo(10);
        assertThat(v.stdout()).contains("PROBLEM " + CLUSTER + " [wal-gap] " + CLUSTER + "/wal/" + missing.substring(0, 16) + "/" + missing
                + ": WAL gap: segment " + missing + " is missing; backup(s) " + label + " cannot recover past it");

        Path proveDir = proveDir("gap");
        PgCluster.ProcessResult p = Pgproof.run("prove", "--cluster", CLUSTER, "--repo", copy.toString(), "--prove-dir", proveDir.toString());
        System.out.println("prove (gap):\n" + p.stdout() + p.stderr());
        assertThat(p.exitCode()).as(p.stdout() + p.stderr()).isEqualTo(13);
        assertThat(p.stdout()).containsPattern("(?m)^FAIL  WAL needed by backup " + label + " .*WAL gap .*" + missing);
        assertThat(info(copy).path("newestProof").path("failedChecks").toString()).isEqualTo("[\"WAL needed by backup " + label + "\"]");
    }

    @Test
    @Order(6)
    void verify_reportsEveryProblemNotJustTheFirst() throws IOException {
        Path copy = copyRepo("many");
        Path big = largestChunk(copy);
        damage(big);
        // A second, different file's chunk goes missing.
        Path gone;
        try (Stream<Path> s = Files.walk(copy.resolve(CLUSTER).resolve("backup").resolve(label).resolve("data").resolve("global"))) {
            gone = s.filter(Files::isRegularFile).filter(x -> !x.equals(big)).sorted().findFirst().orElseThrow();
        }
        Files.delete(gone);
        // A backup left by a crash: pieces without manifest or marker.
        Path stray = copy.resolve(CLUSTER).resolve("backup").resolve("20260101-000000F").resolve("data");
        Files.createDirectories(stray);
        Files.writeString(stray.resolve("PG_VERSION.0.raw"), "15\n");
        // A completion marker that is not JSON: one problem, not the end of verify.
        Path garbled = Files.createDirectories(copy.resolve(CLUSTER).resolve("backup").resolve("20260102-000000F"));
        Files.writeString(garbled.resolve("manifest.json.zst"), "{}");
        Files.writeString(garbled.resolve("backup.complete"), "not json");
        // A WAL segment missing, and another one damaged.
        String missing = nextSegment(stopWal);
        Files.delete(walObject(copy, missing));
        String damaged = nextSegment(missing);
        Path damagedObject = walObject(copy, damaged);
        damage(damagedObject);

        // A second copy of a WAL name under another checksum: a conflict (and that copy does not match its name).
        String twice = nextSegment(damaged);
        Path original = walObject(copy, twice);
        Path conflicting = original.resolveSibling(twice + "-" + "0".repeat(64) + ".zst");
        Files.copy(original, conflicting);

        PgCluster.ProcessResult v = Pgproof.run("verify", "--repo", copy.toString(), "--cluster", CLUSTER, "--jobs", "2");
        System.out.println("verify (many problems):\n" + v.stdout() + v.stderr());
        assertThat(v.exitCode()).as(v.stdout() + v.stderr()).isEqualTo(10);
        String out = v.stdout();
        assertThat(out).contains("[backup-corrupt] " + copy.relativize(big));
        assertThat(out).contains("[backup-missing-object] " + copy.relativize(gone) + ": file \"" + fileOfChunk(copy, gone) + "\"");
        assertThat(out).contains("[backup-incomplete] " + CLUSTER + "/backup/20260101-000000F/: backup 20260101-000000F is incomplete");
        assertThat(out).contains("[wal-gap] " + CLUSTER + "/wal/" + missing.substring(0, 16) + "/" + missing);
        assertThat(out).contains("[wal-corrupt] " + copy.relativize(damagedObject));
        assertThat(out).contains("[backup-corrupt] " + CLUSTER + "/backup/20260102-000000F/: backup 20260102-000000F is damaged: \"" + CLUSTER
                + "/backup/20260102-000000F/backup.complete\" is not valid JSON (");
        assertThat(out).containsPattern("\\[wal-conflict\\] \\S+: WAL file " + twice + " is stored 2 times with different contents \\(.*"
                + java.util.regex.Pattern.quote(copy.relativize(conflicting).toString()));
        assertThat(out).contains("[wal-corrupt] " + copy.relativize(conflicting) + ": WAL file " + twice + " is corrupt");
        assertThat(out.lines().filter(l -> l.startsWith("PROBLEM ")).count()).isEqualTo(8);
        assertThat(out).contains(": 8 problem(s)");

        JsonNode j = JSON.readTree(Pgproof.run("verify", "--repo", copy.toString(), "--cluster", CLUSTER, "--output", "json").stdout());
        assertThat(j.path("ok").asBoolean()).isFalse();
        assertThat(j.path("problems").asInt()).isEqualTo(8);
        List<String> kinds = new ArrayList<>();
        j.path("clusters").get(0).path("problems").forEach(x -> kinds.add(x.path("kind").asText()));
        assertThat(kinds).containsExactlyInAnyOrder("backup-corrupt", "backup-corrupt", "backup-missing-object", "backup-incomplete", "wal-gap",
                "wal-corrupt", "wal-corrupt", "wal-conflict");
    }

    @Test
    @Order(7)
    void prove_toATargetTimeStopsThere() throws IOException {
        Path proveDir = proveDir("target");
        PgCluster.ProcessResult r = Pgproof.run("prove", "--cluster", CLUSTER, "--repo", repo.toString(), "--config", config.toString(),
                "--prove-dir", proveDir.toString(), "--target-time", targetTime, "--check-query", "at-target=SELECT count(*) = 100 FROM orders",
                "--check-database", "at-target=shop");
        System.out.println("prove (target time):\n" + r.stdout() + r.stderr());
        assertThat(r.exitCode()).as(r.stdout() + r.stderr()).isZero();
        assertThat(r.stdout()).containsPattern("(?m)^PASS  check query at-target .* returned true \\(database shop\\)")
                .contains("target: time ").contains("PASSED");
        JsonNode p = info(repo).path("newestProof");
        assertThat(p.path("passed").asBoolean()).isTrue();
        assertThat(p.path("target").asText()).startsWith("time ");
        assertThat(proveDir).as("scratch copy removed after a passed proof").isEmptyDirectory();
    }

    @Test
    @Order(8)
    void prove_interruptedStopsTheThrowawayServerAndRemovesTheCopy() throws Exception {
        Path proveDir = proveDir("interrupted");
        List<String> cmd = new ArrayList<>();
        if (PgCluster.isRoot()) {
            cmd.addAll(List.of("runuser", "-u", PgCluster.TEST_USER, "--"));
        }
        cmd.addAll(Pgproof.command("prove", "--cluster", CLUSTER, "--repo", repo.toString(), "--prove-dir", proveDir.toString()));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(root.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectOutput(root.resolve("interrupted.out").toFile()).redirectError(root.resolve("interrupted.err").toFile());
        pb.environment().keySet().removeIf(k -> k.startsWith("PG"));
        pb.environment().put("PGPROOF_TEST_HOOK", "prove-recovered");
        pb.environment().put("PGPROOF_TEST_HOOK_RELEASE", root.resolve("never").toString());
        Process p = pb.start();
        String hook = null;
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (hook == null && System.nanoTime() < deadline && p.isAlive()) {
            hook = Files.readString(root.resolve("interrupted.err")).lines().filter(l -> l.startsWith("HOOK prove-recovered ")).findFirst()
                    .orElse(null);
            PgCluster.pause(200);
        }
        assertThat(hook).as("pause point reached:\n" + Files.readString(root.resolve("interrupted.err"))).isNotNull();
        String[] parts = hook.substring("HOOK prove-recovered ".length()).split(" pid ");
        Path scratch = Path.of(parts[0]);
        long postmaster = Long.parseLong(parts[1].strip());
        assertThat(ProcessHandle.of(postmaster).map(ProcessHandle::isAlive)).as("throwaway server running").contains(true);
        assertThat(scratch.resolve("data/postmaster.pid")).exists();
        Path holds = repo.resolve(CLUSTER).resolve("lock").resolve("hold");
        try (Stream<Path> h = Files.list(holds)) {
            assertThat(h.map(x -> x.getFileName().toString()).toList()).as("expire is kept away from the backup being proven")
                    .anyMatch(n -> n.startsWith(label + "."));
        }

        // SIGTERM to pgproof's JVM (under runuser and the launcher's exec).
        ProcessHandle jvm = p.descendants().filter(h -> h.info().command().map(c -> c.endsWith("/java")).orElse(false)).findFirst()
                .orElse(p.toHandle());
        jvm.destroy();
        assertThat(p.waitFor(90, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
        String err = Files.readString(root.resolve("interrupted.err"));
        System.out.println("prove (interrupted):\n" + err);
        assertThat(p.exitValue()).as(err).isEqualTo(12);
        assertThat(err).contains("ERROR: pgproof was interrupted by a signal").contains("prove interrupted: stopping the throwaway server");
        assertThat(ProcessHandle.of(postmaster).map(ProcessHandle::isAlive).orElse(false)).as("throwaway server stopped").isFalse();
        assertThat(scratch).as("scratch copy removed").doesNotExist();
        if (Files.exists(holds)) { // removing the last hold prunes the emptied directory
            try (Stream<Path> h = Files.list(holds)) {
                assertThat(h.toList()).as("hold released").isEmpty();
            }
        }
    }

    @Test
    @Order(9)
    void timelines_verifyFollowsTheHistoryAndProveRecoversAlongTheNewestTimeline() throws IOException {
        // A copy of the repository into which a restored, promoted copy of the source archives timeline 2.
        Path copy = copyRepo("timeline2");
        Path restores = Files.createDirectories(root.resolve("restores"));
        PgCluster.chownToOwner(restores, false);
        Path dest = restores.resolve("tl2");
        ok(Pgproof.run("restore", "--cluster", CLUSTER, "--repo", copy.toString(), "--pgdata", dest.toString(), "--tablespace-map",
                tablespaceOid + "=" + restores.resolve("tl2-ts1")), "restore");
        // This copy really starts on the restored configuration: take out the traps set up for prove.
        dropLines(dest.resolve("postgresql.conf"), "include '/nonexistent/");
        dropLines(dest.resolve("postgresql.auto.conf"), "shared_preload_libraries");
        PgCluster promoted = PgCluster.adopt(dest, restores.resolve("tl2-sock"), PgCluster.freePort());
        promoted.configure("archive_command", PgCluster.quote(Pgproof.archiveCommand(CLUSTER, copy)));
        promoted.start();
        try {
            promoted.awaitPromotion(Duration.ofSeconds(120));
            promoted.psqlDb("shop", "INSERT INTO orders (id, note) SELECT g, 'timeline 2' FROM generate_series(1001, 1010) g");
            String seg = promoted.psql("SELECT pg_walfile_name(pg_switch_wal())");
            assertThat(seg).startsWith("00000002");
            long deadline = System.nanoTime() + ARCHIVE_TIMEOUT.toNanos();
            while (!Files.isDirectory(copy.resolve(CLUSTER).resolve("wal").resolve(seg.substring(0, 16)))
                    || Files.list(copy.resolve(CLUSTER).resolve("wal").resolve(seg.substring(0, 16))).noneMatch(x -> x.getFileName().toString()
                            .startsWith(seg + "-"))) {
                assertThat(System.nanoTime()).as("timeline 2 segment " + seg + " archived\n" + promoted.logTail(30)).isLessThan(deadline);
                PgCluster.pause(200);
            }
        } finally {
            promoted.stop();
        }
        assertThat(info(copy).path("wal").path("timelines").toString()).isEqualTo("[1,2]");

        PgCluster.ProcessResult v = Pgproof.run("verify", "--repo", copy.toString(), "--cluster", CLUSTER);
        System.out.println("verify (timeline 2):\n" + v.stdout() + v.stderr());
        assertThat(v.exitCode()).as(v.stdout() + v.stderr()).isZero();
        assertThat(v.stdout()).contains("no problems");

        PgCluster.ProcessResult p = Pgproof.run("prove", "--cluster", CLUSTER, "--repo", copy.toString(), "--prove-dir", proveDir("timeline2")
                .toString(), "--check-query", "tl2=SELECT count(*) = 10 FROM orders WHERE note = 'timeline 2'", "--check-database", "tl2=shop");
        System.out.println("prove (timeline 2):\n" + p.stdout() + p.stderr());
        assertThat(p.exitCode()).as(p.stdout() + p.stderr()).isZero();
        assertThat(p.stdout()).containsPattern("(?m)^PASS  recovery .*promoted to timeline 3").containsPattern("(?m)^PASS  check query tl2 ");

        // Without the history file of timeline 2, recovery cannot follow it: verify says so.
        try (Stream<Path> h = Files.list(copy.resolve(CLUSTER).resolve("wal").resolve("history"))) {
            for (Path x : h.filter(x -> x.getFileName().toString().startsWith("00000002.history-")).toList()) {
                Files.delete(x);
            }
        }
        PgCluster.ProcessResult v2 = Pgproof.run("verify", "--repo", copy.toString(), "--cluster", CLUSTER);
        assertThat(v2.exitCode()).as(v2.stdout() + v2.stderr()).isEqualTo(10);
        assertThat(v2.stdout()).contains("[wal-history] " + CLUSTER + "/wal/history/00000002.history: timeline 2 has WAL but its history file is missing");
    }

    // ------------------------------------------------------------------ helpers

    private static void dropLines(Path file, String prefix) throws IOException {
        List<String> keep = Files.readAllLines(file).stream().filter(l -> !l.startsWith(prefix)).toList();
        Files.write(file, keep);
    }

    /** A copy of the repository (cp -a), owned by the cluster owner. */
    private Path copyRepo(String name) {
        Path copy = root.resolve("repo-" + name);
        PgCluster.run(List.of("cp", "-a", repo.toString(), copy.toString()), null, null, Duration.ofMinutes(2)).assertOk("cp -a " + repo);
        PgCluster.chownToOwner(copy, true);
        return copy;
    }

    private Path proveDir(String name) throws IOException {
        Path d = Files.createDirectories(root.resolve("prove-" + name));
        PgCluster.chownToOwner(d, false);
        return d;
    }

    private static Path onlyChild(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> all = s.toList();
            assertThat(all).as("entries of " + dir).hasSize(1);
            return all.get(0);
        }
    }

    /** The largest stored chunk of the backup: a table's data file. */
    private Path largestChunk(Path repoRoot) throws IOException {
        try (Stream<Path> s = Files.walk(repoRoot.resolve(CLUSTER).resolve("backup").resolve(label).resolve("data"))) {
            return s.filter(Files::isRegularFile).max(Comparator.comparingLong(ProveIT::size)).orElseThrow();
        }
    }

    /** The data directory path of a chunk: its key under data/ without ".<n>.<ext>". */
    private String fileOfChunk(Path repoRoot, Path chunk) {
        String rel = repoRoot.resolve(CLUSTER).resolve("backup").resolve(label).resolve("data").relativize(chunk).toString();
        return rel.replaceFirst("\\.\\d+\\.[a-z0-9]+$", "");
    }

    /** Overwrites 64 bytes in the middle of a file. */
    private static void damage(Path file) throws IOException {
        byte[] b = Files.readAllBytes(file);
        int at = b.length / 2;
        for (int i = at; i < Math.min(b.length, at + 64); i++) {
            b[i] = (byte) (b[i] ^ 0x5A);
        }
        Files.write(file, b);
    }

    private static Path walObject(Path repoRoot, String segment) throws IOException {
        Path dir = repoRoot.resolve(CLUSTER).resolve("wal").resolve(segment.substring(0, 16));
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().startsWith(segment + "-")).findFirst()
                    .orElseThrow(() -> new AssertionError("segment " + segment + " is not in " + dir));
        }
    }

    private static String nextSegment(String segment) {
        long n = Long.parseLong(segment.substring(16), 16) + 1;
        return segment.substring(0, 16) + String.format("%08X", n);
    }

    private void switchAndWaitForArchive() {
        source.psql("SELECT txid_current()"); // something to switch away from
        String segment = source.psql("SELECT pg_walfile_name(pg_switch_wal())");
        long deadline = System.nanoTime() + ARCHIVE_TIMEOUT.toNanos();
        while (true) {
            String last = source.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
            if (last.length() >= 24 && last.substring(0, 24).compareTo(segment) >= 0) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("segment " + segment + " was not archived within " + ARCHIVE_TIMEOUT + "\n" + source.logTail(40));
            }
            PgCluster.pause(200);
        }
    }

    /** The cluster's entry in {@code pgproof info --output json} of a repository. */
    private JsonNode info(Path repoRoot) throws IOException {
        PgCluster.ProcessResult r = ok(Pgproof.run("info", "--repo", repoRoot.toString(), "--cluster", CLUSTER, "--output", "json"), "info");
        return JSON.readTree(r.stdout()).path("clusters").get(0);
    }

    private static PgCluster.ProcessResult ok(PgCluster.ProcessResult r, String what) {
        return r.assertOk("pgproof " + what);
    }

    private static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
