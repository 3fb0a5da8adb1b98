package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

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
 * A backup copied from a streaming standby, the primary used only to switch WAL: refused without
 * --from-standby, taken with it, then restored (pg_verifybackup passes) and recovered to the end of
 * the archive, judged table by table against the primary.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class StandbyBackupIT {
    private static final String CLUSTER = "stby";

    @TempDir
    static Path tmp;

    private Path root;
    private Path repo;
    private PgCluster primary;
    private PgCluster standby;

    @BeforeAll
    void setUp() throws IOException {
        LocalRepo local = LocalRepo.in(tmp);
        root = local.root;
        repo = local.repo;
        primary = local.archivingCluster(CLUSTER, "primary");
        primary.pgbench("-i", "-s", "1", "-q");

        Path standbyData = root.resolve("clusters").resolve("standby").resolve("data");
        Files.createDirectories(standbyData.getParent());
        PgCluster.chownToOwner(standbyData.getParent(), false);
        PgCluster.runAsOwner(List.of(PgCluster.bin("pg_basebackup"), "-h", primary.socketDir().toString(), "-p",
                String.valueOf(primary.port()), "-D", standbyData.toString(), "-R", "-X", "stream", "--checkpoint=fast"), null, null)
                .assertOk("pg_basebackup for the standby");
        standby = PgCluster.adopt(standbyData, root.resolve("clusters").resolve("standby").resolve("sock"), PgCluster.freePort());
        standby.start();
    }

    @AfterAll
    void tearDown() {
        if (standby != null) {
            standby.stop();
        }
        if (primary != null) {
            primary.stop();
        }
    }

    @Test
    void aBackupFromTheStandbyRestoresToThePrimarysData() throws IOException {
        primary.pgbench("-c", "2", "-t", "200", "-n");
        awaitReplay();

        PgCluster.ProcessResult refused = Pgproof.run("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                standby.dataDir().toString());
        assertThat(refused.exitCode()).as(refused.stderr()).isEqualTo(2);
        assertThat(refused.stderr()).contains("(data directory \"" + standby.dataDir() + "\") is a standby")
                .contains("HINT: to back up the standby, add --from-standby");

        PgCluster.ProcessResult r = Pgproof.run("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                standby.dataDir().toString(), "--from-standby", "--primary-pgdata", primary.dataDir().toString(), "--start-fast")
                .assertOk("backup from the standby");
        String label = r.stdout().strip();
        assertThat(r.stderr()).contains("backing up standby \"" + standby.dataDir() + "\"")
                .contains("is used only to switch WAL").contains("switched WAL on the primary");

        primary.psql("CREATE TABLE after_standby_backup AS SELECT g FROM generate_series(1, 100) g");
        primary.switchWalAndAwaitArchived(Duration.ofSeconds(90));
        Map<String, String> atEnd = primary.tableDigests();

        Path restores = LocalRepo.in(tmp).ownedDir("restores");
        Path dest = restores.resolve("from-standby");
        Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", dest.toString(), "--set", label,
                "--archive-mode", "off").assertOk("restore");
        assertThat(dest.resolve("standby.signal")).doesNotExist();
        PgCluster.runAsOwner(List.of(PgCluster.bin("pg_verifybackup"), "-n", dest.toString()), null, null).assertOk("pg_verifybackup");
        PgCluster copy = PgCluster.adopt(dest, restores.resolve("sock"), PgCluster.freePort());
        try {
            copy.start();
            copy.awaitPromotion(Duration.ofMinutes(2));
            assertThat(copy.tableDigests()).isEqualTo(atEnd);
        } finally {
            copy.stop();
        }
    }

    private void awaitReplay() {
        String lsn = primary.psql("SELECT pg_current_wal_lsn()");
        long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
        while (!"t".equals(standby.psql("SELECT pg_last_wal_replay_lsn() >= '" + lsn + "'::pg_lsn"))) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("standby did not replay up to " + lsn + "\n" + standby.logTail(40));
            }
            PgCluster.pause(100);
        }
    }
}
