package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pgproof.repo.ProofCatalog;
import dev.pgproof.repo.ProofRecord;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.PosixStorage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code pgproof clusters} and {@code pgproof check} on a host with three clusters, set up once:
 * <ul>
 * <li>"healthy" (owned by pgproof-test): a section of the configuration file, archive_command
 * archiving as "healthy" to the configured repository, a complete backup and a passing proof;
 * <li>a postgresql-common cluster made with {@code pg_createcluster} (owned by postgres, its
 * configuration in /etc/postgresql/15/NAME), running and covered by no section;
 * <li>"misdirected" (owned by pgproof-test): a section, initialised, but its archive_command archives
 * as "healthy", another cluster's section.
 * </ul>
 * Other clusters may run on the host at the same time (other tests, other developers), so the rows
 * of these three data directories are judged, not the number of rows.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ClustersIT {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int UNPROTECTED = 14;
    private static final int CHECK_FAILED = 15;
    private static final Path PG_CREATECLUSTER = Path.of("/usr/bin/pg_createcluster");

    @TempDir
    static Path tmp;

    private Path repo;
    private Path conf;
    private PgCluster healthy;
    private PgCluster misdirected;
    private String debianName;
    private Path debianData;
    private int debianPort;
    private String label;
    private Path root;
    /** The segment check waited for on healthy. */
    private String checkedSegment;
    private PgCluster standby;
    /** {@code pgproof clusters --output json} right after set-up, before any test changes something. */
    private PgCluster.ProcessResult survey;
    private JsonNode surveyJson;

    @BeforeAll
    void setUp() throws IOException {
        assertThat(PG_CREATECLUSTER).as("pg_createcluster (postgresql-common, installed with postgresql-15 from Debian)").isExecutable();
        root = tmp.toRealPath();
        PgCluster.makeReachable(root);
        Path repoParent = Files.createDirectories(root.resolve("repo"));
        PgCluster.chownToOwner(repoParent, false);
        repo = repoParent.resolve("pgproof");

        healthy = PgCluster.create(root.resolve("clusters"), "healthy", PgCluster.freePort());
        healthy.configure("archive_mode", "on");
        healthy.configure("archive_command", PgCluster.quote(Pgproof.archiveCommand("healthy", repo)));
        misdirected = PgCluster.create(root.resolve("clusters"), "misdirected", PgCluster.freePort());
        misdirected.configure("archive_mode", "on");
        misdirected.configure("archive_command", PgCluster.quote(Pgproof.archiveCommand("healthy", repo)));
        conf = root.resolve("pgproof.conf");
        Files.writeString(conf, "[global]\nrepo = " + repo + "\n\n[healthy]\npgdata = " + healthy.dataDir() + "\n\n[misdirected]\npgdata = "
                + misdirected.dataDir() + "\n");
        healthy.start();
        misdirected.start();

        // Not covered: a postgresql-common cluster, owned by postgres, configured in /etc/postgresql/15/<name>.
        debianName = "pgproof_it_" + Integer.toHexString(ThreadLocalRandom.current().nextInt(1 << 24));
        debianPort = PgCluster.freePort();
        PgCluster.run(List.of(PG_CREATECLUSTER.toString(), "15", debianName, "-p", Integer.toString(debianPort)), null, null,
                Duration.ofMinutes(3)).assertOk("pg_createcluster 15 " + debianName);
        debianData = Path.of("/var/lib/postgresql/15", debianName).toRealPath();
        PgCluster.run(List.of("pg_ctlcluster", "15", debianName, "start"), null, null, Duration.ofMinutes(3))
                .assertOk("pg_ctlcluster 15 " + debianName + " start");

        ok(pgproof("init", "--cluster", "healthy"), "init of healthy");
        ok(pgproof("init", "--cluster", "misdirected"), "init of misdirected");
        PgCluster.ProcessResult backup = ok(pgproof("backup", "--cluster", "healthy", "--start-fast"), "backup of healthy");
        label = backup.stdout().strip();
        writePassingProof("healthy", label);

        survey = pgproof("clusters", "--output", "json");
        surveyJson = JSON.readTree(survey.stdout());
    }

    @AfterAll
    void tearDown() {
        try {
            if (debianName != null) {
                PgCluster.run(List.of("pg_dropcluster", "--stop", "15", debianName), null, null, Duration.ofMinutes(3))
                        .assertOk("pg_dropcluster --stop 15 " + debianName);
            }
        } finally {
            for (PgCluster c : new PgCluster[] {standby, misdirected, healthy}) {
                if (c != null) {
                    c.stop();
                }
            }
        }
    }

    /**
     * {@code prove} is built in parallel (issue 4): until it lands, the test writes the passing proof
     * record that prove would write, with the repository's own ProofCatalog, as the cluster owner would.
     */
    private void writePassingProof(String cluster, String backupLabel) throws IOException {
        writeProof(cluster, backupLabel, true, Instant.now());
    }

    private void writeProof(String cluster, String backupLabel, boolean passed, Instant finished) throws IOException {
        String stamp = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss").withZone(ZoneOffset.UTC).format(finished);
        List<ProofRecord.Check> checks = List.of(new ProofRecord.Check("pg_verifybackup", true, "backup_manifest verified", 0.4),
                new ProofRecord.Check("amcheck", passed, passed ? "12 indexes" : "index pgbench_accounts_pkey: corrupt", 1.5));
        new ProofCatalog(new PosixStorage(repo), new RepoLayout(cluster)).write(new ProofRecord(stamp + "-" + backupLabel, backupLabel,
                healthy.controlData().get("Database system identifier"), finished.minusSeconds(5).toString(), finished.toString(), passed,
                "end of archive", "0/5000000", null, "test", checks));
        PgCluster.chownToOwner(repo.resolve(cluster).resolve("proof"), true);
    }

    // ------------------------------------------------------------------ clusters

    @Test
    @Order(1)
    void clustersFlagsExactlyTheUncoveredAndTheMisdirectedClusterAndExitsNonZero() {
        assertThat(survey.exitCode()).as(survey.stderr()).isEqualTo(UNPROTECTED);
        assertThat(surveyJson.path("protected").asBoolean()).isFalse();

        JsonNode h = row(healthy.dataDir());
        assertThat(codes(h)).as("problems of healthy: " + h).isEmpty();
        assertThat(h.path("verdict").asText()).isEqualTo("protected");
        assertThat(h.path("protected").asBoolean()).isTrue();
        assertThat(h.path("pgproofCluster").asText()).isEqualTo("healthy");
        assertThat(h.path("repository").asText()).isEqualTo(repo.toString());
        assertThat(h.path("version").asInt()).isEqualTo(15);
        assertThat(h.path("port").asInt()).isEqualTo(healthy.port());
        assertThat(h.path("running").asBoolean()).isTrue();
        assertThat(h.path("standby").asBoolean()).isFalse();
        assertThat(h.path("owner").asText()).isEqualTo(PgCluster.osUser());
        assertThat(h.path("systemIdentifier").asText()).isEqualTo(healthy.controlData().get("Database system identifier"));
        assertThat(strings(h.path("foundBy"))).containsExactlyInAnyOrder("process", "configuration");
        assertThat(h.path("archiving").path("archiveMode").asText()).isEqualTo("on");
        assertThat(h.path("archiving").path("archivesAs").asText()).isEqualTo("healthy");
        assertThat(h.path("archiving").path("archivesTo").asText()).isEqualTo(repo.toString());
        assertThat(h.path("archiving").path("lastArchivedWal").asText()).matches("[0-9A-F]{24}.*");
        assertThat(h.path("newestBackup").path("label").asText()).isEqualTo(label);
        assertThat(h.path("newestBackup").path("ageSeconds").asLong()).isBetween(0L, 600L);
        assertThat(h.path("newestBackup").path("maxAgeSeconds").asLong()).isEqualTo(26 * 3600L);
        assertThat(h.path("newestProof").path("passed").asBoolean()).isTrue();
        assertThat(h.path("newestProof").path("backupLabel").asText()).isEqualTo(label);
        assertThat(h.path("newestProof").path("maxAgeSeconds").asLong()).isEqualTo(8 * 86400L);

        JsonNode d = row(debianData);
        assertThat(codes(d)).as("problems of the postgresql-common cluster: " + d).containsExactly("not-covered");
        assertThat(d.path("verdict").asText()).isEqualTo("unprotected");
        assertThat(d.has("pgproofCluster")).isFalse();
        assertThat(d.path("debianCluster").asText()).isEqualTo("15/" + debianName);
        assertThat(d.path("port").asInt()).isEqualTo(debianPort);
        assertThat(d.path("owner").asText()).isEqualTo("postgres");
        assertThat(d.path("running").asBoolean()).isTrue();
        assertThat(d.path("systemIdentifier").asText()).matches("[0-9]+");
        assertThat(strings(d.path("foundBy"))).containsExactlyInAnyOrder("process", "postgresql-common");
        assertThat(d.path("archiving").path("archiveMode").asText()).as("probed as postgres over its socket").isEqualTo("off");
        JsonNode notCovered = d.path("problems").get(0);
        assertThat(notCovered.path("message").asText()).isEqualTo("PostgreSQL 15 cluster 15/" + debianName + " on port " + debianPort
                + ", data directory \"" + debianData + "\", runs without pgproof: no section of \"" + conf
                + "\" names its data directory, and its archive_command does not push to a pgproof repository that pins it");
        assertThat(strings(notCovered.path("hints"))).containsExactly(
                "add a section to " + conf + ": [" + debianName + "] pgdata = " + debianData + ", then: pgproof init --cluster " + debianName
                        + " --configure; pgproof backup --cluster " + debianName,
                "to judge only the clusters configured in pgproof: pgproof clusters --configured-only");

        JsonNode m = row(misdirected.dataDir());
        assertThat(m.path("verdict").asText()).isEqualTo("unprotected");
        assertThat(m.path("pgproofCluster").asText()).isEqualTo("misdirected");
        assertThat(m.path("archiving").path("archivesAs").asText()).isEqualTo("healthy");
        assertThat(codes(m)).as("problems of misdirected: " + m).contains("archive-command-other-cluster", "no-backup", "no-proof")
                .doesNotContain("not-covered", "identity-mismatch");
        JsonNode other = problem(m, "archive-command-other-cluster");
        assertThat(other.path("message").asText()).isEqualTo("cluster \"misdirected\": archive_command archives its WAL as cluster \"healthy\" "
                + "(section [healthy], data directory \"" + healthy.dataDir() + "\"), not as \"misdirected\"");
        assertThat(strings(other.path("hints"))).containsExactly("pgproof init --cluster misdirected --configure --repo " + repo
                + " sets archive_mode and archive_command");
    }

    @Test
    @Order(2)
    void textOutputNamesEachProblemWithItsHint_configuredOnlyLeavesOutTheUncoveredCluster() {
        PgCluster.ProcessResult r = pgproof("clusters", "--configured-only");
        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(UNPROTECTED);
        assertThat(r.stdout()).contains("PROTECTED  15  port " + healthy.port() + "  running  " + healthy.dataDir() + "\n")
                .contains("UNPROTECTED  15  port " + misdirected.port() + "  running  " + misdirected.dataDir() + "\n")
                .contains("    PROBLEM [archive-command-other-cluster]: cluster \"misdirected\": archive_command archives its WAL as cluster \"healthy\"")
                .contains("      HINT: pgproof init --cluster misdirected --configure --repo " + repo)
                .contains("    newest backup: " + label + ", finished ")
                .doesNotContain(debianData.toString())
                .endsWith("2 cluster(s) on " + hostName() + ": 1 protected, 1 with problems, 0 stopped and not covered\n");
        assertThat(r.stderr()).contains("cluster \"healthy\": PostgreSQL 15 running on port " + healthy.port() + ", data directory \""
                + healthy.dataDir() + "\": probing its archiving")
                .contains("ERROR: 1 of 2 cluster(s) on this host are not protected (listed above with their problems)");
    }

    @Test
    @Order(3)
    void aHealthyClusterAloneExitsZero() throws IOException {
        PgCluster.ProcessResult r = pgproof("clusters", "--cluster", "healthy", "--output", "json");
        assertThat(r.exitCode()).as(r.stderr() + r.stdout()).isZero();
        JsonNode doc = JSON.readTree(r.stdout());
        assertThat(doc.path("protected").asBoolean()).isTrue();
        assertThat(doc.path("clusters")).hasSize(1);
        assertThat(doc.path("clusters").get(0).path("dataDirectory").asText()).isEqualTo(healthy.dataDir().toString());
    }

    @Test
    @Order(4)
    void backupAndProofOlderThanTheirLimitsAreProblems_limitsFromFlagAndEnvironment() throws IOException {
        PgCluster.pause(2100);
        PgCluster.ProcessResult r = Pgproof.run(Map.of("PGPROOF_PROOF_MAX_AGE", "1s"), "clusters", "--config", conf.toString(), "--cluster",
                "healthy", "--backup-max-age", "2s", "--output", "json");
        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(UNPROTECTED);
        JsonNode h = JSON.readTree(r.stdout()).path("clusters").get(0);
        assertThat(codes(h)).containsExactly("backup-too-old", "proof-too-old");
        assertThat(problem(h, "backup-too-old").path("message").asText()).startsWith("cluster \"healthy\": the newest complete backup " + label
                + " finished ").endsWith(" ago, more than backup-max-age (2s)");
        assertThat(h.path("newestBackup").path("maxAgeSeconds").asLong()).isEqualTo(2);
        assertThat(h.path("newestProof").path("maxAgeSeconds").asLong()).isEqualTo(1);

        PgCluster.ProcessResult bad = Pgproof.run(Map.of(), "clusters", "--config", conf.toString(), "--cluster", "healthy",
                "--backup-max-age", "soon");
        assertThat(bad.exitCode()).isEqualTo(3);
        assertThat(bad.stderr()).contains("ERROR: setting \"backup-max-age\" must be a duration such as 36h or 7d, got \"soon\"");
    }

    // ------------------------------------------------------------------ check

    @Test
    @Order(5)
    void checkSwitchesWalAndWaitsUntilTheSegmentIsInTheRepository() {
        PgCluster.ProcessResult r = pgproof("check", "--cluster", "healthy", "--archive-timeout", "60");
        ok(r, "check of healthy");
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("check of cluster \"healthy\" passed: WAL segment ([0-9A-F]{24}) archived to \""
                + java.util.regex.Pattern.quote(repo.toString()) + "\" in [0-9.]+ s\n").matcher(r.stdout());
        assertThat(m.matches()).as(r.stdout()).isTrue();
        String segment = m.group(1);
        checkedSegment = segment;
        assertThat(r.stderr()).contains("cluster \"healthy\": archive_command calls pgproof archive-push for cluster \"healthy\" and repository \""
                + repo + "\"").contains("switched WAL; waiting up to 60 s for segment " + segment);
        assertThat(repo.resolve("healthy/wal/" + segment.substring(0, 16)).toFile().list())
                .as("stored copies of " + segment).anyMatch(n -> n.startsWith(segment + "-"));
    }

    @Test
    @Order(6)
    void checkFailsWhenArchiveCommandNamesAnotherClustersSection() {
        PgCluster.ProcessResult r = pgproof("check", "--cluster", "misdirected", "--archive-timeout", "10");
        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(CHECK_FAILED);
        assertThat(errorLines(r.stderr())).containsExactly(
                "ERROR: cluster \"misdirected\": archive_command archives as cluster \"healthy\", not as \"misdirected\": '"
                        + Pgproof.archiveCommand("healthy", repo) + "'",
                "HINT: run: pgproof init --cluster misdirected --repo " + repo + " --configure (sets archive_mode and archive_command)");
    }

    @Test
    @Order(7)
    void checkFailsWhenArchiveCommandNamesAnotherRepository() {
        setArchiveCommand(misdirected, Pgproof.archiveCommand("misdirected", repo.resolveSibling("elsewhere")));
        try {
            PgCluster.ProcessResult r = pgproof("check", "--cluster", "misdirected", "--archive-timeout", "10");
            assertThat(r.exitCode()).as(r.stderr()).isEqualTo(CHECK_FAILED);
            assertThat(errorLines(r.stderr()).get(0)).isEqualTo("ERROR: cluster \"misdirected\": archive_command archives to repository \""
                    + repo.resolveSibling("elsewhere") + "\", not to \"" + repo + "\": '" + Pgproof.archiveCommand("misdirected",
                            repo.resolveSibling("elsewhere")) + "'");
        } finally {
            resetArchiveCommand(misdirected);
        }
    }

    @Test
    @Order(8)
    void checkFailsWhenTheSegmentDoesNotArrive_quotingPgStatArchiver_clustersReportsTheFailingArchiver() throws IOException {
        // Right cluster and repository, but archive-push cannot start (its configuration file does not exist).
        String broken = Pgproof.LAUNCHER + " archive-push --cluster misdirected --repo " + repo + " --config /nonexistent/pgproof.conf %p";
        setArchiveCommand(misdirected, broken);
        try {
            long t0 = System.nanoTime();
            PgCluster.ProcessResult r = pgproof("check", "--cluster", "misdirected", "--archive-timeout", "10");
            double secs = (System.nanoTime() - t0) / 1e9;
            assertThat(r.exitCode()).as(r.stderr()).isEqualTo(CHECK_FAILED);
            List<String> err = errorLines(r.stderr());
            assertThat(err.get(0)).matches("ERROR: cluster \"misdirected\": WAL segment [0-9A-F]{24} did not reach repository \""
                    + java.util.regex.Pattern.quote(repo.toString()) + "\": .* \\(pg_stat_archiver: last failed [0-9A-F]{24} at .*, [0-9]+ "
                    + "failures; (nothing archived yet|last archived [0-9A-F]{24}.* at .*)\\)");
            assertThat(err.get(1)).startsWith("HINT: the server log");
            assertThat(secs).as("check gives up within its archive-timeout").isLessThan(40);

            // The archiver's failures are what clusters reports as failing archiving.
            PgCluster.ProcessResult c = pgproof("clusters", "--cluster", "misdirected", "--output", "json");
            assertThat(c.exitCode()).as(c.stderr()).isEqualTo(UNPROTECTED);
            JsonNode m = JSON.readTree(c.stdout()).path("clusters").get(0);
            assertThat(codes(m)).contains("archive-failing").doesNotContain("archive-command-other-cluster");
            assertThat(problem(m, "archive-failing").path("message").asText())
                    .matches("cluster \"misdirected\": WAL archiving is failing: [0-9A-F]{24} failed at \\S+ \\([0-9]+ failures since statistics "
                            + "reset\\), last success never, [0-9]+ WAL files waiting");
            assertThat(m.path("archiving").path("failedCount").asLong()).isPositive();
        } finally {
            resetArchiveCommand(misdirected);
        }
    }

    @Test
    @Order(9)
    void aFailedNewestProofIsAProblem() throws IOException {
        writeProof("healthy", label, false, Instant.now().plusSeconds(1));
        PgCluster.ProcessResult r = pgproof("clusters", "--cluster", "healthy", "--output", "json");
        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(UNPROTECTED);
        JsonNode h = JSON.readTree(r.stdout()).path("clusters").get(0);
        assertThat(codes(h)).containsExactly("proof-failed");
        assertThat(h.path("newestProof").path("passed").asBoolean()).isFalse();
        assertThat(problem(h, "proof-failed").path("message").asText()).startsWith("cluster \"healthy\": the newest proof ")
                .endsWith(" of backup " + label + " FAILED (amcheck: index pgbench_accounts_pkey: corrupt)");
    }

    @Test
    @Order(10)
    void aSectionWhoseDataDirectoryIsAnotherClusterIsAnIdentityMismatch() throws IOException {
        Path wrong = root.resolve("wrong.conf");
        Files.writeString(wrong, "[global]\nrepo = " + repo + "\n[misdirected]\npgdata = " + healthy.dataDir() + "\n");
        PgCluster.ProcessResult r = Pgproof.run("clusters", "--config", wrong.toString(), "--output", "json", "--configured-only");
        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(UNPROTECTED);
        JsonNode rows = JSON.readTree(r.stdout()).path("clusters");
        assertThat(rows).hasSize(1);
        JsonNode h = rows.get(0);
        assertThat(h.path("pgproofCluster").asText()).isEqualTo("misdirected");
        assertThat(codes(h)).contains("identity-mismatch");
        String healthySysid = healthy.controlData().get("Database system identifier");
        String misdirectedSysid = misdirected.controlData().get("Database system identifier");
        assertThat(problem(h, "identity-mismatch").path("message").asText()).isEqualTo("cluster \"misdirected\": data directory \""
                + healthy.dataDir() + "\" has system identifier " + healthySysid + ", PostgreSQL 15, but repository \"" + repo
                + "\" pins cluster \"misdirected\" to system identifier " + misdirectedSysid + ", PostgreSQL 15");
    }

    @Test
    @Order(11)
    void aMissingSegmentAfterTheNewestBackupIsAWalGap() throws IOException {
        assertThat(checkedSegment).as("segment from the check test").isNotNull();
        // One more switch, so that the checked segment lies between archived ones, then remove it from the repository.
        ok(pgproof("check", "--cluster", "healthy"), "second check of healthy");
        Path dir = repo.resolve("healthy/wal/" + checkedSegment.substring(0, 16));
        String[] copies = dir.toFile().list((d, n) -> n.startsWith(checkedSegment + "-"));
        assertThat(copies).hasSize(1);
        Files.delete(dir.resolve(copies[0]));

        PgCluster.ProcessResult r = pgproof("clusters", "--cluster", "healthy", "--output", "json");
        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(UNPROTECTED);
        JsonNode h = JSON.readTree(r.stdout()).path("clusters").get(0);
        assertThat(codes(h)).contains("wal-gap");
        assertThat(h.path("newestBackup").path("walGapFirst").asText()).isEqualTo(checkedSegment);
        assertThat(h.path("newestBackup").path("walGapLast").asText()).isEqualTo(checkedSegment);
        assertThat(problem(h, "wal-gap").path("message").asText()).startsWith("cluster \"healthy\": WAL gap after backup " + label
                + ": 1 segment(s) from " + checkedSegment + " to " + checkedSegment + " are missing from repository \"" + repo + "\"");
    }

    @Test
    @Order(12)
    void onAStandbyCheckChecksWhatItCanAndSaysWhatItCannot_clustersCoversItThroughItsArchiveCommand() throws IOException {
        Path standbys = Files.createDirectories(root.resolve("standbys"));
        PgCluster.chownToOwner(standbys, false);
        Path data = standbys.resolve("standby");
        PgCluster.runAsOwner(List.of(PgCluster.bin("pg_basebackup"), "-D", data.toString(), "-R", "-X", "stream", "-h",
                healthy.socketDir().toString(), "-p", Integer.toString(healthy.port())), null, standbys).assertOk("pg_basebackup");
        standby = new PgCluster(data, standbys.resolve("sock"), PgCluster.freePort());
        standby.start();
        assertThat(standby.psql("SELECT pg_is_in_recovery()")).isEqualTo("t");

        PgCluster.ProcessResult r = pgproof("check", "--cluster", "healthy", "--pgdata", data.toString());
        ok(r, "check on the standby");
        assertThat(r.stdout()).startsWith("check of cluster \"healthy\" (standby): identity, archive settings and repository OK; no WAL switch "
                + "on a standby (newest archived segment: ");
        assertThat(r.stderr()).contains("cluster \"healthy\": a standby with archive_mode = on does not archive: its primary does")
                .contains("cluster \"healthy\": on a standby pgproof cannot force a WAL switch (pg_switch_wal() runs only on a primary)");

        PgCluster.ProcessResult c = pgproof("clusters", "--output", "json");
        JsonNode doc = JSON.readTree(c.stdout());
        JsonNode s = null;
        for (JsonNode row : doc.path("clusters")) {
            if (row.path("dataDirectory").asText().equals(data.toRealPath().toString())) {
                s = row;
            }
        }
        assertThat(s).as("standby row in " + c.stdout()).isNotNull();
        assertThat(s.path("standby").asBoolean()).isTrue();
        assertThat(s.path("pgproofCluster").asText()).as(s.toString()).isEqualTo("healthy");
        assertThat(codes(s)).as(s.toString()).doesNotContain("not-covered", "archive-command-other-cluster", "identity-mismatch");
        assertThat(strings(s.path("notes"))).anyMatch(n -> n.startsWith("covered through its archive_command (cluster \"healthy\""))
                .contains("standby: WAL is archived by its primary (archive_mode is on, not always)");
    }

    // ------------------------------------------------------------------ helpers

    private PgCluster.ProcessResult pgproof(String... args) {
        List<String> all = new ArrayList<>(Arrays.asList(args));
        all.addAll(List.of("--config", conf.toString()));
        return Pgproof.run(all.toArray(new String[0]));
    }

    private static PgCluster.ProcessResult ok(PgCluster.ProcessResult r, String what) {
        return r.assertOk(what);
    }

    private static void setArchiveCommand(PgCluster c, String command) {
        c.psql("ALTER SYSTEM SET archive_command = " + PgCluster.quote(command));
        c.psql("SELECT pg_reload_conf()");
        awaitSetting(c, command);
    }

    private static void resetArchiveCommand(PgCluster c) {
        c.psql("ALTER SYSTEM RESET archive_command");
        c.psql("SELECT pg_reload_conf()");
    }

    private static void awaitSetting(PgCluster c, String command) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!c.psql("SHOW archive_command").equals(command)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("archive_command of " + c + " did not change to " + command);
            }
            PgCluster.pause(100);
        }
    }

    private JsonNode row(Path dataDir) {
        for (JsonNode c : surveyJson.path("clusters")) {
            if (c.path("dataDirectory").asText().equals(dataDir.toString())) {
                return c;
            }
        }
        throw new AssertionError("no row for " + dataDir + " in:\n" + survey.stdout() + "\n--- stderr ---\n" + survey.stderr());
    }

    private static List<String> codes(JsonNode row) {
        List<String> out = new ArrayList<>();
        row.path("problems").forEach(p -> out.add(p.path("code").asText()));
        return out;
    }

    private static JsonNode problem(JsonNode row, String code) {
        for (JsonNode p : row.path("problems")) {
            if (p.path("code").asText().equals(code)) {
                return p;
            }
        }
        throw new AssertionError("no problem " + code + " in " + row);
    }

    private static List<String> strings(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }

    private static List<String> errorLines(String stderr) {
        List<String> lines = Arrays.asList(stderr.split("\n"));
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).startsWith("ERROR: ")) {
                return new ArrayList<>(lines.subList(i, lines.size()));
            }
        }
        throw new AssertionError("no ERROR line in:\n" + stderr);
    }

    private static String hostName() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "localhost";
        }
    }
}
