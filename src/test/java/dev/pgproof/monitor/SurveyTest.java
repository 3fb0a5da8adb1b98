package dev.pgproof.monitor;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pgproof.cluster.Discovery;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The archiving judgments of {@link Survey} on what a server reported (a {@link Probe} record as a
 * real server fills it); ClustersIT covers the same against real clusters and repositories.
 */
class SurveyTest {
    @TempDir
    Path tmp;

    private Path data;
    private Survey survey;

    @BeforeEach
    void setUp() throws IOException {
        data = Files.createDirectories(tmp.resolve("main/data")).toRealPath();
        Files.writeString(data.resolve("PG_VERSION"), "15\n");
        Path other = Files.createDirectories(tmp.resolve("other/data"));
        survey = new Survey(List.of(new Survey.Section("main", data, "/backup/pgproof", Duration.ofHours(26), Duration.ofDays(8)),
                new Survey.Section("other", other, "/backup/pgproof", Duration.ofHours(26), Duration.ofDays(8))), (cluster, repo) -> {
                    throw new PgproofException(ExitCode.REPOSITORY, "repository \"" + repo + "\" does not exist");
                }, "/etc/pgproof/pgproof.conf", Instant.parse("2026-11-25T12:00:00Z"), Duration.ofHours(26), Duration.ofDays(8));
    }

    private Discovery.Found running() {
        return new Discovery.Found(data, true, 15, 5433, true, 4242L, "ready", null, Set.of(Discovery.PROCESS, Discovery.CONFIGURATION), null);
    }

    private static Probe probe(boolean recovery, String mode, String command, String library, String lastArchived, String lastFailed) {
        return new Probe(null, null, null, "port 5433", "7712172784920108552", 150004, recovery, mode, command, library, 10L,
                lastArchived == null ? null : "000000010000000000000009", lastArchived, lastFailed == null ? 0L : 4L,
                lastFailed == null ? null : "00000001000000000000000A", lastFailed, null, "00000001000000000000000B", 2);
    }

    private List<String> archiveCodes(Probe p) {
        return survey.judge(running(), p).problems().stream().map(ClusterStatus.Problem::code).filter(c -> c.startsWith("archive")).toList();
    }

    @Test
    void rightCommand_noArchiveProblem() {
        ClusterStatus s = survey.judge(running(), probe(false, "on", "/usr/local/bin/pgproof archive-push --cluster main --repo /backup/pgproof %p",
                "", "2026-11-25T11:59:00Z", null));
        assertThat(s.problems()).extracting(ClusterStatus.Problem::code).containsExactly("repository-missing");
        assertThat(s.archiving().archivesAs()).isEqualTo("main");
        assertThat(s.archiving().archivesTo()).isEqualTo("/backup/pgproof");
        assertThat(s.pgproofCluster()).isEqualTo("main");
    }

    @Test
    void wrongSettings_eachNamed() {
        assertThat(archiveCodes(probe(false, "off", "(disabled)", "", null, null))).containsExactly("archive-mode-off");
        assertThat(archiveCodes(probe(false, "on", "", "", null, null))).containsExactly("archive-command-missing");
        assertThat(archiveCodes(probe(false, "on", "cp %p /mnt/%f", "", null, null))).containsExactly("archive-command-not-pgproof");
        assertThat(archiveCodes(probe(false, "on", "pgproof archive-push %p", "", null, null))).containsExactly("archive-command-no-cluster");
        assertThat(archiveCodes(probe(false, "on", "pgproof archive-push --cluster other --repo /backup/pgproof %p", "", null, null)))
                .containsExactly("archive-command-other-cluster");
        assertThat(archiveCodes(probe(false, "on", "pgproof archive-push --cluster main --repo /elsewhere %p", "", null, null)))
                .containsExactly("archive-command-other-repository");
        assertThat(archiveCodes(probe(false, "on", "pgproof archive-push --cluster main --repo /backup/pgproof %p", "basic_archive", null, null)))
                .containsExactly("archive-library");
    }

    @Test
    void failing_whenTheLastFailureIsNewerThanTheLastSuccess() {
        String cmd = "pgproof archive-push --cluster main --repo /backup/pgproof %p";
        assertThat(archiveCodes(probe(false, "on", cmd, "", "2026-11-25T11:00:00Z", "2026-11-25T11:30:00Z"))).containsExactly("archive-failing");
        assertThat(archiveCodes(probe(false, "on", cmd, "", "2026-11-25T11:31:00Z", "2026-11-25T11:30:00Z"))).isEmpty();
        assertThat(archiveCodes(probe(false, "on", cmd, "", null, "2026-11-25T11:30:00Z"))).containsExactly("archive-failing");
        ClusterStatus s = survey.judge(running(), probe(false, "on", cmd, "", "2026-11-25T11:00:00Z", "2026-11-25T11:30:00Z"));
        assertThat(s.problems().stream().filter(p -> p.code().equals("archive-failing")).findFirst().orElseThrow().message()).isEqualTo(
                "cluster \"main\": WAL archiving is failing: 00000001000000000000000A failed at 2026-11-25T11:30:00Z (4 failures since "
                        + "statistics reset), last success 000000010000000000000009 at 2026-11-25T11:00:00Z, 2 WAL files waiting");
    }

