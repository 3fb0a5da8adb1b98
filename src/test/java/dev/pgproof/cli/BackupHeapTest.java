package dev.pgproof.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import org.junit.jupiter.api.Test;

/** A backup refuses, up front and with the fix, jobs whose chunk buffers do not fit the heap the launcher allows. */
class BackupHeapTest {
    private static final long MIB = 1L << 20;

    @Test
    void jobsThatFitTheLaunchersHeapAreAccepted() {
        // 384 MiB cap; the JVM reports a little less (one survivor space): 2 jobs (the 2-core default) and 10 fit a full
        // backup, 8 an incremental one (which holds one more chunk per job).
        BackupCommand.checkHeap("main", 2, false, 341 * MIB);
        BackupCommand.checkHeap("main", 10, false, 341 * MIB);
        BackupCommand.checkHeap("main", 2, true, 341 * MIB);
        BackupCommand.checkHeap("main", 8, true, 341 * MIB);
    }

    @Test
    void theLaunchersCapFitsTheDefaultJobsOfAnIncrementalOnAnyNumberOfCores() {
        // scripts/fast-answer.sh: 64 MiB + 40 MiB x (cores + 2), at least 384 MiB; the JVM reports about 88% of it.
        for (int cores = 1; cores <= 128; cores++) {
            long cap = Math.max(384, 64 + 40L * (cores + 2)) * MIB;
            BackupCommand.checkHeap("main", cores, true, cap * 88 / 100);
        }
    }

    @Test
    void tooManyJobsForTheHeapAreRefusedWithTheFix() {
        assertThatThrownBy(() -> BackupCommand.checkHeap("main", 10, true, 341 * MIB))
                .isInstanceOfSatisfying(PgproofException.class, e -> assertThat(e.getMessage()).isEqualTo(
                        "backup of cluster \"main\": 10 jobs need about 384 MiB of Java heap, but this JVM may use 341 MiB"));
        assertThatThrownBy(() -> BackupCommand.checkHeap("main", 16, false, 341 * MIB))
                .isInstanceOfSatisfying(PgproofException.class, e -> {
                    assertThat(e.exitCode()).isEqualTo(ExitCode.CONFIG);
                    assertThat(e.getMessage()).isEqualTo("backup of cluster \"main\": 16 jobs need about 448 MiB of Java heap, but this JVM may use 341 MiB");
                    assertThat(e.hints()).anyMatch(h -> h.contains("lower --jobs") && h.contains("PGPROOF_JAVA_OPTS=-Xmx576m"));
                });
    }
}
