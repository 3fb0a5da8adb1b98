package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Block-level incremental and differential backups: a chain three increments deep, with relations
 * dropped, truncated, extended and re-created, a table rewritten in place at the same size, and a
 * cold table updated and vacuumed between backups. A point-in-time restore through the chain is
 * judged by the data, pg_verifybackup, pg_visibility's pg_check_visible() and an index-only scan.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class IncrementalIT {
    private static final String CLUSTER = "incr";
    private static final Duration ARCHIVE_TIMEOUT = Duration.ofSeconds(90);
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path tmp;

    private Path root;
    private Path repo;
    private PgCluster source;

    @BeforeAll
    void setUp() throws IOException {
        LocalRepo local = LocalRepo.in(tmp);
        root = local.root;
        repo = local.repo;
        source = local.archivingCluster(CLUSTER, "incr");
        source.pgbench("-i", "-s", "2", "-q");
        // Every backup here runs as the minimal role the README documents, not as a superuser.
        source.psql("CREATE ROLE pgproof_backup LOGIN; GRANT pg_read_all_settings, pg_monitor TO pgproof_backup; "
                + "GRANT EXECUTE ON FUNCTION pg_backup_start(text, boolean) TO pgproof_backup; "
                + "GRANT EXECUTE ON FUNCTION pg_backup_stop(boolean) TO pgproof_backup; GRANT EXECUTE ON FUNCTION pg_switch_wal() TO pgproof_backup");
        source.psql("CREATE EXTENSION pg_visibility");
        source.psql("CREATE TABLE cold (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off)");
        source.psql("INSERT INTO cold SELECT g, md5(g::text) FROM generate_series(1, 60000) g");
        source.psql("VACUUM (FREEZE) cold");
        source.psql("CREATE TABLE dropme AS SELECT g FROM generate_series(1, 20000) g");
        source.psql("CREATE TABLE truncme AS SELECT g FROM generate_series(1, 20000) g");
        source.psql("CREATE TABLE growme AS SELECT g FROM generate_series(1, 1000) g");
        source.psql("CREATE TABLE recreate AS SELECT g, 'first' AS gen FROM generate_series(1, 5000) g");
        source.psql("CREATE TABLE inplace (id int, n int) WITH (fillfactor = 50)");
        source.psql("INSERT INTO inplace SELECT g, 0 FROM generate_series(1, 5000) g");
    }

    @AfterAll
    void tearDown() {
        if (source != null) {
            source.stop();
        }
    }

    @Test
    void aPointInTimeRestoreThroughThreeIncrementsIsRightBlockForBlock() throws IOException {
        // No prior backup: an incremental becomes a full, and says so.
        PgCluster.ProcessResult first = backup("incr");
        String full = first.stdout().strip();
        assertThat(full).endsWith("F");
        assertThat(first.stderr()).contains("an incremental backup requested, but there is no complete backup of this cluster to base it on: "
                + "taking a full backup");

        // 1: dropped, truncated, extended, re-created relations; an in-place rewrite at the same size; the cold table
        // updated and vacuumed (visibility map bits cleared and set again).
        String inplaceFile = source.psql("SELECT pg_relation_filepath('inplace')");
        long inplaceSize = Files.size(source.dataDir().resolve(inplaceFile));
        source.psql("DROP TABLE dropme");
        source.psql("TRUNCATE truncme");
        source.psql("INSERT INTO growme SELECT g FROM generate_series(1001, 50000) g");
        source.psql("DROP TABLE recreate");
        source.psql("CREATE TABLE recreate AS SELECT g, 'second' AS gen FROM generate_series(1, 7000) g");
        source.psql("UPDATE inplace SET n = n + 1");
        source.psql("UPDATE cold SET v = 'changed' WHERE id % 500 = 0");
        source.psql("VACUUM cold");
        source.pgbench("-c", "2", "-t", "100", "-n");
        assertThat(Files.size(source.dataDir().resolve(inplaceFile))).as("the in-place table keeps its size").isEqualTo(inplaceSize);
        String i1 = backup("incr").stdout().strip();

        // 2 and 3: more load, more cold-table churn.
        source.pgbench("-c", "2", "-t", "100", "-n");
        source.psql("UPDATE cold SET v = 'again' WHERE id % 700 = 0");
        source.psql("VACUUM cold");
        String i2 = backup("incr").stdout().strip();
        source.pgbench("-c", "2", "-t", "100", "-n");
        source.psql("UPDATE inplace SET n = n + 1 WHERE id % 3 = 0");
        String i3 = backup("incr").stdout().strip();

        // The point in time: after i3, before later changes.
        source.psql("INSERT INTO growme SELECT g FROM generate_series(50001, 50100) g");
        source.psql("SELECT pg_sleep(1)");
        String target = source.psql("SELECT now()");
        source.psql("SELECT pg_sleep(1)");
        Map<String, String> atTarget = source.tableDigests();
        String coldAtTarget = source.psql("SELECT count(*) || ':' || sum(id) FROM cold WHERE id > 0");
        source.psql("DELETE FROM growme WHERE g > 40000");
        source.psql("DROP TABLE inplace");
        source.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT);

        JsonNode info = info();
        JsonNode backups = info.path("backups");
        assertThat(backups).hasSize(4);
        assertThat(backups.get(1).path("label").asText()).isEqualTo(i1).endsWith("I");
        assertThat(backups.get(1).path("type").asText()).isEqualTo("incr");
        long fullStored = backups.get(0).path("storedSize").asLong();
        for (int i = 1; i <= 3; i++) {
            assertThat(backups.get(i).path("storedSize").asLong()).as("stored size of increment " + i + " against the full " + fullStored)
                    .isLessThan(fullStored / 3);
        }
        assertThat(i2).endsWith("I");
        assertThat(i3).endsWith("I");

        // A differential is based on the full backup, not on the newest increment.
        PgCluster.ProcessResult diff = backup("diff");
        assertThat(diff.stdout().strip()).endsWith("D");
        assertThat(diff.stderr()).contains("differential backup based on " + full + " (full,");

        Path restores = LocalRepo.in(tmp).ownedDir("restores");
        Path dest = restores.resolve("pitr");
        PgCluster.ProcessResult r = Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", dest.toString(),
                "--target-time", target, "--target-action", "promote", "--archive-mode", "off").assertOk("restore through the chain");
        assertThat(r.stderr()).contains("restoring backup " + i3 + " of cluster \"" + CLUSTER + "\"");
        PgCluster.runAsOwner(List.of(PgCluster.bin("pg_verifybackup"), "-n", dest.toString()), null, null)
                .assertOk("pg_verifybackup of the restored increment");
        PgCluster copy = PgCluster.adopt(dest, restores.resolve("pitr-sock"), PgCluster.freePort());
        try {
            copy.start();
            copy.awaitPromotion(Duration.ofMinutes(2));
            assertThat(copy.tableDigests()).isEqualTo(atTarget);
            assertThat(copy.psql("SELECT count(*) FROM pg_check_visible('cold')")).as("pg_check_visible('cold')").isEqualTo("0");
            assertThat(copy.psql("SELECT count(*) FROM pg_check_frozen('cold')")).as("pg_check_frozen('cold')").isEqualTo("0");
            String plan = copy.psql("SET enable_seqscan = off; SET enable_bitmapscan = off; "
                    + "EXPLAIN SELECT count(*), sum(id) FROM cold WHERE id > 0");
            assertThat(plan).contains("Index Only Scan");
            String viaIndex = copy.psql("SET enable_seqscan = off; SET enable_bitmapscan = off; "
                    + "SELECT count(*) || ':' || sum(id) FROM cold WHERE id > 0");
            assertThat(viaIndex.substring(viaIndex.lastIndexOf('\n') + 1)).as("index-only scan of cold").isEqualTo(coldAtTarget);
            assertThat(copy.psql("SELECT to_regclass('dropme') IS NULL")).isEqualTo("t");
            assertThat(copy.psql("SELECT count(*) FROM truncme")).isEqualTo("0");
            assertThat(copy.psql("SELECT min(gen) || max(gen) || count(*) FROM recreate")).isEqualTo("secondsecond7000");
        } finally {
            copy.stop();
        }
        PgCluster.runAsOwner(List.of(PgCluster.bin("pg_checksums"), "--check", "-D", dest.toString()), Map.of("LC_ALL", "C"), null)
                .assertOk("pg_checksums of the recovered copy");

        // verify follows every reference of the increments; prove restores and runs the newest (the differential).
        PgCluster.ProcessResult v = Pgproof.run("verify", "--repo", repo.toString(), "--cluster", CLUSTER).assertOk("verify of the chain");
        assertThat(v.stdout()).contains("5 backup(s)").contains("no problems");
        Path proveDir = Files.createDirectories(root.resolve("prove"));
        PgCluster.chownToOwner(proveDir, false);
        PgCluster.ProcessResult p = Pgproof.run("prove", "--cluster", CLUSTER, "--repo", repo.toString(), "--prove-dir", proveDir.toString())
                .assertOk("prove of the differential");
        assertThat(p.stdout()).contains("of backup " + diff.stdout().strip()).contains("PASSED");

        // Truncate an object of the full backup that the third increment stores changed blocks against (as their XOR with
        // the full's version): verify names it for both. The restores above rebuilt such blocks from it.
        JsonNode m3 = Pgproof.readManifest(repo.resolve(CLUSTER).resolve("backup").resolve(i3));
        String shared = null;
        int xorPieces = 0;
        for (JsonNode f : m3.path("files")) {
            for (JsonNode c : f.path("chunks")) {
                if (c.has("xorKey") && c.path("key").asText().startsWith(CLUSTER + "/backup/" + i3 + "/")) {
                    xorPieces++;
                    if (shared == null && c.path("xorKey").asText().startsWith(CLUSTER + "/backup/" + full + "/")) {
                        shared = c.path("xorKey").asText();
                    }
                }
            }
        }
        assertThat(m3.path("format").asInt()).isEqualTo(3);
        // A large file's block hashes are in their own object, not in the manifest; verify names it when it is gone.
        String hashKey = null;
        for (JsonNode f : m3.path("files")) {
            if (hashKey == null && f.has("blockHashObject")) {
                hashKey = f.path("blockHashObject").path("key").asText();
                assertThat(f.has("blockHashes")).isFalse();
            }
        }
        assertThat(hashKey).as("a file of increment " + i3 + " with its block hashes in their own object").isNotNull();
        assertThat(xorPieces).as("XOR-stored pieces of increment " + i3).isPositive();
        // pgbench's updates are scattered over pgbench_accounts: its first 8 MiB window is one piece of increment i3, XOR-stored
        // whole against the full backup's chunk (the restores above rebuilt it).
        String accounts = source.psql("SELECT pg_relation_filepath('pgbench_accounts')");
        JsonNode window = null;
        for (JsonNode f : m3.path("files")) {
            if (f.path("path").asText().equals(accounts)) {
                window = f.path("chunks").get(0);
            }
        }
        assertThat(window).as("pgbench_accounts in the manifest of " + i3).isNotNull();
        assertThat(window.path("size").asLong()).isEqualTo(8L << 20);
        assertThat(window.path("key").asText()).startsWith(CLUSTER + "/backup/" + i3 + "/");
        assertThat(window.path("xorKey").asText()).startsWith(CLUSTER + "/backup/" + full + "/");
        assertThat(shared).as("an object of the full backup that increment " + i3 + " XOR-stores changed blocks against").isNotNull();
        Path damaged = root.resolve("repo-damaged");
        PgCluster.run(List.of("cp", "-a", repo.toString(), damaged.toString()), null, null, Duration.ofMinutes(2)).assertOk("cp -a");
        Path object = damaged.resolve(shared);
        byte[] b = Files.readAllBytes(object);
        Files.write(object, java.util.Arrays.copyOf(b, b.length / 2)); // truncated: no reader can decompress it
        Files.delete(damaged.resolve(hashKey));
        PgCluster.ProcessResult bad = Pgproof.run("verify", "--repo", damaged.toString(), "--cluster", CLUSTER);
        assertThat(bad.exitCode()).as(bad.stdout() + bad.stderr()).isEqualTo(10);
        assertThat(bad.stdout()).contains("[backup-missing-object] " + hashKey + ": file ").contains("its block hashes are missing");
        assertThat(bad.stdout()).contains("[backup-corrupt] " + shared + ": file ").contains(" of backup " + full + ": ")
                .contains(" of backup " + i3 + ": ");

        // retention-diff 1: a second differential makes the first one go, with the incremental built on it; the increments
        // built on the full backup stay with it (retention-full 1); what is left restores to the source's data.
        String d1 = diff.stdout().strip();
        source.psql("INSERT INTO growme SELECT g FROM generate_series(60001, 60100) g");
        PgCluster.ProcessResult i4 = backup("incr");
        assertThat(i4.stderr()).contains("based on " + d1);
        source.psql("INSERT INTO growme SELECT g FROM generate_series(60101, 60200) g");
        String d2 = backup("diff").stdout().strip();
        source.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT);
        Map<String, String> atEnd = source.tableDigests();
        PgCluster.ProcessResult e = Pgproof.run("expire", "--cluster", CLUSTER, "--repo", repo.toString(), "--retention-full", "1",
                "--retention-diff", "1").assertOk("expire --retention-full 1 --retention-diff 1");
        assertThat(e.stderr()).contains("removing backup " + d1).contains("removing backup " + i4.stdout().strip());
        assertThat(Pgproof.labels(info().path("backups"))).containsExactly(full, i1, i2, i3, d2);
        Pgproof.run("verify", "--repo", repo.toString(), "--cluster", CLUSTER).assertOk("verify after expiring a differential");
        Path last = restores.resolve("after-expire");
        Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", last.toString(),
                "--archive-mode", "off").assertOk("restore of the newest differential after expire");
        PgCluster after = PgCluster.adopt(last, restores.resolve("after-sock"), PgCluster.freePort());
        try {
            after.start();
            after.awaitPromotion(Duration.ofMinutes(2));
            assertThat(after.tableDigests()).isEqualTo(atEnd);
        } finally {
            after.stop();
        }
    }

    private PgCluster.ProcessResult backup(String type) {
        return Pgproof.run("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", source.dataDir().toString(),
                "--start-fast", "--type", type, "--user", "pgproof_backup").assertOk("backup --type " + type + " as pgproof_backup");
    }

    private JsonNode info() throws IOException {
        PgCluster.ProcessResult r = Pgproof.run("info", "--repo", repo.toString(), "--cluster", CLUSTER, "--output", "json").assertOk("info");
        return JSON.readTree(r.stdout()).path("clusters").get(0);
    }
}
