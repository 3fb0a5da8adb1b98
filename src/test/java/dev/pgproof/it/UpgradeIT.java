package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * After pg_upgrade the cluster has a new system identifier: archiving into the old pin is refused,
 * `init --upgrade` pins the new identity under the same name (refused for a cluster that is not the
 * upgrade), and both the backup from before the upgrade and the one after it restore to their data.
 */
class UpgradeIT {
    private static final String CLUSTER = "up";

    @TempDir
    static Path tmp;

    @Test
    void initUpgradeRepinsTheNameAndOldBackupsStayRestorable() throws IOException {
        LocalRepo local = LocalRepo.in(tmp);
        Path root = local.root;
        Path repo = local.repo;
        Path work = local.ownedDir("work");
        String archiveCommand = PgCluster.quote(Pgproof.archiveCommand(CLUSTER, repo));
        PgCluster old = local.archivingCluster(CLUSTER, "old");
        old.psql("CREATE TABLE before_upgrade AS SELECT g, md5(g::text) AS h FROM generate_series(1, 5000) g");
        String oldLabel = backup(repo, old).stdout().strip();
        old.psql("INSERT INTO before_upgrade SELECT g, 'late' FROM generate_series(5001, 5100) g");
        old.switchWalAndAwaitArchived(Duration.ofSeconds(90));
        Map<String, String> oldAtEnd = old.tableDigests();
        String oldSysid = old.controlData().get("Database system identifier");
        old.stop();

        // A cluster that is not the upgrade (fresh WAL, behind the archive) is refused.
        PgCluster stranger = PgCluster.create(root.resolve("clusters"), "stranger", PgCluster.freePort());
        stranger.start();
        PgCluster.ProcessResult refused = Pgproof.run("init", "--upgrade", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                stranger.dataDir().toString());
        assertThat(refused.exitCode()).as(refused.stderr()).isEqualTo(5);
        assertThat(refused.stderr()).contains("it is not the pinned cluster upgraded by pg_upgrade");
        stranger.stop();

        // pg_upgrade into a new cluster (same major version here: only PostgreSQL 15 is installed; the identity changes all the same).
        PgCluster upgraded = PgCluster.create(root.resolve("clusters"), "new", PgCluster.freePort());
        PgCluster.runAsOwner(List.of(PgCluster.bin("pg_upgrade"), "-b", PgCluster.PG_BIN.toString(), "-B", PgCluster.PG_BIN.toString(), "-d",
                old.dataDir().toString(), "-D", upgraded.dataDir().toString(), "-p", String.valueOf(PgCluster.freePort()), "-P",
                String.valueOf(PgCluster.freePort()), "-s", work.toString()), null, work, Duration.ofMinutes(5)).assertOk("pg_upgrade");
        upgraded.configure("archive_mode", "on");
        upgraded.configure("archive_command", archiveCommand);
        upgraded.start();
        String newSysid = upgraded.controlData().get("Database system identifier");
        assertThat(newSysid).isNotEqualTo(oldSysid);

        // Archiving into the old pin is refused, loudly.
        String segment = upgraded.psql("SELECT pg_walfile_name(pg_current_wal_lsn())");
        upgraded.psql("SELECT pg_switch_wal()");
        PgCluster.ProcessResult push = Pgproof.runAsOwner(upgraded.dataDir(), Map.of(), "archive-push", "--cluster", CLUSTER, "--repo",
                repo.toString(), "pg_wal/" + segment);
        assertThat(push.exitCode()).as(push.stderr()).isEqualTo(5);
        assertThat(push.stderr()).contains("belongs to system identifier " + newSysid + ", but cluster \"up\"");

        PgCluster.ProcessResult up = Pgproof.run("init", "--upgrade", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                upgraded.dataDir().toString()).assertOk("init --upgrade");
        assertThat(up.stderr()).contains("cluster \"up\": upgraded from system identifier " + oldSysid)
                .contains("backups of the old identity stay restorable with PostgreSQL 15");
        assertThat(repo.resolve(CLUSTER).resolve("identity").resolve(oldSysid + ".info")).exists();
        upgraded.psql("CREATE TABLE after_upgrade AS SELECT g FROM generate_series(1, 300) g");
        upgraded.switchWalAndAwaitArchived(Duration.ofSeconds(120));
        String newLabel = backup(repo, upgraded).stdout().strip();
        upgraded.psql("INSERT INTO after_upgrade SELECT g FROM generate_series(301, 400) g");
        upgraded.switchWalAndAwaitArchived(Duration.ofSeconds(90));
        Map<String, String> newAtEnd = upgraded.tableDigests();
        upgraded.stop();

        Path restores = local.ownedDir("restores");
        // The backup from before the upgrade: its own WAL, up to where the old identity's archive ends.
        PgCluster.ProcessResult r = Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                restores.resolve("old").toString(), "--set", oldLabel, "--archive-mode", "off").assertOk("restore of the old backup");
        assertThat(r.stderr()).contains("was taken before the cluster's upgrade");
        assertRestores(restores.resolve("old"), restores.resolve("old-sock"), oldAtEnd);
        // And the one after it.
        Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", restores.resolve("new").toString(), "--set",
                newLabel, "--archive-mode", "off").assertOk("restore of the new backup");
        assertRestores(restores.resolve("new"), restores.resolve("new-sock"), newAtEnd);
    }

    private static void assertRestores(Path dest, Path sock, Map<String, String> expected) {
        PgCluster copy = PgCluster.adopt(dest, sock, PgCluster.freePort());
        try {
            copy.start();
            copy.awaitPromotion(Duration.ofMinutes(2));
            assertThat(copy.tableDigests()).isEqualTo(expected);
        } finally {
            copy.stop();
        }
    }

    private static PgCluster.ProcessResult backup(Path repo, PgCluster c) {
        return Pgproof.run("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", c.dataDir().toString(), "--start-fast")
                .assertOk("backup of " + c.dataDir());
    }
}
