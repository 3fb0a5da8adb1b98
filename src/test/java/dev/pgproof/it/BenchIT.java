package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The benchmark still works: bench/compare.sh at a tiny scale (pgbench scale 1, one round, three compressions, a 2-second
 * load) runs pgproof, pgBackRest and pg_basebackup side by side and reports every figure. Its timings prove nothing
 * here and are not asserted; that pgproof's block-level incremental stores less than Debian's file-level pgBackRest
 * is, and each pgproof restore checks every piece it writes, so a compression that does not read back fails it. The script runs its cluster as the unprivileged test user when run as root, as in CI.
 */
class BenchIT {
    private static final String NUMBER = "[0-9]+(\\.[0-9]+)?";

    @Test
    void compareScript_runsEveryToolAndReportsMediansRatiosAndTheIncremental() {
        PgCluster.ProcessResult r = PgCluster.run(List.of("bash", "bench/compare.sh", "1", "2", "1", "zstd:3 lz4 none", "2"),
                Map.of("BENCH_SETTLE", "0"), Path.of("").toAbsolutePath(), Duration.ofMinutes(5));
        String out = r.stdout();
        assertThat(r.exitCode()).as(out + r.stderr()).isZero();
        assertThat(out).as(out).doesNotContain("FAILED");
        for (String c : List.of("zstd:3", "lz4", "none")) {
            assertThat(out).as(out).contains("== " + c + ": commands", "== " + c + ": median of 1 (range)");
        }
        assertThat(out).contains("--compress zstd --compress-level 3", "--compress-type=zst --compress-level=3",
                "--compress=server-zstd:level=3,workers=2", "--compress lz4", "--compress-type=lz4", "--compress=server-lz4", "--compress none", "--compress-type=none");
        for (String tool : List.of("pgproof backup (full)", "pgBackRest backup (full)", "pg_basebackup", "pgproof restore",
                "pgBackRest restore")) {
            // one line per compression, with a median, MB/s, CPU seconds and peak RSS
            Matcher m = Pattern.compile(Pattern.quote(tool) + " +" + NUMBER + " s \\(.*\\) +[0-9]+ MB/s +cpu +" + NUMBER
                    + " s +peak RSS +[1-9][0-9]* MB").matcher(out);
            assertThat(m.results().count()).as(tool + " in\n" + out).isEqualTo(3);
        }
        for (String ratio : List.of("backup, pgproof as fast as pgBackRest:", "backup, pgproof as fast as pg_basebackup:",
                "restore, pgproof as fast as pgBackRest:")) {
            assertThat(Pattern.compile(Pattern.quote(ratio) + " +" + NUMBER + "x").matcher(out).results().count()).as(ratio).isEqualTo(3);
        }
        Matcher incr = Pattern.compile("incremental stored, pgproof / pgBackRest: (" + NUMBER + ")").matcher(out);
        assertThat(incr.find()).as(out).isTrue();
        assertThat(Double.parseDouble(incr.group(1))).as("block-level against file-level").isGreaterThan(0).isLessThan(1);
    }
}
