package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
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
 * Faults pgproof must survive or refuse loudly, against a real PostgreSQL 15 cluster archiving
 * into a real repository: corrupt, missing and unreadable archived WAL (archive-get), a WAL gap at
 * restore, refused archive-push inputs, archive-push and backup killed with SIGKILL mid-write, the
 * durability syscalls of archive-push (strace), and a table dropped while a backup copies.
 *
 * <p>One source cluster ("main", archiving with pgproof) and one repository are shared by all
 * tests; every test that damages the repository puts it back as it was. A second cluster is only
 * initdb'd, never started: its first WAL segment is the "foreign" segment. Kill tests run pgproof
 * directly as the cluster owner (runuser) so that the whole process tree can be SIGKILLed; the
 * pause points are pgproof's test hooks (PGPROOF_TEST_HOOK).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class FaultsIT {
    private static final String CLUSTER = "main";
    private static final int SEG_SIZE = 16 * 1024 * 1024;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration HOOK_TIMEOUT = Duration.ofSeconds(90);
    private static final Duration ARCHIVE_TIMEOUT = Duration.ofSeconds(60);
    private static final String GET_CORRUPT_HINT = "recovery stops here rather than replaying bad WAL; restore the file from another "
            + "copy of the repository, or restore to a target before it";
    private static final String GET_FAILED_HINT = "recovery stops here rather than ending early; fix access to the repository and "
            + "start PostgreSQL again";

    @TempDir
    static Path tmp;

    private Path base;
    private Path repo;
    private Path work;
    private PgCluster main;
    private PgCluster other;
    /** count and md5 of table keeper, which no test changes. */
    private String keeperDigest;
    /** A complete segment of "main" (the first backup's start segment), fetched from the archive. */
    private String sampleName;
    private Path sample;
    private String mainSysid;

    @BeforeAll
    void setUp() throws IOException {
        base = tmp.resolve("faults");
        main = PgCluster.create(base, "main", PgCluster.freePort());
        repo = base.resolve("repo");
        main.configure("archive_mode", "on");
        main.configure("archive_command", PgCluster.quote(Pgproof.archiveCommand(CLUSTER, repo)));
        main.start();
        Pgproof.run("init", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", main.dataDir().toString())
                .assertOk("pgproof init");
        work = base.resolve("work");
        Files.createDirectories(work);
        PgCluster.chownToOwner(work, false);

        main.psql("CREATE TABLE keeper AS SELECT g, md5(g::text) AS h FROM generate_series(1, 50000) g");
        keeperDigest = main.psql("SELECT count(*) || ':' || md5(string_agg(h, ',' ORDER BY g)) FROM keeper");
        // A few MB that test 7 drops while a backup runs.
        main.psql("CREATE TABLE dropme AS SELECT g, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 20000) g");
        backup().assertOk("first backup");

        // The foreign cluster: initdb only; its pg_wal holds a complete first segment.
        other = PgCluster.create(base, "other", PgCluster.freePort());

        mainSysid = main.controlData().get("Database system identifier");
        sampleName = newestBackup().get("startWal").asText();
        Path sampleDir = work.resolve("sample");
        Files.createDirectories(sampleDir);
        PgCluster.chownToOwner(sampleDir, false);
        sample = sampleDir.resolve(sampleName);
        ownerRun(Map.of(), "archive-get", "--cluster", CLUSTER, "--repo", repo.toString(), sampleName, sample.toString())
                .assertOk("archive-get of " + sampleName);
        assertThat(Files.size(sample)).isEqualTo(SEG_SIZE);
    }

    @AfterAll
    void tearDown() {
        if (main != null) {
            main.stop();
        }
    }

    // ------------------------------------------------------------------ 1. archive-get

    @Test
    @Order(1)
    void archiveGetRefusesCorruptMissingAndUnreadableWal() throws Exception {
        Path stored = storedObject(CLUSTER, sampleName);
        String key = repo.relativize(stored).toString();
        byte[] original = Files.readAllBytes(stored);
        Path getDir = work.resolve("get");
        Files.createDirectories(getDir);
        PgCluster.chownToOwner(getDir, false);
        Path dest = getDir.resolve(sampleName);
        try {
            // A flipped byte that still decompresses cleanly: only the SHA-256 in the name catches it.
            Flip flip = cleanlyDecodingFlip(original);
            Files.write(stored, flip.bytes());
            PgCluster.ProcessResult r = get(CLUSTER, repo, sampleName, dest);
            assertError(r, 201, "stored WAL file \"" + key + "\" is corrupt: its content has SHA-256 " + flip.decodedSha256(),
                    GET_CORRUPT_HINT);
            assertThat(dest).doesNotExist();
            assertThat(listNames(getDir)).isEmpty();

            // Garbage under the same name: not even a zstd frame.
            Files.write(stored, "this is not a zstd frame, just garbage\n".getBytes(StandardCharsets.UTF_8));
            r = get(CLUSTER, repo, sampleName, dest);
            assertError(r, 201, "stored WAL file \"" + key + "\" cannot be decompressed: Unknown frame descriptor", GET_CORRUPT_HINT);
            assertThat(dest).doesNotExist();
            assertThat(listNames(getDir)).isEmpty();
        } finally {
            Files.write(stored, original);
        }
        // Put back, it is served again, byte for byte.
        get(CLUSTER, repo, sampleName, dest).assertOk("archive-get after repair");
        assertThat(Files.mismatch(dest, sample)).isEqualTo(-1L);
        Files.delete(dest);

        // Missing: exit 1 ("not archived", normal at the end of the archive), quickly and without an ERROR.
        String missing = "0000000100000000000000F0";
        long t0 = System.nanoTime();
        PgCluster.ProcessResult r = get(CLUSTER, repo, missing, getDir.resolve(missing));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertThat(r.exitCode()).as("exit code of archive-get of a missing segment\n" + r.stderr()).isEqualTo(1);
        assertThat(r.stderr().strip()).isEqualTo("archive-get: WAL file \"" + missing + "\" is not in repository \"" + repo
                + "\" for cluster \"" + CLUSTER + "\"");
        assertThat(ms).as("archive-get of a missing segment took %d ms", ms).isLessThan(15_000);
        assertThat(listNames(getDir)).isEmpty();

        // Unreadable repository: 200 (recovery stops), never 1 (recovery would end early and promote).
        Path noRepo = base.resolve("no-such-repo");
        r = get(CLUSTER, noRepo, sampleName, dest);
        assertError(r, 200, "repository \"" + noRepo + "\" does not exist",
                "check --repo (or PGPROOF_REPO, or repo in the configuration file) and that the file system is mounted",
                "a new repository is created by: pgproof init --cluster <name> --repo " + noRepo + " --pgdata <data directory>");

        withMode(repo, "---------", () -> assertError(get(CLUSTER, repo, sampleName, dest), 200,
                "could not read \"" + CLUSTER + "/cluster.info\" in repository \"" + repo + "\": " + repo.resolve(CLUSTER + "/cluster.info"),
                "check that the repository is mounted and readable by this OS user"));

        // The WAL directories: unreadable must not read as "no copy stored".
        Path walRoot = repo.resolve(CLUSTER).resolve("wal");
        Path segDir = walRoot.resolve(sampleName.substring(0, 16));
        withMode(walRoot, "---------", () -> assertError(get(CLUSTER, repo, sampleName, dest), 200,
                "could not list repository \"" + repo + "\" for WAL file \"" + sampleName + "\": " + segDir, GET_FAILED_HINT));
        withMode(segDir, "---------", () -> assertError(get(CLUSTER, repo, sampleName, dest), 200,
                "could not list repository \"" + repo + "\" for WAL file \"" + sampleName + "\": " + segDir, GET_FAILED_HINT));
        assertThat(listNames(getDir)).isEmpty();
    }

    // ------------------------------------------------------------------ 2. WAL gap

    @Test
    @Order(2)
    void restoreFailsLoudlyOnAWalGapAfterTheBackup() throws Exception {
        JsonNode newest = newestBackup();
        String label = newest.get("label").asText();
        String stopWal = newest.get("stopWal").asText();
        List<String> switched = new ArrayList<>();
        main.psql("CREATE TABLE IF NOT EXISTS gapfill (i int)");
        for (int i = 0; i < 4; i++) {
            main.psql("INSERT INTO gapfill VALUES (" + i + ")");
            switched.add(main.psql("SELECT pg_walfile_name(pg_switch_wal())"));
        }
        awaitArchived(switched.get(switched.size() - 1));
        String victim = switched.get(1);
        assertThat(victim).as("segments switched after backup %s (stop segment %s): %s", label, stopWal, switched)
                .isGreaterThan(stopWal);
        for (String s : switched) {
            awaitArchived(s);
        }

        Path stored = storedObject(CLUSTER, victim);
        Path aside = work.resolve("aside-" + stored.getFileName());
        Path dest = base.resolve("restore-gap");
        Files.move(stored, aside);
        try {
            PgCluster.ProcessResult r = Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                    dest.toString());
            long seg = segmentNumber(victim);
            assertError(r, 9, "WAL gap in the archive of cluster \"" + CLUSTER + "\": segments " + victim + " to " + victim
                    + " are missing, between backup " + label + " and the recovery target",
                    "recovery could only reach " + lsn(seg * SEG_SIZE)
                            + "; restore with --target-lsn at or before it, or --target immediate, or find the missing segments");
            assertThat(dest).as("restore target after a refused restore").doesNotExist();
        } finally {
            Files.move(aside, stored, StandardCopyOption.ATOMIC_MOVE);
        }
    }

    // ------------------------------------------------------------------ 3. archive-push refusals

    @Test
    @Order(3)
    void archivePushRefusesBadSegmentsAndLeavesTheRepositoryUntouched() throws Exception {
        Path pushDir = work.resolve("push");
        for (String d : List.of("truncated", "different")) {
            Files.createDirectories(pushDir.resolve(d));
        }
        PgCluster.chownToOwner(pushDir, true);
        byte[] seg = Files.readAllBytes(sample);

        Path truncated = pushDir.resolve("truncated").resolve(sampleName);
        Files.write(truncated, Arrays.copyOf(seg, SEG_SIZE / 2));
        Path foreign = other.dataDir().resolve("pg_wal").resolve("000000010000000000000001");
        String otherSysid = other.controlData().get("Database system identifier");
        assertThat(otherSysid).isNotEqualTo(mainSysid);
        Path different = pushDir.resolve("different").resolve(sampleName);
        byte[] changed = seg.clone();
        changed[1 << 20] ^= 0x5a; // past the page header: a well-formed segment of the same size
        Files.write(different, changed);

        Map<String, String> before = hashTree(repo);
        assertThat(before).isNotEmpty();

        PgCluster.ProcessResult r = push(CLUSTER, truncated);
        assertError(r, 7, "WAL file \"" + truncated + "\" is " + SEG_SIZE / 2 + " bytes, but cluster \"" + CLUSTER + "\" has "
                + SEG_SIZE + "-byte WAL segments; refusing a truncated or foreign file",
                "archive only complete segments from pg_wal; nothing was stored");
        assertThat(hashTree(repo)).isEqualTo(before);

        r = push(CLUSTER, foreign);
        assertError(r, 5, "WAL file \"" + foreign + "\" belongs to system identifier " + otherSysid + ", but cluster \"" + CLUSTER
                + "\" in repository \"" + repo + "\" is pinned to system identifier " + mainSysid,
                "this server's archive_command names the wrong cluster: give it the --cluster (and --repo) initialised for this server",
                "see which clusters a repository holds with: pgproof info --repo " + repo);
        assertThat(hashTree(repo)).isEqualTo(before);

        r = push(CLUSTER, different);
        assertError(r, 7, "WAL file \"" + sampleName + "\" is already archived for cluster \"" + CLUSTER
                + "\" with different content (stored SHA-256 " + sha256(seg).substring(0, 16) + "..., this file "
                + sha256(changed).substring(0, 16) + "...)",
                "the stored copy was left untouched; if two servers archive under one --cluster name, give each its own",
                "inspect the archive with: pgproof info --cluster " + CLUSTER);
        assertThat(hashTree(repo)).isEqualTo(before);

        // The identical file again (PostgreSQL retries after a crash): success, nothing rewritten.
        r = push(CLUSTER, sample).assertOk("second push of an identical segment");
        assertThat(r.stderr()).contains("archive-push: " + sampleName + " was already stored for cluster \"" + CLUSTER
                + "\" with identical content");
        assertThat(hashTree(repo)).isEqualTo(before);
    }

    // ------------------------------------------------------------------ 4. archive-push killed

    @Test
    @Order(4)
    void archivePushKilledBeforeTheRenameLeavesNothingUnderTheFinalName() throws Exception {
        String cluster = "pushkill";
        init(cluster);
        Path walDir = repo.resolve(cluster).resolve("wal").resolve(sampleName.substring(0, 16));
        Path tmpFile;
        try (Running p = Running.asOwner(work, hook("storage-before-rename"), "archive-push", "--cluster", cluster, "--repo",
                repo.toString(), sample.toString())) {
            String line = p.awaitLine("HOOK storage-before-rename ", HOOK_TIMEOUT);
            tmpFile = Path.of(line.substring("HOOK storage-before-rename ".length()).strip());
            assertThat(tmpFile.getParent()).isEqualTo(walDir);
            assertThat(tmpFile.getFileName().toString()).startsWith("." + sampleName + "-" + sha256(Files.readAllBytes(sample)) + ".zst.tmp.");
            assertThat(tmpFile).as("the temporary file, written and fsync'd, at the pause").isRegularFile();
            assertThat(Files.size(tmpFile)).isPositive();
            assertThat(finalObjects(walDir, sampleName)).isEmpty();
            p.killTree();
        }
        assertThat(finalObjects(walDir, sampleName)).as("stored objects named %s-* after SIGKILL", sampleName).isEmpty();
        // Readers never see the leftover temporary file.
        Path dest = work.resolve("get-pushkill-" + sampleName);
        PgCluster.ProcessResult r = get(cluster, repo, sampleName, dest);
        assertThat(r.exitCode()).as("archive-get after the killed push\n" + r.stderr()).isEqualTo(1);
        assertThat(dest).doesNotExist();

        // PostgreSQL's retry succeeds and stores a copy that decompresses to the very same bytes.
        push(cluster, sample).assertOk("archive-push retry after SIGKILL");
        List<Path> objects = finalObjects(walDir, sampleName);
        assertThat(objects).hasSize(1);
        Path decoded = work.resolve("pushkill-decoded");
        PgCluster.run(List.of("zstd", "-d", "-q", "-f", "-o", decoded.toString(), objects.get(0).toString()), null, null,
                Duration.ofMinutes(1)).assertOk("zstd -d of " + objects.get(0));
        assertThat(Files.mismatch(decoded, sample)).as("decompressed stored object vs source segment").isEqualTo(-1L);
        Files.delete(decoded);
    }

    // ------------------------------------------------------------------ 5. durability syscalls

    @Test
    @Order(5)
    void archivePushFsyncsTheFileAndItsDirectoryBeforeExit() throws Exception {
        String cluster = "pushsync";
        init(cluster);
        Path trace = work.resolve("archive-push.strace");
        List<String> cmd = new ArrayList<>(List.of("strace", "-f", "-e",
                "trace=fsync,fdatasync,openat,rename,renameat,renameat2,link,linkat", "-o", trace.toString()));
        cmd.addAll(Pgproof.command("archive-push", "--cluster", cluster, "--repo", repo.toString(), sample.toString()));
        PgCluster.ProcessResult r = PgCluster.runAsOwner(cmd, Map.of(), work, Duration.ofMinutes(2));
        r.assertOk("archive-push under strace");
        assertThat(r.stderr()).contains("archive-push: stored " + sampleName + " for cluster \"" + cluster + "\"");

        Path walDir = repo.resolve(cluster).resolve("wal").resolve(sampleName.substring(0, 16));
        String finalName = sampleName + "-" + sha256(Files.readAllBytes(sample)) + ".zst";
        StraceLog log = StraceLog.parse(Files.readAllLines(trace));
        // The commit: link (no-replace) or rename of the temporary file to the final name.
        StraceLog.Event commit = log.events.stream()
                .filter(e -> e.kind.equals("commit") && e.path2 != null && e.path2.equals(walDir.resolve(finalName).toString()))
                .findFirst().orElseThrow(() -> new AssertionError("no link/rename to " + finalName + " in\n" + log.text));
        String tmpName = Path.of(commit.path).getFileName().toString();
        assertThat(Path.of(commit.path).getParent()).isEqualTo(walDir);
        assertThat(tmpName).startsWith("." + finalName + ".tmp.");
        assertThat(log.events.stream().filter(e -> e.kind.equals("fsync") && commit.path.equals(e.path) && e.index < commit.index))
                .as("fsync/fdatasync of the temporary file %s before it is linked into place\n%s", commit.path, log.text)
                .isNotEmpty();
        assertThat(log.events.stream().filter(e -> e.kind.equals("fsync") && walDir.toString().equals(e.path) && e.index > commit.index))
                .as("fsync of the directory %s after the link\n%s", walDir, log.text)
                .isNotEmpty();
        assertThat(log.text).contains("+++ exited with 0 +++");
        assertThat(finalObjects(walDir, sampleName)).containsExactly(walDir.resolve(finalName));
    }

    // ------------------------------------------------------------------ 6. backup killed

    @Test
    @Order(6)
    void backupKilledMidCopyIsNeverCompleteAndLeavesTheDataDirectoryAlone() throws Exception {
        List<String> topBefore = listNames(main.dataDir());
        assertThat(topBefore).doesNotContain("backup_label", "tablespace_map");
        String label;
        try (Running p = Running.asOwner(work, hook("backup-mid-copy"), "backup", "--cluster", CLUSTER, "--repo", repo.toString(),
                "--pgdata", main.dataDir().toString(), "--start-fast", "--jobs", "2")) {
            String line = p.awaitLine("HOOK backup-mid-copy ", HOOK_TIMEOUT);
            Matcher m = Pattern.compile("(?m)^backup (\\S+) of cluster \"" + CLUSTER + "\": starting").matcher(p.stderr());
            assertThat(m.find()).as("label in the output of backup:\n" + p.stderr()).isTrue();
            label = m.group(1);
            assertThat(line).startsWith("HOOK backup-mid-copy ");
            Path data = repo.resolve(CLUSTER).resolve("backup").resolve(label).resolve("data");
            assertThat(data).isDirectory();
            // Both copy threads stop at the pause point after a file each, so that no object is being written (a backup writes
            // them in place): then two files' chunks are stored, and one is damaged below.
            p.awaitLine("HOOK backup-mid-copy ", HOOK_TIMEOUT);
            assertThat(storedObjects(data)).as("chunks stored before the kill").isGreaterThanOrEqualTo(2);
            p.killTree();
        }
        Path killedDir = repo.resolve(CLUSTER).resolve("backup").resolve(label);
        assertThat(killedDir.resolve("backup.complete")).doesNotExist();
        JsonNode info = info();
        assertThat(Pgproof.labels(info.get("backups"))).doesNotContain(label);
        for (JsonNode inc : info.path("incompleteBackups")) {
            if (inc.get("label").asText().equals(label)) {
                assertThat(inc.get("problem").asText()).isEqualTo("no backup.complete marker (in progress, or interrupted)");
            }
        }
        assertThat(listNames(main.dataDir())).as("top level of the live data directory").isEqualTo(topBefore);

        // A restore without --set never picks the killed backup.
        JsonNode newest = newestBackup();
        assertThat(newest.get("label").asText()).isNotEqualTo(label);

        // The next backup resumes the killed one: stored chunks are reused after checking their checksums, and a
        // damaged one (emptied here) is copied again. The result restores to files pg_verifybackup accepts.
        Path damaged;
        damaged = Pgproof.storedChunks(killedDir.resolve("data")).stream().max(java.util.Comparator.comparingLong(FaultsIT::sizeOf)).orElseThrow();
        assertThat(sizeOf(damaged)).isPositive();
        Files.write(damaged, new byte[0]);
        PgCluster.ProcessResult r = backup().assertOk("backup after a killed backup");
        assertThat(r.stdout().strip()).as("label of the resumed backup").isEqualTo(label);
        assertThat(r.stderr()).contains("backup " + label + " of cluster \"" + CLUSTER + "\": resuming this interrupted backup")
                .containsPattern("backup " + label + ": resumed; reused [1-9]\\d* stored chunks");
        assertThat(sizeOf(damaged)).as("the damaged chunk, copied again").isPositive();
        assertThat(Pgproof.labels(info().get("backups"))).contains(label);
        assertThat(info().path("incompleteBackups")).isEmpty();
        assertThat(listNames(main.dataDir())).isEqualTo(topBefore);
        Path dest = base.resolve("restore-resumed");
        Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", dest.toString(), "--set", label,
                "--archive-mode", "off").assertOk("restore of the resumed backup");
        PgCluster.runAsOwner(List.of(PgCluster.bin("pg_verifybackup"), "-n", dest.toString()), null, null)
                .assertOk("pg_verifybackup of the resumed backup");
    }

    private static long storedObjects(Path dir) throws IOException {
        return Pgproof.storedChunks(dir).size();
    }

    private static long sizeOf(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    // ------------------------------------------------------------------ 7. table dropped mid-backup

    @Test
    @Order(7)
    void tableDroppedBetweenListingAndCopyStillGivesARestorableBackup() throws Exception {
        String relPath = main.psql("SELECT pg_relation_filepath('dropme')");
        Path relFile = main.dataDir().resolve(relPath);
        assertThat(Files.size(relFile)).isGreaterThan(2L * 1024 * 1024);
        Path release = work.resolve("release-drop");
        String label;
        PgCluster.ProcessResult r;
        try (Running p = Running.asOwner(work, hook("backup-after-list", release), "backup", "--cluster", CLUSTER, "--repo",
                repo.toString(), "--pgdata", main.dataDir().toString(), "--start-fast")) {
            String line = p.awaitLine("HOOK backup-after-list ", HOOK_TIMEOUT);
            label = line.substring("HOOK backup-after-list ".length()).strip();
            main.psql("DROP TABLE dropme");
            main.psql("CHECKPOINT");
            assertThat(relFile).as("the dropped table's file after DROP TABLE and CHECKPOINT").doesNotExist();
            Files.createFile(release);
            r = p.waitFor(Duration.ofMinutes(3));
        }
        r.assertOk("backup with a table dropped after the listing");
        assertThat(r.stdout().strip()).isEqualTo(label);
        assertThat(Pgproof.labels(info().get("backups"))).contains(label);

        Path dest = base.resolve("restore-drop");
        Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", dest.toString(), "--set", label,
                "--target", "immediate", "--archive-mode", "off").assertOk("restore of " + label);
        PgCluster restored = PgCluster.adopt(dest, base.resolve("restore-drop-sock"), PgCluster.freePort());
        restored.start();
        try {
            assertThat(restored.psql("SELECT count(*) || ':' || md5(string_agg(h, ',' ORDER BY g)) FROM keeper"))
                    .isEqualTo(keeperDigest);
            assertThat(restored.psql("SELECT count(*) FROM pg_class WHERE relname = 'dropme'")).isEqualTo("0");
            assertThat(restored.psql("SELECT to_regclass('dropme') IS NULL")).isEqualTo("t");
        } finally {
            restored.stop();
        }
    }

    // ------------------------------------------------------------------ 8. restore durability

    @Test
    @Order(8)
    void restoreFsyncsEveryFileAndDirectoryBeforeBackupLabelAndPgControlLast() throws Exception {
        String label = newestLabel();
        Path dest = base.resolve("restore-strace");
        Path trace = work.resolve("restore.strace");
        List<String> cmd = new ArrayList<>(List.of("strace", "-f", "-e", "trace=fsync,fdatasync,openat", "-o", trace.toString()));
        cmd.addAll(Pgproof.command("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", dest.toString(), "--set", label,
                "--archive-mode", "off"));
        PgCluster.runAsOwner(cmd, Map.of(), work, Duration.ofMinutes(3)).assertOk("restore under strace");
        StraceLog log = StraceLog.parse(Files.readAllLines(trace));
        Map<String, Integer> lastFsync = new HashMap<>();
        log.events.stream().filter(e -> e.kind.equals("fsync") && e.path != null).forEach(e -> lastFsync.put(e.path, e.index));
        List<Path> files;
        List<Path> dirs;
        try (Stream<Path> s = Files.walk(dest)) {
            List<Path> all = s.toList();
            files = all.stream().filter(Files::isRegularFile).toList();
            dirs = all.stream().filter(Files::isDirectory).toList();
        }
        int label2 = lastFsync.getOrDefault(dest.resolve("backup_label").toString(), -1);
        int control = lastFsync.getOrDefault(dest.resolve("global/pg_control").toString(), -1);
        assertThat(label2).as("fsync of backup_label").isPositive();
        assertThat(control).as("fsync of global/pg_control, after backup_label").isGreaterThan(label2);
        for (Path f : files) {
            if (f.endsWith("backup_label") || f.endsWith(Path.of("global", "pg_control"))) {
                continue;
            }
            assertThat(lastFsync.get(f.toString())).as("fsync of %s before backup_label's", f).isNotNull().isLessThan(label2);
        }
        for (Path d : dirs) {
            assertThat(lastFsync.get(d.toString())).as("fsync of directory %s", d).isNotNull();
        }
        assertThat(lastFsync.get(dest.resolve("global").toString())).as("fsync of global/ after pg_control").isGreaterThan(control);
    }

    /**
     * A stored chunk of a backup whose bytes still decompress, but to other content (one byte of the relation flipped and
     * the object compressed again): restore refuses it by the piece's CRC-32C, naming the chunk, and verify reports it.
     */
    @Test
    @Order(9)
    void aChunkThatDecompressesToOtherBytesIsRefusedByRestoreAndReportedByVerify() throws Exception {
        String label = newestLabel();
        Path damaged = repoCopy("repo-flipped");
        Path object;
        try (Stream<Path> s = Files.walk(damaged.resolve(CLUSTER).resolve("backup").resolve(label).resolve("data"))) {
            object = s.filter(p -> p.toString().endsWith(".zst")).max(java.util.Comparator.comparingLong(p -> p.toFile().length())).orElseThrow();
        }
        byte[] content;
        try (var in = new com.github.luben.zstd.ZstdInputStream(Files.newInputStream(object))) {
            content = in.readAllBytes();
        }
        content[content.length / 2] ^= 0x01;
        try (var out = new com.github.luben.zstd.ZstdOutputStream(Files.newOutputStream(object), 3)) {
            out.write(content);
        }
        String key = damaged.relativize(object).toString();

        Path dest = base.resolve("restore-flipped");
        PgCluster.ProcessResult r = PgCluster.runAsOwner(Pgproof.command("restore", "--cluster", CLUSTER, "--repo", damaged.toString(),
                "--pgdata", dest.toString(), "--set", label, "--archive-mode", "off"), Map.of(), work, Duration.ofMinutes(3));
        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(10);
        assertThat(r.stderr()).contains("\": stored chunk \"" + key + "\" does not match its checksum");
        assertThat(dest.resolve("global/pg_control")).doesNotExist();

        PgCluster.ProcessResult v = Pgproof.run("verify", "--repo", damaged.toString(), "--cluster", CLUSTER);
        assertThat(v.exitCode()).as(v.stdout() + v.stderr()).isEqualTo(10);
        assertThat(v.stdout()).contains("[backup-corrupt] " + key + ": ").contains("stored chunk does not match its checksum");
    }

    /**
     * A complete backup whose manifest names another cluster's identity (as a repository written to by another cluster
     * under this name would hold): verify reports it as a backup-identity problem and restore refuses it.
     */
    @Test
    @Order(10)
    void aBackupOfAnotherIdentityIsReportedByVerifyAndRefusedByRestore() throws Exception {
        String label = newestLabel();
        Path foreign = repoCopy("repo-foreign");
        Path dir = foreign.resolve(CLUSTER).resolve("backup").resolve(label);
        com.fasterxml.jackson.databind.node.ObjectNode manifest = (com.fasterxml.jackson.databind.node.ObjectNode) Pgproof.readManifest(dir);
        String otherSysid = other.controlData().get("Database system identifier");
        assertThat(otherSysid).isNotEqualTo(mainSysid);
        manifest.put("systemIdentifier", otherSysid);
        java.io.ByteArrayOutputStream z = new java.io.ByteArrayOutputStream();
        try (var out = new com.github.luben.zstd.ZstdOutputStream(z, 3)) {
            new ObjectMapper().writeValue(out, manifest);
        }
        Files.write(dir.resolve("manifest.json.zst"), z.toByteArray());
        // The marker as an older pgproof wrote it (no summary), naming the new manifest's SHA-256: complete, of another identity.
        Files.writeString(dir.resolve("backup.complete"), "{\"label\":\"" + label + "\",\"manifestSha256\":\"" + sha256(z.toByteArray())
                + "\",\"completedAt\":\"2026-11-26T00:00:00Z\"}");
        String manifestKey = CLUSTER + "/backup/" + label + "/manifest.json.zst";

        PgCluster.ProcessResult v = Pgproof.run("verify", "--repo", foreign.toString(), "--cluster", CLUSTER);
        assertThat(v.exitCode()).as(v.stdout() + v.stderr()).isEqualTo(10);
        assertThat(v.stdout()).contains("[backup-identity] " + manifestKey + ": backup " + label + " is of system identifier " + otherSysid
                + ", PostgreSQL 15; the cluster is pinned to system identifier " + mainSysid + ", PostgreSQL 15");

        Path dest = base.resolve("restore-foreign");
        PgCluster.ProcessResult r = PgCluster.runAsOwner(Pgproof.command("restore", "--cluster", CLUSTER, "--repo", foreign.toString(),
                "--pgdata", dest.toString(), "--set", label, "--archive-mode", "off"), Map.of(), work, Duration.ofMinutes(3));
        assertError(r, 5, "backup " + label + " of cluster \"" + CLUSTER + "\" is of system identifier " + otherSysid + ", PostgreSQL 15; the "
                + "cluster is pinned to system identifier " + mainSysid + ", PostgreSQL 15, and had no such identity before an upgrade",
                "another cluster stored backups under this name: pgproof verify --cluster " + CLUSTER + " lists them",
                "restore another backup with --set (pgproof info --cluster " + CLUSTER + " lists them)");
        assertThat(dest.resolve("global/pg_control")).doesNotExist();
    }

    // ------------------------------------------------------------------ 11. a local spool that cannot be written

    /**
     * A backup keeps its files' manifest entries in a spool file in the JVM's temporary directory: one that cannot be
     * created there fails the backup loudly, as a local problem with its fix (not as the repository's), no trace, and
     * leaves neither a complete backup nor any object of the one it had started.
     */
    @Test
    @Order(11)
    void aBackupWhoseLocalSpoolCannotBeCreatedFailsNamingTheDirectory() throws Exception {
        List<String> before = Pgproof.labels(info().get("backups"));
        PgCluster.ProcessResult r = Pgproof.run(Map.of("PGPROOF_JAVA_OPTS", "-Djava.io.tmpdir=/nonexistent/spool"), "backup", "--cluster",
                CLUSTER, "--repo", repo.toString(), "--pgdata", main.dataDir().toString(), "--start-fast");
        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(8);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("ERROR: backup (\\d{8}-\\d{6}F) of cluster \"" + CLUSTER + "\": could not "
                + "create a local file for the manifest entries of backup \\1 in /nonexistent/spool: \\S+").matcher(r.stderr());
        assertThat(m.find()).as(r.stderr()).isTrue();
        assertThat(r.stderr()).contains("HINT: the backup was not marked complete; free space in /nonexistent/spool, or give pgproof another "
                + "local directory: PGPROOF_JAVA_OPTS=-Djava.io.tmpdir=DIR").doesNotContain("\tat ").doesNotContain("Exception");
        assertThat(Pgproof.labels(info().get("backups"))).isEqualTo(before);
        Path started = repo.resolve(CLUSTER).resolve("backup").resolve(m.group(1));
        if (Files.exists(started)) {
            try (java.util.stream.Stream<Path> left = Files.walk(started)) {
                assertThat(left.filter(Files::isRegularFile)).as("objects left by the failed backup").isEmpty();
            }
        }
    }

    /**
     * A backup writes its data objects in place, without a temporary file each, and makes them durable together: every
     * file under the backup's directory is fsync'd, and every directory there after the files in it, before the
     * manifest is committed, and the marker after the manifest (strace). Nothing reads those objects before the marker.
     */
    @Test
    @Order(12)
    void backupMakesEveryObjectAndDirectoryDurableBeforeItsManifestAndMarker() throws Exception {
        Path trace = work.resolve("backup.strace");
        List<String> cmd = new ArrayList<>(List.of("strace", "-f", "-e",
                "trace=fsync,fdatasync,openat,rename,renameat,renameat2,link,linkat", "-o", trace.toString()));
        cmd.addAll(Pgproof.command("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", main.dataDir().toString(),
                "--start-fast"));
        PgCluster.ProcessResult r = PgCluster.runAsOwner(cmd, Map.of(), work, Duration.ofMinutes(3));
        r.assertOk("backup under strace");
        String label = r.stdout().strip();
        Path dir = repo.resolve(CLUSTER).resolve("backup").resolve(label);
        StraceLog log = StraceLog.parse(Files.readAllLines(trace));
        int manifest = commitOf(log, dir.resolve("manifest.json.zst"));
        int marker = commitOf(log, dir.resolve("backup.complete"));
        assertThat(marker).as("backup.complete committed after the manifest").isGreaterThan(manifest);
        assertThat(log.events.stream().filter(e -> e.kind.equals("commit") && e.path2.startsWith(dir.resolve("data") + "/")))
                .as("data objects renamed into place (they are written in place)").isEmpty();
        Map<String, Integer> lastFsync = new HashMap<>();
        log.events.stream().filter(e -> e.kind.equals("fsync") && e.path != null && e.index < manifest)
                .forEach(e -> lastFsync.put(e.path, e.index));
        List<Path> files;
        List<Path> dirs;
        try (Stream<Path> s = Files.walk(dir)) {
            List<Path> all = s.toList();
            files = all.stream().filter(Files::isRegularFile)
                    .filter(f -> !f.endsWith("manifest.json.zst") && !f.endsWith("backup.complete")).toList();
            dirs = all.stream().filter(Files::isDirectory).toList();
        }
        assertThat(files).as("objects of backup %s", label).hasSizeGreaterThan(100);
        for (Path f : files) {
            assertThat(lastFsync.get(f.toString())).as("fsync of %s before the manifest", f).isNotNull();
        }
        for (Path d : dirs) {
            int latestChild = files.stream().filter(f -> f.getParent().equals(d)).mapToInt(f -> lastFsync.get(f.toString())).max().orElse(-1);
            assertThat(lastFsync.get(d.toString())).as("fsync of directory %s before the manifest, after its files'", d).isNotNull()
                    .isGreaterThan(latestChild);
        }
    }

    private static int commitOf(StraceLog log, Path target) {
        return log.events.stream().filter(e -> e.kind.equals("commit") && target.toString().equals(e.path2)).mapToInt(StraceLog.Event::index)
                .findFirst().orElseThrow(() -> new AssertionError("no link/rename to " + target + " in the trace"));
    }

    // ------------------------------------------------------------------ helpers: pgproof

    /** A copy of the repository (owner and modes kept) under base, to damage without touching the one the other tests use. */
    private Path repoCopy(String name) {
        Path copy = base.resolve(name);
        PgCluster.run(List.of("cp", "-a", repo.toString(), copy.toString()), null, null, Duration.ofMinutes(2)).assertOk("cp -a");
        return copy;
    }

    /** The newest complete backup, as info lists it. */
    private String newestLabel() throws IOException {
        List<String> labels = Pgproof.labels(info().get("backups"));
        return labels.get(labels.size() - 1);
    }

    private PgCluster.ProcessResult backup() {
        return Pgproof.run("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", main.dataDir().toString(),
                "--start-fast");
    }

    private void init(String cluster) {
        Pgproof.run("init", "--cluster", cluster, "--repo", repo.toString(), "--pgdata", main.dataDir().toString())
                .assertOk("pgproof init --cluster " + cluster);
    }

    /** Runs pgproof as the cluster owner in the scratch directory (as archive_command and restore_command run). */
    private PgCluster.ProcessResult ownerRun(Map<String, String> env, String... args) {
        return Pgproof.runAsOwner(work, env, args);
    }

    private PgCluster.ProcessResult get(String cluster, Path repository, String name, Path dest) {
        return ownerRun(Map.of(), "archive-get", "--cluster", cluster, "--repo", repository.toString(), name, dest.toString());
    }

    private PgCluster.ProcessResult push(String cluster, Path file) {
        return ownerRun(Map.of(), "archive-push", "--cluster", cluster, "--repo", repo.toString(), file.toString());
    }

    private JsonNode info() throws IOException {
        PgCluster.ProcessResult r = Pgproof.run("info", "--repo", repo.toString(), "--cluster", CLUSTER, "--output", "json")
                .assertOk("pgproof info");
        JsonNode clusters = JSON.readTree(r.stdout()).get("clusters");
        assertThat(clusters).hasSize(1);
        return clusters.get(0);
    }

    /** The newest complete backup (info lists them by stop time). */
    private JsonNode newestBackup() throws IOException {
        JsonNode backups = info().get("backups");
        assertThat(backups).as("complete backups").isNotEmpty();
        return backups.get(backups.size() - 1);
    }

    private Map<String, String> hook(String point) {
        return hook(point, work.resolve("never-released"));
    }

    private static Map<String, String> hook(String point, Path release) {
        return Pgproof.hook(point, release);
    }

    /** Waits until a WAL file of "main" is in the repository. */
    private void awaitArchived(String name) throws InterruptedException {
        long deadline = System.nanoTime() + ARCHIVE_TIMEOUT.toNanos();
        while (finalObjects(repo.resolve(CLUSTER).resolve("wal").resolve(name.substring(0, 16)), name).isEmpty()) {
            if (System.nanoTime() > deadline) {
                fail("WAL file " + name + " was not archived within " + ARCHIVE_TIMEOUT + "; pg_stat_archiver: "
                        + main.psql("SELECT last_archived_wal, failed_count, last_failed_wal FROM pg_stat_archiver"));
            }
            Thread.sleep(100);
        }
    }

    /** The single stored object of a WAL file. */
    private Path storedObject(String cluster, String name) {
        List<Path> found = finalObjects(repo.resolve(cluster).resolve("wal").resolve(name.substring(0, 16)), name);
        assertThat(found).as("stored copies of %s", name).hasSize(1);
        return found.get(0);
    }

    /** Stored objects "name-*" in a WAL directory (never temporary files, which start with a dot). */
    private static List<Path> finalObjects(Path walDir, String name) {
        if (!Files.isDirectory(walDir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(walDir)) {
            return s.filter(p -> p.getFileName().toString().startsWith(name + "-")).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    // ------------------------------------------------------------------ helpers: assertions and files

    /** Exit code, the whole first ERROR line, and the HINT lines that follow it. */
    static void assertError(PgCluster.ProcessResult r, int exitCode, String error, String... hints) {
        String what = "\n--- stderr ---\n" + r.stderr() + "--- stdout ---\n" + r.stdout();
        assertThat(r.exitCode()).as("exit code" + what).isEqualTo(exitCode);
        List<String> lines = r.stderr().lines().toList();
        int at = -1;
        for (int i = 0; i < lines.size() && at < 0; i++) {
            if (lines.get(i).startsWith("ERROR: ")) {
                at = i;
            }
        }
        assertThat(at).as("an ERROR line" + what).isNotNegative();
        assertThat(lines.get(at)).as("first ERROR line" + what).isEqualTo("ERROR: " + error);
        List<String> hintLines = new ArrayList<>();
        for (int i = at + 1; i < lines.size() && lines.get(i).startsWith("HINT: "); i++) {
            hintLines.add(lines.get(i));
        }
        assertThat(hintLines).as("HINT lines" + what).containsExactlyElementsOf(Arrays.stream(hints).map(h -> "HINT: " + h).toList());
    }

    private interface Action {
        void run() throws Exception;
    }

    /** Runs an action with a file's mode changed, restoring the mode afterwards. */
    private static void withMode(Path p, String mode, Action action) throws Exception {
        Set<PosixFilePermission> saved = Files.getPosixFilePermissions(p);
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(mode));
        try {
            action.run();
        } finally {
            Files.setPosixFilePermissions(p, saved);
        }
    }

    private static List<String> listNames(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    /** Relative path to SHA-256 of every regular file under root. */
    private static Map<String, String> hashTree(Path root) throws IOException {
        Map<String, String> out = new TreeMap<>();
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                if (Files.isRegularFile(p)) {
                    out.put(root.relativize(p).toString(), sha256(Files.readAllBytes(p)));
                }
            }
        }
        return out;
    }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static long segmentNumber(String walName) {
        return Long.parseLong(walName.substring(8, 16), 16) * 0x100 + Long.parseLong(walName.substring(16, 24), 16);
    }

    private static String lsn(long lsn) {
        return String.format("%X/%X", lsn >>> 32, lsn & 0xFFFFFFFFL);
    }

    /** A corrupted copy of a stored zstd object and the SHA-256 of what it decompresses to. */
    private record Flip(byte[] bytes, String decodedSha256) {}

    /** Flips one byte of a zstd object at an offset where `zstd -d` still decodes it (to other content). */
    private Flip cleanlyDecodingFlip(byte[] original) throws IOException {
        Path in = work.resolve("flip.zst");
        Path out = work.resolve("flip.out");
        try {
            // Spread over the whole object (skipping the frame header): a flip in entropy-coded data
            // usually breaks decoding; one in a raw (literal) block decodes to other content.
            int step = Math.max(1, (original.length - 32) / 400);
            for (int off = 16; off < original.length - 16; off += step) {
                byte[] b = original.clone();
                b[off] ^= 0x01;
                Files.write(in, b);
                Files.deleteIfExists(out);
                PgCluster.ProcessResult r = PgCluster.run(List.of("zstd", "-d", "-q", "-f", "-o", out.toString(), in.toString()), null,
                        null, Duration.ofMinutes(1));
                if (r.ok()) {
                    byte[] decoded = Files.readAllBytes(out);
                    if (!Arrays.equals(decoded, Files.readAllBytes(sample))) {
                        return new Flip(b, sha256(decoded));
                    }
                }
            }
            throw new AssertionError("no byte flip of the stored object (" + original.length + " bytes) decodes cleanly");
        } finally {
            Files.deleteIfExists(in);
            Files.deleteIfExists(out);
        }
    }

    // ------------------------------------------------------------------ helpers: processes

    /** An strace -f log: fds mapped to paths from openat, fsyncs and link/rename commits in order. */
    private static final class StraceLog {
        record Event(int index, String tid, String kind, String path, String path2) {}

        private static final Pattern OPENAT = Pattern.compile("^(\\d+)\\s+openat\\([^,]+, \"([^\"]*)\", [^)]*?(?:\\)\\s+= (-?\\d+).*|<unfinished \\.\\.\\.>)$");
        private static final Pattern RESUMED = Pattern.compile("^(\\d+)\\s+<\\.\\.\\. openat resumed>.*\\)\\s+= (-?\\d+).*$");
        private static final Pattern FSYNC = Pattern.compile("^(\\d+)\\s+(?:fsync|fdatasync)\\((\\d+)");
        private static final Pattern COMMIT = Pattern.compile("^(\\d+)\\s+(?:link|linkat|rename|renameat|renameat2)\\(.*?\"([^\"]*)\".*?\"([^\"]*)\".*$");

        final List<Event> events = new ArrayList<>();
        final String text;

        private StraceLog(String text) {
            this.text = text;
        }

        static StraceLog parse(List<String> lines) {
            StraceLog log = new StraceLog(String.join("\n", lines));
            Map<String, String> pendingOpen = new HashMap<>();
            Map<String, String> anyThread = new HashMap<>(); // fd -> path, last opened by any thread of the process
            for (int i = 0; i < lines.size(); i++) {
                String line = lines.get(i);
                Matcher m;
                if ((m = OPENAT.matcher(line)).matches()) {
                    if (m.group(3) == null) {
                        pendingOpen.put(m.group(1), m.group(2));
                    } else if (!m.group(3).startsWith("-")) {
                        anyThread.put(m.group(3), m.group(2));
                    }
                } else if ((m = RESUMED.matcher(line)).matches()) {
                    String path = pendingOpen.remove(m.group(1));
                    if (path != null && !m.group(2).startsWith("-")) {
                        anyThread.put(m.group(2), path);
                    }
                } else if ((m = FSYNC.matcher(line)).find()) {
                    // File descriptors belong to the process: until it is closed, an fd is the file the last openat
                    // that returned it opened, in whichever thread (a backup's files are fsync'd by other threads).
                    log.events.add(new Event(i, m.group(1), "fsync", anyThread.get(m.group(2)), null));
                } else if ((m = COMMIT.matcher(line)).matches()) {
                    log.events.add(new Event(i, m.group(1), "commit", m.group(2), m.group(3)));
                }
            }
            return log;
        }
    }
}
