package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * restore --delta over a restored copy that ran, was changed (rows updated, a table created, one
 * dropped), had bytes of a relation file overwritten at the same size and modification time, and
 * got stray files (in its tablespace too): the delta restore rewrites only what differs, removes
 * the strays, and the copy recovers to the same data as the source at the target. Then an
 * incremental backup restored over it, cut short once and finished by a second --delta. And what
 * --delta refuses: a running server, another cluster's directory, files of unknown origin, WAL
 * never archived.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DeltaRestoreIT {
    private static final String CLUSTER = "delta";
    private static final Duration ARCHIVE_TIMEOUT = Duration.ofSeconds(90);
    private static final Pattern SUMMARY = Pattern.compile("delta restore of backup \\S+: (\\d+) files checked \\([^)]*\\), (\\d+) unchanged, "
            + "(\\d+) rewritten, (\\d+) created, .* written, .* fetched from the repository, (\\d+) files and (\\d+) directories removed");

    @TempDir
    static Path tmp;

    private Path root;
    private Path repo;
    private Path restores;
    private PgCluster source;
    private String full;
    private String tsOid;

    @BeforeAll
    void setUp() throws IOException {
        LocalRepo local = LocalRepo.in(tmp);
        root = local.root;
        repo = local.repo;
        restores = local.ownedDir("restores");
        source = local.archivingCluster(CLUSTER, "delta");
        source.pgbench("-i", "-s", "1", "-q");
        source.psql("CREATE TABLE cold (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off)");
        source.psql("INSERT INTO cold SELECT g, md5(g::text) FROM generate_series(1, 20000) g");
        source.psql("VACUUM (FREEZE) cold");
        source.psql("CREATE TABLE dropme AS SELECT g FROM generate_series(1, 5000) g");
        // A tablespace, mapped into restores/x-ts by every restore here: the delta restores over it in place.
        Path tsDir = Files.createDirectories(root.resolve("tablespaces").resolve("orig"));
        PgCluster.chownToOwner(root.resolve("tablespaces"), true);
        Files.setPosixFilePermissions(tsDir, java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
        source.psql("CREATE TABLESPACE tsp LOCATION " + PgCluster.quote(tsDir.toString()));
        source.psql("CREATE TABLE spaced (id int PRIMARY KEY, note text) TABLESPACE tsp");
        source.psql("INSERT INTO spaced SELECT g, 'row ' || g FROM generate_series(1, 5000) g");
        tsOid = source.psql("SELECT oid FROM pg_tablespace WHERE spcname = 'tsp'");
        source.psql("CHECKPOINT");
        full = backup("full");
    }

    @AfterAll
    void tearDown() {
        if (source != null) {
            source.stop();
        }
    }

    @Test
    void aDeltaRestoreRewritesOnlyWhatDiffersAndRecoversToTheSourcesData() throws IOException {
        source.pgbench("-c", "2", "-t", "100", "-n");
        source.psql("INSERT INTO dropme SELECT g FROM generate_series(5001, 6000) g");
        source.psql("SELECT pg_sleep(1)");
        String target = source.psql("SELECT now()");
        source.psql("SELECT pg_sleep(1)");
        Map<String, String> atTarget = source.tableDigests();
        source.psql("DELETE FROM dropme WHERE g > 100");
        source.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT);

        // --delta into a missing directory is a normal restore.
        Path x = restores.resolve("x");
        PgCluster.ProcessResult first = restore(x, "--target-time", target).assertOk("first restore --delta into a new directory");
        assertThat(first.stderr()).contains("--delta: \"" + x + "\" is missing: a normal restore")
                .contains("restore of backup " + full + ": ");
        PgCluster copy = PgCluster.adopt(x, restores.resolve("x-sock"), PgCluster.freePort());
        copy.start();
        String coldFile;
        try {
            copy.awaitPromotion(Duration.ofMinutes(2));
            assertThat(copy.tableDigests()).isEqualTo(atTarget);
            coldFile = copy.psql("SELECT pg_relation_filepath('cold')");
            // The copy lives on: rows change, a table is created, one dropped.
            copy.psql("UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid % 50 = 0");
            copy.psql("CREATE TABLE newt AS SELECT g FROM generate_series(1, 30000) g");
            copy.psql("DROP TABLE dropme");
            copy.psql("UPDATE spaced SET note = 'changed' WHERE id % 10 = 0");
            copy.psql("CHECKPOINT");
        } finally {
            copy.stop();
        }

        // Bytes in the middle of a relation file the copy never changed, at the same size and time, so
        // that only reading them tells; stray files and directories; a stale postmaster.pid.
        Path tampered = x.resolve(coldFile);
        long size = Files.size(tampered);
        FileTime mtime = Files.getLastModifiedTime(tampered);
        long expected = manifestCrc32c(full, coldFile);
        assertThat(crc32c(tampered)).as("the cold table's file in the copy is still the backup's").isEqualTo(expected);
        assertPiecesXxh64(full, coldFile, tampered);
        try (RandomAccessFile f = new RandomAccessFile(tampered.toFile(), "rw")) {
            f.seek(size / 2 + 100);
            f.write(new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
        }
        Files.setLastModifiedTime(tampered, mtime);
        assertThat(Files.size(tampered)).isEqualTo(size);
        assertThat(crc32c(tampered)).isNotEqualTo(expected);
        Path stray = x.resolve(coldFile).resolveSibling("stray.txt");
        Files.writeString(stray, "not PostgreSQL's");
        Path strayDir = Files.createDirectories(x.resolve("leftover/deeper"));
        Files.writeString(strayDir.resolve("notes"), "old");
        Path tsStray;
        try (var v = Files.list(restores.resolve("x-ts"))) {
            tsStray = v.filter(d -> d.getFileName().toString().startsWith("PG_15_")).findFirst().orElseThrow().resolve("stray.txt");
        }
        Files.writeString(tsStray, "not PostgreSQL's either");
        PgCluster.chownToOwner(x.resolve("leftover"), true);
        Files.writeString(x.resolve("postmaster.pid"), deadPid() + "\n" + x + "\n1700000000\n5999\n/tmp\n127.0.0.1\n  5999001         0\nstopped\n");

        // WAL never archived in pg_wal: refused, and nothing is touched.
        Path ready = x.resolve("pg_wal/archive_status/000000020000000000000009.ready");
        Files.writeString(ready, "");
        PgCluster.ProcessResult refused = restore(x, "--target-time", target);
        assertThat(refused.exitCode()).as(refused.stderr()).isEqualTo(9);
        assertThat(refused.stderr()).contains("ERROR: restore target \"" + x + "\": 1 WAL file(s) in pg_wal were never archived "
                + "(first 000000020000000000000009), and a delta restore would remove them");
        assertThat(x.resolve("global/pg_control")).exists();
        assertThat(stray).exists();
        Files.delete(ready);

        PgCluster.ProcessResult r = restore(x, "--target-time", target).assertOk("restore --delta over the changed copy");
        assertThat(r.stderr()).contains("restoring over it");
        System.out.println(r.stderr());
        Matcher m = SUMMARY.matcher(r.stderr());
        assertThat(m.find()).as(r.stderr()).isTrue();
        long checked = Long.parseLong(m.group(1));
        long unchanged = Long.parseLong(m.group(2));
        long rewritten = Long.parseLong(m.group(3));
        long created = Long.parseLong(m.group(4));
        long removed = Long.parseLong(m.group(5));
        long removedDirs = Long.parseLong(m.group(6));
        assertThat(checked).isEqualTo(unchanged + rewritten + created).isGreaterThan(500);
        assertThat(rewritten).as("files rewritten: the tampered one, the updated table and its index, catalogs").isBetween(2L, checked / 4);
        assertThat(created).as("files created: global/pg_control, backup_label (the dropped table's file too, unless its truncated tombstone remained)").isGreaterThanOrEqualTo(2);
        assertThat(removed).as("files removed: the new table's, the strays, postmaster.pid, WAL").isGreaterThanOrEqualTo(5);
        assertThat(removedDirs).as("leftover and leftover/deeper").isGreaterThanOrEqualTo(2);
        assertThat(crc32c(tampered)).as("the tampered file is the backup's again").isEqualTo(expected);
        assertThat(stray).doesNotExist();
        assertThat(tsStray).doesNotExist();
        assertThat(x.resolve("pg_tblspc/" + tsOid).toRealPath()).isEqualTo(restores.resolve("x-ts").toRealPath());
        assertThat(x.resolve("leftover")).doesNotExist();
        assertThat(x.resolve("postmaster.pid")).doesNotExist();
        assertThat(x.resolve("pgproof_delta_restore.in_progress")).doesNotExist();
        assertThat(x.resolve("recovery.signal")).exists();
        try (var wal = Files.list(x.resolve("pg_wal"))) {
            assertThat(wal.map(p -> p.getFileName().toString()).toList()).containsExactly("archive_status");
        }
        PgCluster.runAsOwner(List.of(PgCluster.bin("pg_verifybackup"), "-n", x.toString()), null, null)
                .assertOk("pg_verifybackup of the delta-restored directory");

        copy.start();
        try {
            copy.awaitPromotion(Duration.ofMinutes(2));
            assertThat(copy.tableDigests()).isEqualTo(atTarget);
            assertThat(copy.psql("SELECT to_regclass('newt') IS NULL")).isEqualTo("t");
        } finally {
            copy.stop();
        }

        // An incremental backup, restored over the same directory to its end.
        source.pgbench("-c", "2", "-t", "100", "-n");
        source.psql("UPDATE cold SET v = 'changed' WHERE id % 300 = 0");
        String incr = backup("incr");
        assertThat(incr).endsWith("I");
        Map<String, String> atIncr = source.tableDigests();
        // Cut short after the files, before global/pg_control: the directory cannot start, and the next --delta finishes it.
        List<String> args = restoreArgs(x, "--set", incr, "--target", "immediate");
        try (Running p = Running.asOwner(restores, Map.of("PGPROOF_TEST_HOOK", "restore-delta-before-control", "PGPROOF_TEST_HOOK_RELEASE",
                restores.resolve("never-released").toString()), args.toArray(new String[0]))) {
            p.awaitLine("HOOK restore-delta-before-control ", Duration.ofSeconds(90));
            p.killTree();
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
        assertThat(x.resolve("global/pg_control")).doesNotExist();
        assertThat(x.resolve("pgproof_delta_restore.in_progress")).content().contains("system_identifier = "
                + source.controlData().get("Database system identifier")).contains("backup = " + incr);
        assertThatThrownBy(copy::start).as("a directory left by a delta restore cut short cannot start").isInstanceOf(AssertionError.class);
        PgCluster.ProcessResult ri = restore(x, "--set", incr, "--target", "immediate").assertOk("restore --delta of the incremental");
        assertThat(ri.stderr()).contains("restoring over it");
        System.out.println(ri.stderr());
        Matcher mi = SUMMARY.matcher(ri.stderr());
        assertThat(mi.find()).as(ri.stderr()).isTrue();
        // The run cut short did the files: what is left is pg_control, backup_label and the recovery settings.
        assertThat(Long.parseLong(mi.group(2))).as("files unchanged after the run cut short").isGreaterThanOrEqualTo(Long.parseLong(mi.group(1)) - 3);
        assertThat(crc32c(x.resolve(coldFile))).isEqualTo(manifestCrc32c(incr, coldFile));
        PgCluster.runAsOwner(List.of(PgCluster.bin("pg_verifybackup"), "-n", x.toString()), null, null)
                .assertOk("pg_verifybackup after the delta restore of the incremental");
        copy.start();
        try {
            copy.awaitPromotion(Duration.ofMinutes(2));
            assertThat(copy.tableDigests()).isEqualTo(atIncr);
        } finally {
            copy.stop();
        }
        PgCluster.runAsOwner(List.of(PgCluster.bin("pg_checksums"), "--check", "-D", x.toString()), Map.of("LC_ALL", "C"), null)
                .assertOk("pg_checksums of the recovered copy");
    }

    @Test
    void deltaRefusesARunningServerAndAnotherClustersDirectory() throws IOException {
        Path live = source.dataDir();
        PgCluster.ProcessResult running = restore(live, "--target", "immediate");
        assertThat(running.exitCode()).as(running.stderr()).isEqualTo(9);
        assertThat(running.stderr()).contains("ERROR: restore target \"" + live + "\" is the data directory of a running server (pid ")
                .contains(", port " + source.port() + ")")
                .contains("HINT: stop it first (pg_ctl stop -D " + live + "), then run restore --delta again");
        assertThat(source.psql("SELECT 1")).isEqualTo("1");

        PgCluster other = PgCluster.create(root.resolve("others"), "other", PgCluster.freePort()); // initdb'd, never started
        Path dir = other.dataDir();
        String theirs = other.controlData().get("Database system identifier");
        String ours = source.controlData().get("Database system identifier");
        long before = Files.size(dir.resolve("global/pg_control"));
        PgCluster.ProcessResult foreign = restore(dir, "--target", "immediate");
        assertThat(foreign.exitCode()).as(foreign.stderr()).isEqualTo(5);
        assertThat(foreign.stderr()).contains("ERROR: restore target \"" + dir + "\" holds another cluster's data: its global/pg_control says "
                + "system identifier " + theirs + ", backup " + full + " of cluster \"" + CLUSTER + "\" is of system identifier " + ours)
                .contains("HINT: --delta only restores over a copy of the same cluster; check --pgdata and --cluster");
        assertThat(Files.size(dir.resolve("global/pg_control"))).isEqualTo(before);
        assertThat(dir.resolve("pgproof_delta_restore.in_progress")).doesNotExist();

        // A directory with files but no pg_control: whose it is cannot be told.
        Path anonymous = Files.createDirectories(restores.resolve("anonymous"));
        Files.writeString(anonymous.resolve("PG_VERSION"), "15\n");
        PgCluster.chownToOwner(anonymous, true);
        PgCluster.ProcessResult unknown = restore(anonymous, "--target", "immediate");
        assertThat(unknown.exitCode()).as(unknown.stderr()).isEqualTo(9);
        assertThat(unknown.stderr()).contains("ERROR: restore target \"" + anonymous + "\" is not empty and has no global/pg_control");
        assertThat(anonymous.resolve("PG_VERSION")).exists();

        // Without --delta, a directory that is not empty is refused as ever.
        PgCluster.ProcessResult plain = Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", dir.toString());
        assertThat(plain.exitCode()).as(plain.stderr()).isEqualTo(9);
        assertThat(plain.stderr()).contains("ERROR: restore target \"" + dir + "\" is not empty");
    }

    /**
     * A file system that refuses direct I/O (as some network and FUSE file systems do) gets every file written through
     * the page cache instead, large files still in parts on every job: the restored directory matches the backup's
     * manifest (pg_verifybackup).
     */
    @Test
    void aRestoreWhereDirectIoIsRefusedWritesThroughThePageCache() {
        Path dest = restores.resolve("buffered");
        PgCluster.ProcessResult r = Pgproof.run(Map.of("PGPROOF_TEST_HOOK", "restore-direct-refused", "PGPROOF_DEBUG", "1"), "restore",
                "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", dest.toString(), "--set", full, "--archive-mode", "off",
                "--tablespace-map", tsOid + "=" + dest + "-ts").assertOk("restore with direct I/O refused");
        assertThat(r.stderr()).containsPattern("restore: direct I/O refused for \\S+ \\(Invalid argument: refused by PGPROOF_TEST_HOOK\\): writing through the page cache")
                .contains("restore of backup " + full + ": ");
        PgCluster.runAsOwner(List.of(PgCluster.bin("pg_verifybackup"), "-n", dest.toString()), null, null)
                .assertOk("pg_verifybackup of a restore written through the page cache");
    }

    private PgCluster.ProcessResult restore(Path dest, String... extra) {
        return Pgproof.run(restoreArgs(dest, extra).toArray(new String[0]));
    }

    private List<String> restoreArgs(Path dest, String... extra) {
        List<String> args = new java.util.ArrayList<>(List.of("restore", "--delta", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                dest.toString(), "--target-action", "promote", "--archive-mode", "off", "--tablespace-map", tsOid + "=" + dest + "-ts"));
        args.addAll(List.of(extra));
        return args;
    }

    private String backup(String type) {
        return Pgproof.run("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", source.dataDir().toString(), "--start-fast",
                "--type", type).assertOk("backup --type " + type).stdout().strip();
    }

    /** The CRC-32C the backup's manifest gives the file (its whole checksum). */
    private long manifestCrc32c(String label, String path) throws IOException {
        JsonNode m = Pgproof.readManifest(repo.resolve(CLUSTER).resolve("backup").resolve(label));
        for (JsonNode f : m.path("files")) {
            if (f.path("path").asText().equals(path)) {
                assertThat(f.has("crc32c")).as(path + " in the manifest of " + label + " has its CRC-32C").isTrue();
                return f.path("crc32c").asLong();
            }
        }
        throw new AssertionError(path + " is not in the manifest of " + label);
    }

    /** Each piece of the file in the backup's manifest records the XXH64 of its bytes (what a delta restore compares). */
    private void assertPiecesXxh64(String label, String path, Path file) throws IOException {
        byte[] content = Files.readAllBytes(file);
        JsonNode m = Pgproof.readManifest(repo.resolve(CLUSTER).resolve("backup").resolve(label));
        for (JsonNode f : m.path("files")) {
            if (f.path("path").asText().equals(path)) {
                assertThat(f.path("chunks")).isNotEmpty();
                for (JsonNode c : f.path("chunks")) {
                    int off = (int) c.path("offset").asLong();
                    int len = (int) c.path("size").asLong();
                    assertThat(c.has("xxh64")).as(path + " piece at " + off + " has its XXH64").isTrue();
                    assertThat(c.path("xxh64").asLong()).isEqualTo(dev.pgproof.io.Hashes.xxh64(content, off, len));
                }
                return;
            }
        }
        throw new AssertionError(path + " is not in the manifest of " + label);
    }

    private static long crc32c(Path p) throws IOException {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(Files.readAllBytes(p));
        return crc.getValue();
    }

    /** The pid of a process that has exited. */
    private static long deadPid() {
        try {
            Process p = new ProcessBuilder("true").start();
            p.waitFor();
            return p.pid();
        } catch (IOException | InterruptedException e) {
            throw new AssertionError(e);
        }
    }
}
