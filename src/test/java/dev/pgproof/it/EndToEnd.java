package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
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
 * The whole cycle against a real PostgreSQL 15 cluster: WAL archiving through archive_command,
 * a full backup, a pgbench load, then restores that are started and compared table by table with
 * what the source held (at a point in time, and at the end of the archive), pg_verifybackup on a
 * restored directory and pg_checksums on a recovered one.
 *
 * <p>It runs once per repository backend (EndToEndPosixIT, EndToEndS3IT): archive_command,
 * restore_command and every pgproof command talk to that backend.
 *
 * <p>One source cluster and one repository are shared by all tests (set up once in
 * {@link #setUp()}); each test restores into its own new directory. Restored copies are restored
 * with {@code --archive-mode off}: a promoted copy that kept archive_command would push a
 * timeline 2 into the shared repository, and a later restore to the end of the archive
 * (recovery_target_timeline = latest) would follow that branch instead of the source's history.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
abstract class EndToEnd {
    private static final String CLUSTER = "main";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration RECOVERY_TIMEOUT = Duration.ofSeconds(120);
    private static final Duration ARCHIVE_TIMEOUT = Duration.ofSeconds(90);

    @TempDir
    static Path tmp;

    private Path root;
    private TestRepo repo;
    private Path restores;
    private PgCluster source;
    private String label;
    private PgCluster.ProcessResult backupResult;
    /** The recovery target: SELECT now() after the load, before any later change. */
    private String targetTime;
    /** Table name to "count:md5" of every user table at {@link #targetTime}. */
    private Map<String, String> atTarget;
    private final List<PgCluster> copies = new ArrayList<>();

    /** The repository under test; {@code root} is reachable by the cluster OS user. */
    protected abstract TestRepo repository(Path root);

    /**
     * A spool for archive-push (acknowledgements, pushing ready files ahead) and for archive-get's
     * background prefetcher, when this backend's run should use one.
     */
    protected boolean useSpool() {
        return false;
    }

    private Path spool;

    /** pgbench scale of the source: every archived segment costs a JVM start, so S3 runs keep it small. */
    protected int scale() {
        return 2;
    }

    @BeforeAll
    void setUp() throws IOException {
        root = tmp.toRealPath();
        PgCluster.makeReachable(root);
        repo = repository(root);
        restores = Files.createDirectories(root.resolve("restores"));
        PgCluster.chownToOwner(restores, false);
        PgCluster.makeReachable(restores);

        source = PgCluster.create(root.resolve("clusters"), "src", PgCluster.freePort());
        source.configure("archive_mode", "on");
        String archiveCommand = repo.archiveCommand(CLUSTER);
        if (useSpool()) {
            spool = Files.createDirectories(root.resolve("spool"));
            PgCluster.chownToOwner(spool, false);
            archiveCommand = archiveCommand.replace(" %p", " --spool-path " + spool + " %p");
        }
        source.configure("archive_command", PgCluster.quote(archiveCommand));
        source.start();
        ok(Pgproof.run(repo.command("init", "--cluster", CLUSTER, "--pgdata", source.dataDir().toString())), "init");

        // Before the backup: pgbench tables and a table that will be dropped after the target.
        source.pgbench("-i", "-s", Integer.toString(scale()), "-q");
        source.psql("CREATE TABLE e2e_dropped (id int PRIMARY KEY, note text)");
        source.psql("INSERT INTO e2e_dropped SELECT g, 'row ' || g FROM generate_series(1, 1000) g");

        backupResult = Pgproof.run(repo.command("backup", "--cluster", CLUSTER, "--pgdata", source.dataDir().toString(), "--start-fast"));
        ok(backupResult, "backup");
        label = backupResult.stdout().strip();
        assertThat(label).matches("\\d{8}-\\d{6}F");

        // After the backup: load, then the point in time T and the state at T.
        source.pgbench("-c", "2", "-t", "500", "-n");
        source.psql("INSERT INTO e2e_dropped SELECT g, 'after backup ' || g FROM generate_series(1001, 1500) g");
        source.psql("SELECT pg_sleep(1)");
        targetTime = source.psql("SELECT now()");
        source.psql("SELECT pg_sleep(1)");
        atTarget = snapshot(source);
        assertThat(atTarget).containsKeys("pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history",
                "e2e_dropped");
        assertThat(atTarget.get("e2e_dropped")).startsWith("1500:");
        assertThat(atTarget.get("pgbench_history")).startsWith("1000:");

        // After T: more changes, a new table, and the drop.
        source.pgbench("-c", "2", "-t", "200", "-n");
        source.psql("CREATE TABLE e2e_after_target AS SELECT g AS id FROM generate_series(1, 100) g");
        source.psql("DELETE FROM e2e_dropped WHERE id <= 10");
        source.psql("DROP TABLE e2e_dropped");
        switchAndWaitForArchive();
    }

    @AfterAll
    void tearDown() {
        for (PgCluster c : copies) {
            c.stop();
        }
        if (source != null) {
            source.stop();
        }
    }

    @Test
    @Order(1)
    void infoListsTheBackupWithItsLabelAndLsns() throws IOException {
        JsonNode c = info();
        assertThat(c.path("name").asText()).isEqualTo(CLUSTER);
        assertThat(c.path("identity").path("systemIdentifier").asText())
                .isEqualTo(source.controlData().get("Database system identifier"));
        JsonNode backups = c.path("backups");
        assertThat(backups).hasSize(1);
        JsonNode b = backups.get(0);
        assertThat(b.path("label").asText()).isEqualTo(label);
        assertThat(b.path("type").asText()).isEqualTo("full");
        assertThat(b.path("timeline").asInt()).isEqualTo(1);
        String startLsn = b.path("startLsn").asText();
        String stopLsn = b.path("stopLsn").asText();
        assertThat(startLsn).matches("[0-9A-F]{1,8}/[0-9A-F]{1,8}");
        assertThat(stopLsn).matches("[0-9A-F]{1,8}/[0-9A-F]{1,8}");
        assertThat(lsn(stopLsn)).isGreaterThan(lsn(startLsn));
        // The same LSNs as the backup reported while it ran.
        assertThat(backupResult.stderr()).contains("started at WAL location " + startLsn + " (" + b.path("startWal").asText() + ")");
        assertThat(backupResult.stderr()).contains("stopped at WAL location " + stopLsn + " (" + b.path("stopWal").asText() + ")");
        assertThat(b.path("files").asInt()).isPositive();
        // pgproof's own lines only: no logger warning, nothing from the AWS SDK.
        assertThat(backupResult.stderr()).doesNotContain("SLF4J").doesNotContain("software.amazon").doesNotContain("WARN");
        assertThat(c.path("incompleteBackups")).isEmpty();
        assertThat(c.path("wal").path("gaps")).isEmpty();
        assertThat(c.path("wal").path("conflicting")).isEmpty();
        assertThat(c.path("recoveryWindow").path("fromBackup").asText()).isEqualTo(label);

        // Without --cluster: every cluster the repository holds (found by listing, on either backend).
        PgCluster.ProcessResult all = ok(Pgproof.run(repo.command("info", "--output", "json")), "info of the whole repository");
        JsonNode clusters = JSON.readTree(all.stdout()).path("clusters");
        assertThat(clusters).hasSize(1);
        assertThat(clusters.get(0).path("name").asText()).isEqualTo(CLUSTER);
    }

    @Test
    @Order(2)
    void pointInTimeRestoreHasExactlyTheTablesAtTheTarget() throws IOException {
        Path dest = restores.resolve("pitr");
        PgCluster.ProcessResult r = restore(dest, "--target-time", targetTime, "--target-action", "promote");
        assertThat(r.stderr()).contains("restoring backup " + label + " of cluster \"" + CLUSTER + "\"");
        assertThat(r.stderr()).contains("recovery target time");
        assertThat(Files.readString(dest.resolve("postgresql.auto.conf"))).contains("recovery_target_time = '")
                .contains("recovery_target_action = 'promote'").contains("archive_mode = 'off'");

        PgCluster copy = startCopy(dest);
        copy.awaitPromotion(RECOVERY_TIMEOUT);
        Map<String, String> restored = snapshot(copy);
        assertThat(restored.keySet()).as("tables at the target (e2e_dropped present, e2e_after_target absent)")
                .containsExactlyInAnyOrderElementsOf(atTarget.keySet());
        for (Map.Entry<String, String> e : atTarget.entrySet()) {
            assertThat(restored.get(e.getKey())).as("count:md5 of table " + e.getKey() + " at " + targetTime).isEqualTo(e.getValue());
        }
        assertThat(copy.psql("SELECT count(*) FROM e2e_dropped")).isEqualTo("1500");

        // 4. Recovered, then cleanly stopped: every page checksum is right.
        copy.stop();
        assertThat(copy.controlData()).containsEntry("Database cluster state", "shut down");
        checksumsPass(copy.dataDir());
    }

    @Test
    @Order(3)
    void restoreToTheEndOfTheArchiveMatchesTheSource() throws IOException {
        source.psql("CREATE TABLE e2e_last AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 50) g");
        source.pgbench("-c", "1", "-t", "50", "-n");
        switchAndWaitForArchive();
        Map<String, String> atEnd = snapshot(source);
        assertThat(atEnd).doesNotContainKey("e2e_dropped").containsKeys("e2e_after_target", "e2e_last");

        Path dest = restores.resolve("end");
        Path getSpool = null;
        if (spool != null) {
            getSpool = Files.createDirectories(root.resolve("get-spool"));
            PgCluster.chownToOwner(getSpool, false);
        }
        PgCluster.ProcessResult r = getSpool == null ? restore(dest) : restore(dest, "--spool-path", getSpool.toString());
        assertThat(r.stderr()).contains("restoring backup " + label + " of cluster \"" + CLUSTER + "\"")
                .contains("recovering to the end of the archive");

        PgCluster copy = startCopy(dest);
        copy.awaitPromotion(RECOVERY_TIMEOUT);
        Map<String, String> restored = snapshot(copy);
        assertThat(restored.keySet()).containsExactlyInAnyOrderElementsOf(atEnd.keySet());
        for (Map.Entry<String, String> e : atEnd.entrySet()) {
            assertThat(restored.get(e.getKey())).as("count:md5 of table " + e.getKey() + " at the end of the archive")
                    .isEqualTo(e.getValue());
        }
        if (spool != null) {
            // Archived through the acknowledgement spool, and recovered with the background prefetcher on this backend.
            try (java.util.stream.Stream<Path> acks = Files.list(spool.resolve(CLUSTER).resolve("ack"))) {
                assertThat(acks.count()).as("acknowledged WAL files").isPositive();
            }
            assertThat(copy.logTail(2000)).contains("archive-get: started the background prefetcher for the 8 segments after ");
            assertThat(Files.readString(getSpool.resolve(CLUSTER).resolve("prefetch.log"))).contains("prefetch: keeping 8 segments after ")
                    .doesNotContain("ERROR");
        }
        copy.stop();
        checksumsPass(copy.dataDir());
    }

    @Test
    @Order(4)
    void pgVerifybackupPassesOnARestoredDirectoryAndCatchesAFlippedByte() throws IOException {
        Path dest = restores.resolve("verify");
        restore(dest);
        assertThat(dest.resolve("backup_manifest")).exists();
        assertThat(dest.resolve("postmaster.pid")).doesNotExist();

        PgCluster.ProcessResult good = verifybackup(dest);
        assertThat(good.exitCode()).as("pg_verifybackup -n on the fresh restore:\n" + good.stdout() + good.stderr()).isZero();
        assertThat(good.stdout()).contains("backup successfully verified");

        // Flip one byte in the middle of the largest relation file under base/.
        Path victim;
        try (Stream<Path> files = Files.walk(dest.resolve("base"))) {
            victim = files.filter(Files::isRegularFile).max(Comparator.comparingLong(EndToEnd::size)).orElseThrow();
        }
        long offset = size(victim) / 2;
        try (FileChannel ch = FileChannel.open(victim, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer one = ByteBuffer.allocate(1);
            ch.read(one, offset);
            one.flip();
            byte flipped = (byte) (one.get(0) ^ 0xFF);
            ch.write(ByteBuffer.wrap(new byte[] {flipped}), offset);
        }
        String rel = dest.relativize(victim).toString();

        PgCluster.ProcessResult bad = verifybackup(dest);
        assertThat(bad.exitCode()).as("pg_verifybackup after flipping a byte of " + rel).isNotZero();
        assertThat(bad.stderr()).contains("checksum mismatch for file \"" + rel + "\"");
    }

    @Test
    @Order(5)
    void archiveGetRefusesACorruptSegmentAndServesItOnceRepaired() throws IOException {
        JsonNode b = info().path("backups").get(0);
        String name = b.path("startWal").asText();
        String prefix = CLUSTER + "/wal/" + name.substring(0, 16) + "/" + name + "-";
        Map<String, Long> copies = repo.listing(prefix);
        assertThat(copies).as("stored copies of " + name).hasSize(1);
        String key = copies.keySet().iterator().next();
        byte[] original = repo.read(key);
        Path getDir = Files.createDirectories(root.resolve("get"));
        PgCluster.chownToOwner(getDir, false);
        Path dest = getDir.resolve(name);
        String hint = "recovery stops here rather than replaying bad WAL; restore the file from another copy of the repository, "
                + "or restore to a target before it";
        try {
            // Another segment's content, a valid zstd frame: only the SHA-256 in the key catches it.
            byte[] other = new byte[16 << 20];
            java.util.Arrays.fill(other, (byte) 7);
            java.io.ByteArrayOutputStream z = new java.io.ByteArrayOutputStream();
            try (java.io.OutputStream out = dev.pgproof.io.Compression.byName("zstd").compress(z, 3)) {
                out.write(other);
            }
            repo.write(key, z.toByteArray());
            PgCluster.ProcessResult r = get(name, dest);
            FaultsIT.assertError(r, 201, "stored WAL file \"" + key + "\" is corrupt: its content has SHA-256 " + FaultsIT.sha256(other), hint);
            assertThat(dest).doesNotExist();

            // Garbage: not even a zstd frame.
            repo.write(key, "this is not a zstd frame, just garbage\n".getBytes(java.nio.charset.StandardCharsets.UTF_8));
            r = get(name, dest);
            FaultsIT.assertError(r, 201, "stored WAL file \"" + key + "\" cannot be decompressed: Unknown frame descriptor", hint);
            assertThat(dest).doesNotExist();
            try (Stream<Path> left = Files.list(getDir)) {
                assertThat(left).isEmpty();
            }
        } finally {
            repo.write(key, original);
        }
        get(name, dest).assertOk("archive-get after the repair");
        assertThat(Files.size(dest)).isEqualTo(16L << 20);

        // Not stored: exit 1, the normal end of the archive.
        String missing = "0000000100000000000000F0";
        PgCluster.ProcessResult r = get(missing, getDir.resolve(missing));
        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(1);
        assertThat(r.stderr().strip()).isEqualTo("archive-get: WAL file \"" + missing + "\" is not in repository \"" + repo.describe()
                + "\" for cluster \"" + CLUSTER + "\"");
    }

    @Test
    @Order(6)
    void verifyFindsNoProblemAndProvePasses() throws IOException {
        PgCluster.ProcessResult v = ok(Pgproof.run(repo.command("verify", "--cluster", CLUSTER)), "verify");
        assertThat(v.stdout()).contains("1 backup(s)").contains("no problems");
        Path proveDir = Files.createDirectories(root.resolve("prove"));
        PgCluster.chownToOwner(proveDir, false);
        PgCluster.ProcessResult p = ok(Pgproof.run(repo.command("prove", "--cluster", CLUSTER, "--pgdata", source.dataDir().toString(),
                "--prove-dir", proveDir.toString())), "prove");
        assertThat(p.stdout()).contains("of backup " + label).contains("PASSED");
        assertThat(info().path("newestProof").path("passed").asBoolean()).isTrue();
    }

    @Test
    @Order(7)
    void aSecondBackupIsLockedOutAndAnIncrementalAfterAKilledBackupRestores() throws Exception {
        Path work = Files.createDirectories(root.resolve("work-lock"));
        PgCluster.chownToOwner(work, false);
        try (Running p = Running.asOwner(work, Map.of("PGPROOF_TEST_HOOK", "backup-mid-copy"),
                repo.command("backup", "--cluster", CLUSTER, "--pgdata", source.dataDir().toString(), "--start-fast"))) {
            p.awaitLine("HOOK backup-mid-copy ", Duration.ofMinutes(2));
            PgCluster.ProcessResult second = Pgproof.run(repo.command("backup", "--cluster", CLUSTER, "--pgdata", source.dataDir().toString()));
            assertThat(second.exitCode()).as(second.stderr()).isEqualTo(16);
            assertThat(second.stderr()).contains("ERROR: cluster \"main\" is locked by backup (pid ").contains("main/lock/backup.lock");
            p.killTree();
        }
        source.pgbench("-c", "1", "-t", "100", "-n");
        PgCluster.ProcessResult incr = ok(Pgproof.run(repo.command("backup", "--cluster", CLUSTER, "--pgdata", source.dataDir().toString(),
                "--start-fast", "--type", "incr")), "incremental backup");
        String incrLabel = incr.stdout().strip();
        assertThat(incrLabel).endsWith("I");
        assertThat(incr.stderr()).contains("clearing a stale backup lock").contains("incremental backup based on " + label);
        JsonNode backups = info().path("backups");
        long fullStored = backups.get(0).path("storedSize").asLong();
        assertThat(backups.get(backups.size() - 1).path("storedSize").asLong()).as("incremental stored size").isLessThan(fullStored / 2);
        switchAndWaitForArchive();
        Map<String, String> atEnd = snapshot(source);
        Path dest = restores.resolve("incr");
        restore(dest, "--set", incrLabel);
        PgCluster copy = startCopy(dest);
        copy.awaitPromotion(RECOVERY_TIMEOUT);
        assertThat(snapshot(copy)).isEqualTo(atEnd);
        copy.stop();
    }

    // ------------------------------------------------------------------ helpers

    /** archive-get as the cluster owner, as restore_command runs it. */
    private PgCluster.ProcessResult get(String name, Path dest) {
        return Pgproof.runAsOwner(dest.getParent(), Map.of(), repo.command("archive-get", "--cluster", CLUSTER, name, dest.toString()));
    }

    private PgCluster.ProcessResult restore(Path dest, String... extra) {
        List<String> args = new ArrayList<>(List.of("--cluster", CLUSTER, "--pgdata", dest.toString(), "--archive-mode", "off"));
        args.addAll(List.of(extra));
        return ok(Pgproof.run(repo.command("restore", args.toArray(new String[0]))), "restore into " + dest);
    }

    private PgCluster startCopy(Path dataDir) {
        PgCluster copy = PgCluster.adopt(dataDir, dataDir.resolveSibling(dataDir.getFileName() + "-sock"), PgCluster.freePort());
        copies.add(copy);
        copy.start();
        return copy;
    }


    /** Switches WAL on the source and waits until the switched-out segment is archived and info shows it. */
    private void switchAndWaitForArchive() throws IOException {
        String segment = source.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT);
        JsonNode wal = info().path("wal");
        assertThat(wal.path("last").asText()).as("last WAL segment in the repository").isGreaterThanOrEqualTo(segment);
        assertThat(wal.path("gaps")).as("WAL gaps").isEmpty();
    }

    /** The cluster's entry in {@code pgproof info --output json}. */
    private JsonNode info() throws IOException {
        PgCluster.ProcessResult r = ok(Pgproof.run(repo.command("info", "--cluster", CLUSTER, "--output", "json")), "info");
        JsonNode json = JSON.readTree(r.stdout());
        assertThat(json.path("repository").asText()).isEqualTo(repo.describe());
        JsonNode clusters = json.path("clusters");
        assertThat(clusters).hasSize(1);
        return clusters.get(0);
    }

    /** Every user table of schema public, as name to "rowcount:md5 of its rows in order". */
    private static Map<String, String> snapshot(PgCluster c) {
        return c.tableDigests();
    }

    private static PgCluster.ProcessResult verifybackup(Path dir) {
        return PgCluster.runAsOwner(List.of(PgCluster.bin("pg_verifybackup"), "-n", dir.toString()), null, null);
    }

    private static void checksumsPass(Path dataDir) {
        PgCluster.ProcessResult r = PgCluster.runAsOwner(List.of(PgCluster.bin("pg_checksums"), "--check", "-D", dataDir.toString()),
                Map.of("LC_ALL", "C"), null);
        r.assertOk("pg_checksums --check -D " + dataDir);
        Matcher m = Pattern.compile("Bad checksums:\\s+(\\d+)").matcher(r.stdout());
        assertThat(m.find()).as("pg_checksums output:\n" + r.stdout()).isTrue();
        assertThat(m.group(1)).isEqualTo("0");
    }

    private static PgCluster.ProcessResult ok(PgCluster.ProcessResult r, String what) {
        return r.assertOk("pgproof " + what);
    }

    private static long lsn(String lsn) {
        String[] p = lsn.split("/");
        return (Long.parseLong(p[0], 16) << 32) | Long.parseLong(p[1], 16);
    }

    private static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

}
