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
        // 384 MiB cap; the JVM reports a little less (one survivor space): 2 jobs (the 2-core default) and 10 fit.
        BackupCommand.checkHeap("main", 2, 341 * MIB);
        BackupCommand.checkHeap("main", 10, 341 * MIB);
    }

    @Test
    void tooManyJobsForTheHeapAreRefusedWithTheFix() {
        assertThatThrownBy(() -> BackupCommand.checkHeap("main", 16, 341 * MIB))
                .isInstanceOfSatisfying(PgproofException.class, e -> {
                    assertThat(e.exitCode()).isEqualTo(ExitCode.CONFIG);
                    assertThat(e.getMessage()).isEqualTo("backup of cluster \"main\": 16 jobs need about 448 MiB of Java heap, but this JVM may use 341 MiB");
                    assertThat(e.hints()).anyMatch(h -> h.contains("lower --jobs") && h.contains("PGPROOF_JAVA_OPTS=-Xmx576m"));
                });
    }
}