    @Test
    void backlog_aWalFileWaitingLongerThanTenMinutesIsAProblemBeforePgWalFills() {
        String cmd = "pgproof archive-push --cluster main --repo /backup/pgproof %p";
        Probe ok = probe(false, "on", cmd, "", "2026-11-25T11:59:00Z", null);
        Probe behind = new Probe(ok.error(), ok.errorHints(), ok.errorCode(), ok.endpoint(), ok.systemIdentifier(), ok.serverVersionNum(),
                ok.inRecovery(), ok.archiveMode(), ok.archiveCommand(), ok.archiveLibrary(), ok.archivedCount(), ok.lastArchivedWal(),
                ok.lastArchivedTime(), ok.failedCount(), ok.lastFailedWal(), ok.lastFailedTime(), ok.statsReset(), ok.currentWal(), 40, 1260L,
                700L << 20);
        assertThat(archiveCodes(behind)).containsExactly("archive-backlog");
        ClusterStatus.Problem p = survey.judge(running(), behind).problems().stream().filter(x -> x.code().equals("archive-backlog"))
                .findFirst().orElseThrow();
        assertThat(p.message()).isEqualTo("cluster \"main\": 40 WAL files wait for archiving, the oldest for 21m; pg_wal holds 700 MiB");
        assertThat(p.hints().get(0)).startsWith("PostgreSQL keeps every segment not yet archived");
        Probe recent = new Probe(ok.error(), ok.errorHints(), ok.errorCode(), ok.endpoint(), ok.systemIdentifier(), ok.serverVersionNum(),
                ok.inRecovery(), ok.archiveMode(), ok.archiveCommand(), ok.archiveLibrary(), ok.archivedCount(), ok.lastArchivedWal(),
                ok.lastArchivedTime(), ok.failedCount(), ok.lastFailedWal(), ok.lastFailedTime(), ok.statsReset(), ok.currentWal(), 3, 30L,
                48L << 20);
        assertThat(archiveCodes(recent)).isEmpty();
    }

    @Test
    void standby_archivingIsItsPrimarysUnlessAlways() {
        assertThat(archiveCodes(probe(true, "on", "cp %p /x", "", null, null))).isEmpty();
        ClusterStatus s = survey.judge(running(), probe(true, "on", "cp %p /x", "", null, null));
        assertThat(s.standby()).isTrue();
        assertThat(s.notes()).contains("standby: WAL is archived by its primary (archive_mode is on, not always)");
        assertThat(archiveCodes(probe(true, "always", "cp %p /x", "", null, null))).containsExactly("archive-command-not-pgproof");
    }

    @Test
    void unreachable_keepsTheProbesErrorAndHints() {
        ClusterStatus s = survey.judge(running(), Probe.failed("cluster \"main\": could not connect to port 5433 as user \"root\": FATAL: role",
                List.of("run pgproof as the cluster owner"), 4));
        assertThat(s.problems().get(0)).isEqualTo(new ClusterStatus.Problem("unreachable",
                "cluster \"main\": could not connect to port 5433 as user \"root\": FATAL: role", List.of("run pgproof as the cluster owner")));
        assertThat(s.verdict()).isEqualTo(ClusterStatus.UNPROTECTED);
        ClusterStatus wrongServer = survey.judge(running(), Probe.failed("cluster \"main\": the server at port 5433 is not the cluster in ...",
                List.of("restart the cluster"), 5));
        assertThat(wrongServer.problems().get(0).code()).isEqualTo("identity-mismatch");
    }

    @Test
    void stoppedAndNotCovered_isListedNotJudged() throws IOException {
        Path d = Files.createDirectories(tmp.resolve("scratch"));
        Files.writeString(d.resolve("PG_VERSION"), "15\n");
        ClusterStatus s = survey.judge(new Discovery.Found(d.toRealPath(), true, 15, 5434, false, null, null, "15/scratch",
                Set.of(Discovery.DEBIAN), null), null);
        assertThat(s.problems()).isEmpty();
        assertThat(s.verdict()).isEqualTo(ClusterStatus.IGNORED);
        assertThat(s.isProtected()).isFalse();
        assertThat(s.notes()).contains("stopped, and not covered by pgproof");
    }

    @Test
    void suggestedName() {
        assertThat(Survey.suggestedName(new Discovery.Found(Path.of("/srv/pg/sales db/data"), true, 15, 1, true, 1L, null, null, Set.of(), null)))
                .isEqualTo("sales_db");
        assertThat(Survey.suggestedName(new Discovery.Found(Path.of("/var/lib/postgresql/16/reports"), true, 16, 1, true, 1L, null, "16/reports",
                Set.of(), null))).isEqualTo("reports");
    }
}
