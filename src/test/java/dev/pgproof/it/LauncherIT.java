package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The launcher hands the JVM the class-data archive the build wrote beside the jar (pgproof.jsa), so
 * that a command starts with its classes already loaded and verified: every pgproof and picocli class
 * that {@code --version} needs comes from the archive, and nearly all of picocli's. Without the archive (not
 * built, stale, or refused by the JVM) this fails, where the start-up figures in docs/benchmarks.md
 * would only quietly get worse.
 */
class LauncherIT {
    @TempDir
    Path tmp;

    @Test
    void commandClassesComeFromTheClassDataArchive() throws IOException {
        Path log = tmp.resolve("class-load.log");
        Pgproof.run(Map.of("PGPROOF_JAVA_OPTS", "-Xlog:class+load=info:file=" + log), "--version").assertOk("pgproof --version");
        List<String> lines = Files.readAllLines(log);
        assertThat(lines).anyMatch(l -> l.endsWith(" dev.pgproof.cli.Cli source: shared objects file"))
                .anyMatch(l -> l.endsWith(" picocli.CommandLine source: shared objects file"));
        // Lambdas are spun at run time; every other class of pgproof is archived, and nearly all of picocli's (the
        // class list, scripts/cds-classlist, records real commands, which load a few handlers fewer than --version).
        List<String> ours = lines.stream().filter(l -> l.contains(" dev.pgproof.") && !l.contains("$$Lambda$")).toList();
        assertThat(ours).isNotEmpty().allMatch(l -> l.endsWith("source: shared objects file"));
        List<String> picocli = lines.stream().filter(l -> l.contains(" picocli.") && !l.contains("$$Lambda$")).toList();
        long archived = picocli.stream().filter(l -> l.endsWith("source: shared objects file")).count();
        assertThat(archived).as("picocli classes from the archive, of %d", picocli.size()).isGreaterThanOrEqualTo(picocli.size() * 9L / 10);
    }

    /**
     * Both launchers hand the JVM the compiler directives beside fast-answer.sh (scripts/jit-directives.json), unless
     * PGPROOF_JIT_DIRECTIVES=off; the JVM reads them (a file it cannot parse stops it from starting) and its note that it
     * did stays off standard output, where commands print what scripts read (a backup's label).
     */
    @Test
    void theCompilerDirectivesReachTheJvmAndStayOffStdout() {
        Path directives = Path.of("scripts", "jit-directives.json").toAbsolutePath();
        String show = ". \"$PWD/scripts/fast-answer.sh\"; launch_opts target/native target/pgproof.jar; printf '%s\n' \"${jvm_launch[@]}\"";
        PgCluster.ProcessResult on = PgCluster.run(List.of("bash", "-c", show), Map.of(), null, java.time.Duration.ofSeconds(30));
        on.assertOk("launch_opts");
        assertThat(on.stdout().lines().toList()).contains("-XX:+UnlockDiagnosticVMOptions", "-XX:CompilerDirectivesFile=" + directives,
                "-XX:-DisplayVMOutput");
        PgCluster.ProcessResult off = PgCluster.run(List.of("bash", "-c", show), Map.of("PGPROOF_JIT_DIRECTIVES", "off"), null,
                java.time.Duration.ofSeconds(30));
        off.assertOk("launch_opts with PGPROOF_JIT_DIRECTIVES=off");
        assertThat(off.stdout()).doesNotContain("CompilerDirectivesFile").doesNotContain("DisplayVMOutput");
        PgCluster.ProcessResult version = Pgproof.run("--version").assertOk("pgproof --version");
        assertThat(version.stdout()).isEqualTo("pgproof (development build)\n");
    }
}
