package dev.pgproof.it;

import static dev.pgproof.it.FaultsIT.assertError;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
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
 * Faults of the repository itself, against one real PostgreSQL 15 cluster archiving into a
 * repository on its own small tmpfs: the file system full during archive-push and backup,
 * damaged metadata (manifest.json.zst, backup.complete, cluster.info), SIGKILL during expire and
 * restore, leftovers of killed writes, verify during a running backup, and a promoted copy
 * archiving a stray timeline under the same cluster name (last: it leaves the archive forked).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class RepoFaultsIT {
    private static final String CLUSTER = "main";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration HOOK_TIMEOUT = Duration.ofSeconds(90);
    private static final Duration ARCHIVE_TIMEOUT = Duration.ofSeconds(90);

    @TempDir
    static Path tmp;

    private Path root;
    private Path mount;
    private boolean mounted;
    private Path repo;
    private Path work;
    /** Restore targets: a directory the cluster owner owns (pgproof works on the target's parent as its owner). */
    private Path restores;
    private PgCluster main;
    private PgCluster copy;

    @BeforeAll
    void setUp() throws IOException {
        root = tmp.toRealPath();
        PgCluster.makeReachable(root);
        mount = Files.createDirectories(root.resolve("repofs"));
        PgCluster.run(List.of("mount", "-t", "tmpfs", "-o", "size=96m,mode=0755", "tmpfs", mount.toString()), null, null, Duration.ofMinutes(1))
                .assertOk("mount of a tmpfs for the repository");
        mounted = true;
        PgCluster.chownToOwner(mount, false);
        repo = mount.resolve("pgproof");
        work = Files.createDirectories(root.resolve("work"));
        PgCluster.chownToOwner(work, false);
        restores = Files.createDirectories(root.resolve("restores"));
        PgCluster.chownToOwner(restores, false);

        main = PgCluster.create(root.resolve("clusters"), "main", PgCluster.freePort());
        main.configure("archive_mode", "on");
        main.configure("archive_command", PgCluster.quote(Pgproof.archiveCommand(CLUSTER, repo)));
        main.start();
        Pgproof.run("init", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", main.dataDir().toString()).assertOk("init");
        main.psql("CREATE TABLE keeper AS SELECT g, md5(g::text) AS h FROM generate_series(1, 20000) g");
        // About 5 MB that compresses poorly: a backup needs well over the little room the full-disk test leaves.
        main.psql("CREATE TABLE noise AS SELECT g, md5(random()::text) || md5(random()::text) AS n FROM generate_series(1, 60000) g");
        main.psql("CREATE TABLE line (who text)");
        main.psql("INSERT INTO line VALUES ('main before any backup')");
        backup().assertOk("first backup");
    }

    @AfterAll
    void tearDown() {
        for (PgCluster c : new PgCluster[] {copy, main}) {
            if (c != null) {
                c.stop();
            }
        }
        if (mounted) {
            PgCluster.run(List.of("umount", mount.toString()), null, null, Duration.ofMinutes(1)).assertOk("umount " + mount);
        }
    }

    // ------------------------------------------------------------------ 1. repository full

    @Test
    @Order(1)
    void aFullRepositoryFailsArchivePushAndBackupCleanlyAndRecovers() throws Exception {
        main.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT);
        Path reserve = mount.resolve("reserve");
        Path filler = mount.resolve("filler");
        Files.write(reserve, new byte[512 * 1024]);
        try {
            fill(filler);
            fullRepository(reserve, filler);
        } finally {
            // Whatever failed above, the later tests get their space and their archiver back.
            Files.deleteIfExists(reserve);
            Files.deleteIfExists(filler);
            main.psql("ALTER SYSTEM RESET archive_command");
            main.psql("SELECT pg_reload_conf()");
        }
        main.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT);
        String label = backup().assertOk("backup after freeing space").stdout().strip();
        assertThat(Pgproof.labels(info().get("backups"))).contains(label);
        verify().assertOk("verify after freeing space");
    }

    private void fullRepository(Path reserve, Path filler) throws Exception {
        long failedBefore = Long.parseLong(main.psql("SELECT failed_count FROM pg_stat_archiver"));
        main.psql("INSERT INTO keeper SELECT g, md5(g::text) FROM generate_series(20001, 60000) g");
        String segment = main.psql("SELECT pg_walfile_name(pg_switch_wal())");
        awaitArchiverFailures(failedBefore);

        // archive-push as PostgreSQL runs it: exit 1 to 125 (PostgreSQL retries), one line naming the file, nothing stored.
        PgCluster.ProcessResult r = Pgproof.runAsOwner(main.dataDir(), Map.of(), "archive-push", "--cluster", CLUSTER, "--repo", repo.toString(),
                "pg_wal/" + segment);
        assertError(r, 6, "repository \"" + repo + "\" is full: could not store WAL file \"" + segment + "\" for cluster \"" + CLUSTER
                + "\" (No space left on device)",
                "nothing was stored; PostgreSQL keeps the segment in pg_wal and retries, so pg_wal grows until the repository has room",
                "free space: pgproof expire --cluster " + CLUSTER + " removes what the retention policy no longer keeps; or enlarge the file system");
        assertThat(r.stderr()).doesNotContain("\tat ");
        assertThat(walFiles(segment)).as("stored or temporary files of %s", segment).isEmpty();
        assertThat(temporaryFiles()).isEmpty();
        assertThat(Files.readString(main.logFile())).as("PostgreSQL's log: the archiver's own failure")
                .contains("ERROR: repository \"" + repo + "\" is full: could not store WAL file \"");
        // Keep the archiver from retrying while the backups below run: the outcome must not depend on who wins a race for space.
        main.psql("ALTER SYSTEM SET archive_command = '/bin/false'");
        main.psql("SELECT pg_reload_conf()");

        // Not even room for the lock: the backup stops at once and says why.
        r = backup();
        assertError(r, 6, "repository \"" + repo + "\" is full: backup of cluster \"" + CLUSTER + "\" could not write its lock \""
                + CLUSTER + "/lock/backup.lock\" (No space left on device)",
                "pgproof expire takes this lock too: free a little space on that file system by other means (or enlarge it), then run "
                        + "pgproof expire --cluster " + CLUSTER);

        // Room for the lock, not for the copy: fails mid-copy, removes what it stored, marks nothing complete.
        List<String> before = Pgproof.labels(info().get("backups"));
        Files.delete(reserve);
        r = backup();
        Matcher m = Pattern.compile("(?m)^ERROR: repository \"" + Pattern.quote(repo.toString()) + "\" is full: backup (\\S+) of cluster \""
                + CLUSTER + "\" could not store \"" + CLUSTER + "/backup/\\1/data/[^\"]+\" \\(No space left on device\\)$").matcher(r.stderr());
        assertThat(m.find()).as("the one-line error of a backup on a full repository\n" + r.stderr()).isTrue();
        assertError(r, 8, m.group().substring("ERROR: ".length()),
                "the backup was not marked complete and what it stored was removed; earlier backups are untouched",
                "free space (pgproof expire --cluster " + CLUSTER + " removes what the retention policy no longer keeps, or enlarge the file "
                        + "system), then run the backup again");
        assertThat(r.stderr()).doesNotContain("\tat ");
        String failed = m.group(1);
        JsonNode info = info();
        assertThat(Pgproof.labels(info.get("backups"))).isEqualTo(before).doesNotContain(failed);
        assertThat(info.path("incompleteBackups")).isEmpty();
        assertThat(repo.resolve(CLUSTER).resolve("backup").resolve(failed)).doesNotExist();
        assertThat(temporaryFiles()).isEmpty();
        verify().assertOk("verify of the full repository after the failed backup");
    }

    // ------------------------------------------------------------------ 2. damaged metadata

    @Test
    @Order(2)
    void damagedMetadataIsNamedNeverTakenForAnEmptyRepository() throws Exception {
        String label = newest();
        Path dir = repo.resolve(CLUSTER).resolve("backup").resolve(label);
        Path manifest = dir.resolve("manifest.json.zst");
        Path marker = dir.resolve("backup.complete");
        String manifestKey = CLUSTER + "/backup/" + label + "/manifest.json.zst";
        String markerKey = CLUSTER + "/backup/" + label + "/backup.complete";
        byte[] manifestBytes = Files.readAllBytes(manifest);
        byte[] markerBytes = Files.readAllBytes(marker);

        byte[] flipped = manifestBytes.clone();
        flipped[flipped.length / 2] ^= 0x01;
        Files.write(manifest, flipped);
        String problem = "\"" + manifestKey + "\" does not match the SHA-256 that \"" + markerKey
                + "\" records (it was changed or damaged after the backup completed)";
        try {
            PgCluster.ProcessResult r = Pgproof.run("info", "--repo", repo.toString(), "--cluster", CLUSTER).assertOk("info");
            assertThat(r.stdout()).contains("    " + label + "  DAMAGED, never used for a restore: " + problem + "\n");
            JsonNode info = info();
            assertThat(Pgproof.labels(info.get("backups"))).isNotEmpty().doesNotContain(label);
            assertThat(info.get("incompleteBackups").get(0).get("problem").asText()).isEqualTo("damaged: " + problem);

            r = Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", restores.resolve("no-restore").toString(),
                    "--set", label);
            assertError(r, 9, "backup \"" + label + "\" of cluster \"" + CLUSTER + "\" is not usable: damaged: " + problem,
                    "list the usable backups with: pgproof info --cluster " + CLUSTER);
            assertThat(restores.resolve("no-restore")).doesNotExist();

            r = verify();
            assertThat(r.exitCode()).as(r.stdout() + r.stderr()).isEqualTo(10);
            assertThat(r.stdout()).contains("PROBLEM " + CLUSTER + " [backup-corrupt] " + CLUSTER + "/backup/" + label + "/: backup " + label
                    + " is damaged: " + problem + "; it is never used for a restore\n");

            // A backup neither resumes nor replaces the damaged one: it says so and takes a new one.
            r = backup().assertOk("backup next to a damaged one");
            assertThat(r.stdout().strip()).isNotEqualTo(label);
            assertThat(r.stderr()).contains("WARNING: backup " + label + " of cluster \"" + CLUSTER + "\" is damaged: " + problem
                    + "; it is never resumed nor used");
            assertThat(Files.readAllBytes(manifest)).isEqualTo(flipped);

            // backup.complete that is not JSON.
            Files.write(manifest, manifestBytes);
            Files.writeString(marker, "{\"label\": \"" + label + "\", \"manifestSha256\": ");
            r = Pgproof.run("info", "--repo", repo.toString(), "--cluster", CLUSTER).assertOk("info");
            assertThat(r.stdout()).containsPattern("    " + label + "  DAMAGED, never used for a restore: \"" + Pattern.quote(markerKey)
                    + "\" is not valid JSON \\(.+\\)\n");
            assertThat(r.stderr()).doesNotContain("\tat ");
        } finally {
            Files.write(manifest, manifestBytes);
            Files.write(marker, markerBytes);
        }
        assertThat(Pgproof.labels(info().get("backups"))).contains(label);

        // cluster.info: every command names it and stops.
        Path pin = repo.resolve(CLUSTER).resolve("cluster.info");
        byte[] pinBytes = Files.readAllBytes(pin);
        String text = new String(pinBytes, StandardCharsets.UTF_8);
        Files.writeString(pin, text.replace("wal-segment-size=16777216", "wal-segment-size=16777217"));
        try {
            String error = "cluster identity file \"" + repo + "/" + CLUSTER + "/cluster.info\" is damaged (checksum mismatch)";
            String hint = "restore it from a copy of the repository; pgproof never rewrites it";
            assertError(Pgproof.run("info", "--repo", repo.toString()), 6, error, hint);
            assertError(verify(), 6, error, hint);
            assertError(backup(), 6, error, hint);
            assertError(Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", restores.resolve("no-restore").toString()),
                    6, error, hint);
            assertThat(restores.resolve("no-restore")).doesNotExist();
        } finally {
            Files.write(pin, pinBytes);
        }
        verify().assertOk("verify after the repairs");
    }

    // ------------------------------------------------------------------ 3. expire killed

    @Test
    @Order(3)
    void expireKilledAfterAMarkerLeavesWithdrawnBackupsTheNextRunRemoves() throws Exception {
        List<String> before = Pgproof.labels(info().get("backups"));
        assertThat(before).hasSizeGreaterThanOrEqualTo(3);
        String victim;
        try (Running p = Running.asOwner(work, hook("expire-after-marker"), "expire", "--cluster", CLUSTER, "--repo", repo.toString(),
                "--retention-full", "1")) {
            victim = p.awaitLine("HOOK expire-after-marker ", HOOK_TIMEOUT).substring("HOOK expire-after-marker ".length()).strip();
            p.killTree();
        }
        assertThat(victim).isEqualTo(before.get(0));
        // Every backup this expire removes was withdrawn before the first removal (its marker gone, backup.expired
        // written so that no backup resumes into it): none is listed as usable, none as incomplete.
        JsonNode info = info();
        assertThat(Pgproof.labels(info.get("backups"))).containsExactly(before.get(before.size() - 1));
        assertThat(info.path("incompleteBackups")).isEmpty();
        dev.pgproof.repo.RepoLayout layout = new dev.pgproof.repo.RepoLayout(CLUSTER);
        for (String label : before.subList(0, before.size() - 1)) {
            assertThat(repo.resolve(layout.completeMarker(label))).doesNotExist();
            assertThat(repo.resolve(layout.expiredMarker(label))).exists();
        }

        PgCluster.ProcessResult r = Pgproof.run("expire", "--cluster", CLUSTER, "--repo", repo.toString(), "--retention-full", "1")
                .assertOk("expire after the killed one");
        assertThat(r.stderr()).contains("clearing a stale backup lock");
        info = info();
        assertThat(Pgproof.labels(info.get("backups"))).containsExactly(before.get(before.size() - 1));
        assertThat(info.path("incompleteBackups")).isEmpty();
        verify().assertOk("verify after expire");
    }

    // ------------------------------------------------------------------ 4. restore killed

    @Test
    @Order(4)
    void restoreKilledMidCopyLeavesADirectoryThatCannotStartAndIsNotReused() throws Exception {
        Path dest = restores.resolve("restore-killed");
        try (Running p = Running.asOwner(work, hook("restore-mid-copy"), "restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                dest.toString())) {
            p.awaitLine("HOOK restore-mid-copy ", HOOK_TIMEOUT);
            p.killTree();
        }
        assertThat(dest).isDirectory();
        assertThat(dest.resolve("global/pg_control")).as("written last").doesNotExist();
        assertThat(dest.resolve("backup_label")).doesNotExist();
        PgCluster.ProcessResult r = Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", dest.toString());
        assertError(r, 9, "restore target \"" + dest + "\" holds an interrupted restore (no global/pg_control, which a restore writes last: "
                + "PostgreSQL cannot start it)", "remove the directory and restore again; pgproof never writes into an existing directory");
    }

    // ------------------------------------------------------------------ 5. leftovers and a running backup

    @Test
    @Order(5)
    void leftoversOfKilledWritesAreReportedAndExpiredAndARunningBackupIsInProgress() throws Exception {
        String side = "side";
        Pgproof.run("init", "--cluster", side, "--repo", repo.toString(), "--pgdata", main.dataDir().toString()).assertOk("init " + side);
        String segment = main.psql("SELECT pg_walfile_name(pg_switch_wal())");
        Path sampleDir = Files.createDirectories(work.resolve("sample"));
        PgCluster.chownToOwner(sampleDir, false);
        main.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT);
        Path sample = sampleDir.resolve(segment);
        Pgproof.runAsOwner(work, Map.of(), "archive-get", "--cluster", CLUSTER, "--repo", repo.toString(), segment, sample.toString())
                .assertOk("archive-get " + segment);
        Path leftover;
        try (Running p = Running.asOwner(work, hook("storage-before-rename"), "archive-push", "--cluster", side, "--repo", repo.toString(),
                sample.toString())) {
            leftover = Path.of(p.awaitLine("HOOK storage-before-rename ", HOOK_TIMEOUT).substring("HOOK storage-before-rename ".length()).strip());
            p.killTree();
        }
        assertThat(leftover).isRegularFile();
        Files.setLastModifiedTime(leftover, FileTime.from(Instant.now().minus(Duration.ofHours(2))));
        Path fresh = leftover.resolveSibling("." + segment + "-fresh.zst.tmp.1.abc");
        Files.write(fresh, new byte[10]);
        String key = repo.relativize(leftover).toString();

        PgCluster.ProcessResult r = Pgproof.run("verify", "--cluster", side, "--repo", repo.toString()).assertOk("verify with a leftover");
        assertThat(r.stdout()).contains("LEFTOVER " + side + " " + key + ": temporary file of an interrupted write")
                .doesNotContain("-fresh.zst.tmp").doesNotContain("PROBLEM");
        r = Pgproof.run("verify", "--cluster", side, "--repo", repo.toString(), "--output", "json").assertOk("verify --output json");
        JsonNode leftovers = JSON.readTree(r.stdout()).get("clusters").get(0).get("leftovers");
        assertThat(leftovers).hasSize(1);
        assertThat(leftovers.get(0).get("key").asText()).isEqualTo(key);
        r = Pgproof.run("expire", "--cluster", side, "--repo", repo.toString()).assertOk("expire with a leftover");
        assertThat(r.stderr()).contains("removing 1 temporary file");
        assertThat(leftover).doesNotExist();
        assertThat(fresh).as("a temporary file younger than an hour may be a write in progress").exists();
        Files.delete(fresh);

        // verify while a backup runs: in progress, not incomplete.
        Path release = work.resolve("release-backup");
        try (Running p = Running.asOwner(work, hook("backup-mid-copy", release), "backup", "--cluster", CLUSTER, "--repo", repo.toString(),
                "--pgdata", main.dataDir().toString(), "--start-fast")) {
            p.awaitLine("HOOK backup-mid-copy ", HOOK_TIMEOUT);
            Matcher m = Pattern.compile("(?m)^backup (\\S+) of cluster \"" + CLUSTER + "\": starting").matcher(p.stderr());
            assertThat(m.find()).isTrue();
            r = verify().assertOk("verify during a backup");
            assertThat(r.stdout()).contains("IN PROGRESS " + CLUSTER + " backup " + m.group(1) + ": a running backup holds the cluster's lock")
                    .doesNotContain("PROBLEM");
            Files.createFile(release);
            p.waitFor(Duration.ofMinutes(3)).assertOk("the backup, released");
        }
    }

    // ------------------------------------------------------------------ 6. stray timeline

    @Test
    @Order(6)
    void aPromotedCopyArchivingUnderTheSameNameMakesRestoreRefuseToGuessTheTimeline() throws Exception {
        String label = newest();
        Path copyDir = restores.resolve("copy");
        // The hazard: restored with archiving kept (the default), promoted, archiving into the same cluster name.
        Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", copyDir.toString(), "--set", label, "--target",
                "immediate", "--target-action", "promote").assertOk("restore of the copy");
        copy = PgCluster.adopt(copyDir, root.resolve("copy-sock"), PgCluster.freePort());
        copy.start();
        copy.awaitPromotion(Duration.ofMinutes(2));
        copy.psql("INSERT INTO line VALUES ('the promoted copy')");
        copy.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT);
        String history = Files.readString(copyDir.resolve("pg_wal/00000002.history"));
        String switchLsn = history.strip().split("\\s+")[1];

        main.psql("INSERT INTO line VALUES ('main after the fork')");
        main.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT);
        main.psql("INSERT INTO line VALUES ('main, later')");
        String last = main.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT);
        Map<String, String> mainLine = main.tableDigests();

        Path dest = restores.resolve("restore-main");
        PgCluster.ProcessResult r = Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", dest.toString());
        assertError(r, 9, "cluster \"" + CLUSTER + "\": the WAL archive has diverging timelines: timeline 2 branches off timeline 1 at " + switchLsn
                + ", but timeline 1 has WAL past that point (up to " + last + "); recovering backup " + label
                + " to the latest timeline (PostgreSQL's default) would follow timeline 2",
                "--target-timeline 1 recovers the timeline that kept writing after the branch (when another server, such as a promoted copy, "
                        + "archived timeline 2 under this cluster name)",
                "--target-timeline 2 follows the branch (when this cluster itself was promoted there, as after a point-in-time restore)",
                "a promoted copy must archive under its own cluster name (pgproof init --cluster <new name>) or be restored with "
                        + "--archive-mode off; pgproof verify lists diverging timelines");
        assertThat(dest).doesNotExist();

        r = verify();
        assertThat(r.exitCode()).as(r.stdout() + r.stderr()).isEqualTo(10);
        assertThat(r.stdout()).containsPattern("PROBLEM " + CLUSTER + " \\[wal-timeline-fork\\] " + CLUSTER
                + "/wal/history/00000002\\.history-[0-9a-f]{64}\\.zst: timeline 2 branches off timeline 1 at " + Pattern.quote(switchLsn)
                + ", but timeline 1 has WAL past that point \\(up to " + last + "\\), and timeline 2 has WAL up to 00000002[0-9A-F]{16}: two "
                + "servers archived under cluster \"" + CLUSTER + "\"; restore and prove of backup\\(s\\) .*" + label
                + ".* refuse to guess a timeline without --target-timeline");

        // Told which line, restore recovers the original cluster's data, not the copy's.
        Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", dest.toString(), "--target-timeline", "1",
                "--archive-mode", "off").assertOk("restore along timeline 1");
        PgCluster restored = PgCluster.adopt(dest, root.resolve("restore-main-sock"), PgCluster.freePort());
        restored.start();
        try {
            restored.awaitPromotion(Duration.ofMinutes(2));
            assertThat(restored.tableDigests()).isEqualTo(mainLine);
            assertThat(restored.psql("SELECT string_agg(who, ',' ORDER BY who) FROM line"))
                    .isEqualTo("main after the fork,main before any backup,main, later");
        } finally {
            restored.stop();
        }
    }

    // ------------------------------------------------------------------ helpers

    private PgCluster.ProcessResult backup() {
        return Pgproof.run("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", main.dataDir().toString(), "--start-fast");
    }

    private PgCluster.ProcessResult verify() {
        return Pgproof.run("verify", "--cluster", CLUSTER, "--repo", repo.toString());
    }

    private JsonNode info() throws IOException {
        PgCluster.ProcessResult r = Pgproof.run("info", "--repo", repo.toString(), "--cluster", CLUSTER, "--output", "json").assertOk("info");
        return JSON.readTree(r.stdout()).get("clusters").get(0);
    }

    private String newest() throws IOException {
        List<String> l = Pgproof.labels(info().get("backups"));
        assertThat(l).isNotEmpty();
        return l.get(l.size() - 1);
    }

    private Map<String, String> hook(String point) {
        return hook(point, work.resolve("never-released"));
    }

    private static Map<String, String> hook(String point, Path release) {
        return Pgproof.hook(point, release);
    }

    /** Writes until the file system is full. */
    private static void fill(Path file) throws IOException {
        byte[] mb = new byte[1 << 20];
        try (OutputStream out = Files.newOutputStream(file)) {
            while (true) {
                out.write(mb);
            }
        } catch (IOException e) {
            assertThat(e.getMessage()).contains("No space left on device");
        }
    }

    private void awaitArchiverFailures(long before) {
        long deadline = System.nanoTime() + ARCHIVE_TIMEOUT.toNanos();
        while (Long.parseLong(main.psql("SELECT failed_count FROM pg_stat_archiver")) <= before) {
            assertThat(System.nanoTime()).as("the archiver failing on the full repository").isLessThan(deadline);
            PgCluster.pause(200);
        }
    }

    /** Every file under the cluster's WAL directory whose name starts with the segment's or its hidden temporary name. */
    private List<Path> walFiles(String segment) throws IOException {
        try (Stream<Path> s = Files.walk(repo.resolve(CLUSTER).resolve("wal"))) {
            return s.filter(p -> p.getFileName().toString().startsWith(segment) || p.getFileName().toString().startsWith("." + segment)).toList();
        }
    }

    private List<Path> temporaryFiles() throws IOException {
        try (Stream<Path> s = Files.walk(repo)) {
            return s.filter(p -> p.getFileName().toString().contains(".tmp.")).toList();
        }
    }
}
