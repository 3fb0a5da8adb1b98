package dev.pgproof.cli;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Exit codes of the command line that do not need a cluster. */
class CliTest {
    @Test
    void archiveGet_neverAnswersNotFoundForAMistake(@TempDir java.nio.file.Path dir) {
        // A typo in restore_command must stop recovery (exit > 125), not read as "not archived".
        assertThat(Cli.run(new String[] {"archive-get", "--bogus", "x", "000000010000000000000001", "pg_wal/RECOVERYXLOG"})).isEqualTo(200);
        assertThat(Cli.run(new String[] {"archive-get", "000000010000000000000001", "pg_wal/RECOVERYXLOG"})).isEqualTo(200);
        assertThat(Cli.run(new String[] {"archive-get", "--cluster", "main", "--repo", dir.resolve("missing").toString(),
            "000000010000000000000001", "pg_wal/RECOVERYXLOG"})).isEqualTo(200);
    }

    @Test
    void archivePush_failsWithinTheRetryRange(@TempDir java.nio.file.Path dir) {
        int code = Cli.run(new String[] {"archive-push", "--cluster", "main", "--repo", dir.resolve("missing").toString(), "pg_wal/x"});
        // as root the working directory (root-owned here) is refused first: pgproof never writes as root
        assertThat(code).isEqualTo(dev.pgproof.cluster.Owner.isRoot() ? 11 : 6);
        assertThat(Cli.run(new String[] {"archive-push", "--nope"})).isEqualTo(2);
    }

    @Test
    void unknownCommandAndHelp() {
        assertThat(Cli.run(new String[] {"frobnicate"})).isEqualTo(2);
        assertThat(Cli.run(new String[] {"backup", "--help"})).isEqualTo(0);
        assertThat(Cli.run(new String[] {"restore", "--cluster", "main", "--repo", "/nonexistent", "--pgdata", "/tmp/x",
            "--target-time", "soon"})).isEqualTo(dev.pgproof.cluster.Owner.isRoot() ? 11 : 6);
    }

    @Test
    void verifyAndProve_usageErrors() {
        assertThat(Cli.run(new String[] {"verify", "--repo", "/nonexistent", "--output", "xml"})).isEqualTo(2);
        assertThat(Cli.run(new String[] {"verify", "--repo", "/nonexistent", "--set", "20261125-180917F"})).isEqualTo(2);
        assertThat(Cli.run(new String[] {"verify", "--repo", "/nonexistent"})).isEqualTo(6);
        assertThat(Cli.run(new String[] {"prove", "--cluster", "main", "--repo", "/nonexistent", "--target-time", "2026-11-25 18:00:00+00",
            "--target-lsn", "0/3000028"})).isEqualTo(2);
        assertThat(Cli.run(new String[] {"prove", "--help"})).isEqualTo(0);
        assertThat(Cli.run(new String[] {"verify", "--help"})).isEqualTo(0);
    }

    @Test
    void clustersAndCheck_usageAndConfigurationErrors(@TempDir java.nio.file.Path dir) throws java.io.IOException {
        assertThat(Cli.run(new String[] {"clusters", "--help"})).isEqualTo(0);
        assertThat(Cli.run(new String[] {"check", "--help"})).isEqualTo(0);
        assertThat(Cli.run(new String[] {"clusters", "--output", "yaml"})).isEqualTo(2);
        java.nio.file.Path conf = dir.resolve("p.conf");
        java.nio.file.Files.writeString(conf, "[global]\nproof-max-age = weekly\n[main]\npgdata = " + dir + "\n");
        assertThat(Cli.run(new String[] {"clusters", "--config", conf.toString()})).isEqualTo(3);
        assertThat(Cli.run(new String[] {"check", "--config", conf.toString()})).isEqualTo(3);
    }

    /** The README's exit code table is the enum's, row for row. */
    @Test
    void readmeListsEveryExitCode() throws java.io.IOException {
        String readme = java.nio.file.Files.readString(java.nio.file.Path.of("README.md"));
        for (dev.pgproof.util.ExitCode c : dev.pgproof.util.ExitCode.values()) {
            assertThat(readme).contains("| " + c.code + " | " + c.meaning + " |");
        }
    }
}
