package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Proves the PgCluster fixture: a real PostgreSQL 15 cluster, run as the unprivileged user. */
class PgClusterSmokeIT {

    @TempDir
    Path tmp;

    @Test
    void createsStartsQueriesAndStopsACluster() {
        int port = PgCluster.freePort();
        assertThat(port).isBetween(20000, 40000).isNotEqualTo(5432);

        try (PgCluster pg = PgCluster.create(tmp, "smoke", port)) {
            assertThat(pg.dataDir()).isEqualTo(tmp.resolve("smoke").resolve("data"));
            assertThat(pg.dataDir().resolve("PG_VERSION")).hasContent("15");
            assertThat(pg.isRunning()).isFalse();

            pg.start();
            assertThat(pg.isRunning()).isTrue();
            assertThat(pg.socketDir().resolve(".s.PGSQL." + port)).exists();
            assertThat(pg.psql("SELECT 1")).isEqualTo("1");
            assertThat(pg.psql("SHOW data_directory")).isEqualTo(pg.dataDir().toString());
            assertThat(pg.psql("SHOW port")).isEqualTo(Integer.toString(port));
            assertThat(pg.psql("SHOW data_checksums")).isEqualTo("on");
            assertThat(pg.psql("SHOW wal_level")).isEqualTo("replica");
            assertThat(pg.psql("SELECT current_user")).isEqualTo(PgCluster.osUser());
            assertThat(pg.psql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).isEqualTo("t");

            pg.pgbench("-i", "-s", "1", "-q");
            assertThat(pg.psql("SELECT count(*) FROM pgbench_accounts")).isEqualTo("100000");

            assertThatThrownBy(() -> pg.psql("SELECT * FROM no_such_table"))
                    .isInstanceOf(AssertionError.class)
                    .hasMessageContaining("no_such_table");

            pg.stop();
            assertThat(pg.isRunning()).isFalse();
            assertThat(pg.controlData()).containsEntry("Database cluster state", "shut down");

            pg.restart();
            assertThat(pg.psql("SELECT count(*) FROM pgbench_accounts")).isEqualTo("100000");
        }
        // close() stopped it
        assertThat(new PgCluster(tmp.resolve("smoke").resolve("data"), tmp.resolve("smoke").resolve("sock"), port)
                .isRunning()).isFalse();
    }

    @Test
    void runCapturesBothStreamsAndEnforcesTheTimeout() {
        PgCluster.ProcessResult r = PgCluster.run(
                List.of("bash", "-c", "head -c 200000 /dev/zero | tr '\\0' e >&2; echo out; echo \"$X\"; exit 3"),
                Map.of("X", "from-env"), null, Duration.ofSeconds(30));
        assertThat(r.exitCode()).isEqualTo(3);
        assertThat(r.stdout()).isEqualTo("out\nfrom-env\n");
        assertThat(r.stderr()).hasSize(200000);

        assertThatThrownBy(() -> PgCluster.run(List.of("sleep", "30"), null, null, Duration.ofMillis(300)))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("timed out");

        PgCluster.ProcessResult who = PgCluster.runAsOwner(List.of("id", "-un"), null, null);
        assertThat(who.assertOk("id -un").stdout().strip()).isEqualTo(PgCluster.osUser());
        assertThat(Files.isDirectory(PgCluster.PG_BIN)).isTrue();
    }
}
