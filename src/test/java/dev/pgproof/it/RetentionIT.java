package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
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
 * Retention and locks against a real cluster and repository: expire by count (dry run first),
 * backups held by a running restore kept, WAL removed only below the oldest kept backup (a restore
 * from it to the end of the archive is then judged by the data), a second backup or expire refused
 * while a backup runs, and a stale lock from a killed backup cleared by the next run.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class RetentionIT {
    private static final String CLUSTER = "keep";
    private static final Duration ARCHIVE_TIMEOUT = Duration.ofSeconds(90);
    private static final Duration HOOK_TIMEOUT = Duration.ofSeconds(120);
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path tmp;

    private Path root;
    private Path repo;
    private Path work;
    private PgCluster source;
    private final List<String> labels = new ArrayList<>();
    private final List<PgCluster> copies = new ArrayList<>();

    @BeforeAll
    void setUp() throws IOException {
        LocalRepo local = LocalRepo.in(tmp);
        root = local.root;
        repo = local.repo;
        work = local.ownedDir("work");
        source = local.archivingCluster(CLUSTER, "keep");
        source.pgbench("-i", "-s", "1", "-q");
        for (int i = 1; i <= 3; i++) {
            source.psql("CREATE TABLE generation_" + i + " AS SELECT g AS id FROM generate_series(1, " + (100 * i) + ") g");
            source.pgbench("-c", "1", "-t", "100", "-n");
            source.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT);
            labels.add(backup().assertOk("backup " + i).stdout().strip());
        }
    }

    @AfterAll
    void tearDown() {
        copies.forEach(PgCluster::stop);
        if (source != null) {
            source.stop();
        }
    }

    @Test
    @Order(1)
    void dryRunNamesWhatWouldGoAndRemovesNothing() throws IOException {
        TreeSet<String> before = files();
        PgCluster.ProcessResult r = expire("--retention-full", "2", "--dry-run").assertOk("expire --dry-run");
        assertThat(r.stderr()).contains("would remove backup " + labels.get(0))
                .contains("keeping backup " + labels.get(1)).contains("keeping backup " + labels.get(2))
                .contains("the restore window would remain from").contains("(end of backup " + labels.get(1) + ")")
                .containsPattern("would remove \\d+ WAL files? from ");
        // The archiver may have added WAL meanwhile (the last backup's .backup file); nothing went away.
        assertThat(files()).containsAll(before);
        assertThat(backupLabels()).containsExactlyElementsOf(labels);
    }

    @Test
    @Order(2)
    void aRunningBackupLocksOutASecondBackupAndExpireAndAKilledOneLeavesAStaleLockTheNextRunClears() throws Exception {
        String killed;
        try (Running p = Running.asOwner(work, Map.of("PGPROOF_TEST_HOOK", "backup-mid-copy"), "backup", "--cluster", CLUSTER, "--repo",
                repo.toString(), "--pgdata", source.dataDir().toString(), "--start-fast")) {
            p.awaitLine("HOOK backup-mid-copy ", HOOK_TIMEOUT);
            Matcher m = Pattern.compile("(?m)^backup (\\S+) of cluster \"" + CLUSTER + "\": starting").matcher(p.stderr());
            assertThat(m.find()).as("label in:\n" + p.stderr()).isTrue();
            killed = m.group(1);

            PgCluster.ProcessResult second = backup();
            assertThat(second.exitCode()).as(second.stderr()).isEqualTo(16);
            assertThat(second.stderr()).containsPattern("ERROR: cluster \"keep\" is locked by backup \\(pid \\d+ on .*, since .*\\): "
                    + "backup cannot run at the same time").contains("HINT: wait for it to finish; the lock is keep/lock/backup.lock in ");
            PgCluster.ProcessResult exp = expire("--retention-full", "1");
            assertThat(exp.exitCode()).as(exp.stderr()).isEqualTo(16);
            assertThat(exp.stderr()).contains("is locked by backup (pid").contains("expire cannot run at the same time");
            p.killTree();
        }
        assertThat(repo.resolve(CLUSTER).resolve("lock").resolve("backup.lock")).as("lock left by the killed backup").exists();
        assertThat(backupLabels()).containsExactlyElementsOf(labels);

        // The next expire (no retention set: keeps every complete backup) clears the stale lock and the killed backup.
        PgCluster.ProcessResult r = expire().assertOk("expire after a killed backup");
        assertThat(r.stderr()).contains("clearing a stale backup lock held by backup (pid")
                .contains("removing incomplete backup " + killed).contains("no retention is set");
        assertThat(repo.resolve(CLUSTER).resolve("backup").resolve(killed)).doesNotExist();
        assertThat(repo.resolve(CLUSTER).resolve("lock").resolve("backup.lock")).doesNotExist();
        assertThat(backupLabels()).containsExactlyElementsOf(labels);
    }

    @Test
    @Order(3)
    void expireKeepsABackupHeldByARestoreThenRemovesItAndOlderWalOnceReleased() throws Exception {
        Path release = work.resolve("release-restore");
        Path heldDest = work.resolve("held-restore");
        try (Running p = Running.asOwner(work, Pgproof.hook("restore-held", release),
                "restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", heldDest.toString(), "--set", labels.get(0),
                "--archive-mode", "off")) {
            p.awaitLine("HOOK restore-held " + labels.get(0), HOOK_TIMEOUT);
            PgCluster.ProcessResult r = expire("--retention-full", "2").assertOk("expire during a restore");
            assertThat(r.stderr()).contains("backup " + labels.get(0) + " is held by restore (pid")
                    .contains("keeping backup " + labels.get(0) + " (held by a restore or prove in progress)");
            assertThat(backupLabels()).containsExactlyElementsOf(labels);
            Files.createFile(release);
            PgCluster.ProcessResult restored = p.waitFor(Duration.ofMinutes(3));
            assertThat(restored.exitCode()).as(restored.stderr()).isZero();
        }
        assertThat(heldDest.resolve("global").resolve("pg_control")).exists();

        String firstWalBefore = info().path("wal").path("first").asText();
        PgCluster.ProcessResult r = expire("--retention-full", "2").assertOk("expire after the restore");
        assertThat(r.stderr()).contains("removing backup " + labels.get(0));
        assertThat(backupLabels()).containsExactly(labels.get(1), labels.get(2));
        JsonNode kept = info().path("backups").get(0);
        JsonNode wal = info().path("wal");
        assertThat(wal.path("first").asText()).as("first WAL after expire")
                .isGreaterThan(firstWalBefore).isLessThanOrEqualTo(kept.path("startWal").asText());
        assertThat(wal.path("first").asText().substring(8)).isEqualTo(kept.path("startWal").asText().substring(8));
        assertThat(wal.path("gaps")).isEmpty();

        // The oldest kept backup still restores to the end of the archive, judged by the data.
        source.psql("CREATE TABLE after_expire AS SELECT 1 AS one");
        source.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT);
        Map<String, String> atEnd = source.tableDigests();
        Path dest = work.resolve("from-oldest-kept");
        Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", dest.toString(), "--set", labels.get(1),
                "--archive-mode", "off").assertOk("restore of the oldest kept backup");
        assertRecoversTo(dest, "from-oldest-kept-sock", atEnd);
    }

    @Test
    @Order(4)
    void backupExpiresAfterItselfWhenARetentionIsSet() throws IOException {
        PgCluster.ProcessResult r = Pgproof.run("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                source.dataDir().toString(), "--start-fast", "--retention-full", "1").assertOk("backup with retention-full 1");
        String newest = r.stdout().strip();
        assertThat(r.stderr()).contains("expire after backup: keep the newest 1 full backup")
                .contains("removing backup " + labels.get(1)).contains("removing backup " + labels.get(2));
        assertThat(backupLabels()).containsExactly(newest);
        assertThat(info().path("wal").path("gaps")).isEmpty();
    }

    /**
     * A reader that puts its hold on an incremental while expire is between planning and removing: expire
     * withdraws the backups it expires, then finds the hold, and keeps the incremental's objects and those it
     * references under its full backup (which expire removes otherwise). The restore then rebuilds the
     * incremental, judged by the data; the next expire removes the remains.
     */
    @Test
    @Order(5)
    void aHoldTakenWhileExpireRunsKeepsTheIncrementalAndTheObjectsOfItsFullBackupItReferences() throws Exception {
        String full = backupLabels().get(0);
        source.psql("CREATE TABLE in_the_incremental AS SELECT g AS id FROM generate_series(1, 1000) g");
        source.pgbench("-c", "1", "-t", "200", "-n");
        source.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT);
        String incr = Pgproof.run("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", source.dataDir().toString(),
                "--start-fast", "--type", "incr").assertOk("incremental backup").stdout().strip();
        String newFull = backup().assertOk("new full backup").stdout().strip();
        assertThat(backupLabels()).containsExactly(full, incr, newFull);

        Path releaseExpire = work.resolve("release-expire-5");
        Path releaseRestore = work.resolve("release-restore-5");
        Path dest = work.resolve("held-incremental");
        try (Running expire = Running.asOwner(work, Pgproof.hook("expire-before-withdraw", releaseExpire), "expire", "--cluster", CLUSTER,
                "--repo", repo.toString(), "--retention-full", "1")) {
            expire.awaitLine("HOOK expire-before-withdraw ", HOOK_TIMEOUT);
            try (Running restore = Running.asOwner(work, Pgproof.hook("restore-held", releaseRestore), "restore", "--cluster", CLUSTER,
                    "--repo", repo.toString(), "--pgdata", dest.toString(), "--set", incr, "--archive-mode", "off")) {
                restore.awaitLine("HOOK restore-held " + incr, HOOK_TIMEOUT);   // held, and found complete
                Files.createFile(releaseExpire);
                PgCluster.ProcessResult expired = expire.waitFor(Duration.ofMinutes(3));
                assertThat(expired.exitCode()).as(expired.stderr()).isZero();
                assertThat(expired.stderr()).contains("removing backup " + full)
                        .contains("backup " + incr + " was put on hold by a reader while it was being expired");
                assertThat(backupLabels()).containsExactly(newFull);

                Files.createFile(releaseRestore);
                PgCluster.ProcessResult restored = restore.waitFor(Duration.ofMinutes(3));
                assertThat(restored.exitCode()).as(restored.stderr()).isZero();
            }
        }
        source.psql("CREATE TABLE after_the_hold AS SELECT 1 AS one");
        source.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT);
        Map<String, String> atEnd = source.tableDigests();
        assertRecoversTo(dest, "held-incremental-sock", atEnd);

        // Released: the next expire removes what is left of both.
        expire("--retention-full", "1").assertOk("expire after the reader");
        assertThat(repo.resolve(CLUSTER).resolve("backup").resolve(incr)).doesNotExist();
        assertThat(repo.resolve(CLUSTER).resolve("backup").resolve(full)).doesNotExist();
        assertThat(backupLabels()).containsExactly(newFull);
    }

    /**
     * The other side of the hold protocol: a restore that chose a backup, then put its hold after expire had
     * removed it, finds the backup no longer complete and stops (exit 9, naming the backup and the fix), writing
     * nothing.
     */
    @Test
    @Order(6)
    void aRestoreWhoseBackupWasExpiredBeforeItsHoldStops() throws Exception {
        String older = backupLabels().get(0);
        String newer = backup().assertOk("another full backup").stdout().strip();
        Path release = work.resolve("release-restore-6");
        Path dest = work.resolve("late-hold");
        try (Running restore = Running.asOwner(work, Pgproof.hook("restore-chosen", release), "restore", "--cluster", CLUSTER,
                "--repo", repo.toString(), "--pgdata", dest.toString(), "--set", older, "--archive-mode", "off")) {
            restore.awaitLine("HOOK restore-chosen " + older, HOOK_TIMEOUT);
            PgCluster.ProcessResult expired = expire("--retention-full", "1").assertOk("expire while a restore has chosen");
            assertThat(expired.stderr()).contains("removing backup " + older);
            Files.createFile(release);
            PgCluster.ProcessResult r = restore.waitFor(Duration.ofMinutes(3));
            assertThat(r.exitCode()).as(r.stderr()).isEqualTo(9);
            assertThat(r.stderr()).contains("ERROR: backup " + older + " of cluster \"" + CLUSTER + "\" was expired as this restore began "
                    + "(pgproof expire withdrew it)").contains("HINT: run the restore again: it chooses among the backups that remain");
        }
        assertThat(dest.resolve("global")).doesNotExist();
        assertThat(backupLabels()).containsExactly(newer);
    }

    /** Starts the restored directory dest, lets it recover to the end of the archive and promote, and compares its data with expected. */
    private void assertRecoversTo(Path dest, String socketDir, Map<String, String> expected) {
        PgCluster copy = PgCluster.adopt(dest, work.resolve(socketDir), PgCluster.freePort());
        copies.add(copy);
        copy.start();
        copy.awaitPromotion(Duration.ofMinutes(2));
        assertThat(copy.tableDigests()).isEqualTo(expected);
        copy.stop();
    }

    private PgCluster.ProcessResult backup() {
        return Pgproof.run("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", source.dataDir().toString(), "--start-fast");
    }

    private PgCluster.ProcessResult expire(String... extra) {
        List<String> args = new ArrayList<>(List.of("expire", "--cluster", CLUSTER, "--repo", repo.toString()));
        args.addAll(List.of(extra));
        return Pgproof.run(args.toArray(new String[0]));
    }

    private JsonNode info() throws IOException {
        PgCluster.ProcessResult r = Pgproof.run("info", "--repo", repo.toString(), "--cluster", CLUSTER, "--output", "json").assertOk("info");
        return JSON.readTree(r.stdout()).path("clusters").get(0);
    }

    private List<String> backupLabels() throws IOException {
        List<String> out = new ArrayList<>();
        info().path("backups").forEach(b -> out.add(b.path("label").asText()));
        return out;
    }

    private TreeSet<String> files() throws IOException {
        TreeSet<String> out = new TreeSet<>();
        try (Stream<Path> s = Files.walk(repo)) {
            s.filter(Files::isRegularFile).filter(p -> !p.getFileName().toString().startsWith(".")).forEach(p -> out.add(repo.relativize(p).toString()));
        }
        return out;
    }
}
