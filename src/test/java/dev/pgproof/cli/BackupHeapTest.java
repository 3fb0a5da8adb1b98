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

    /**
     * Once the data directory is listed, its files count too (their manifest entries are spooled to local disk, and the
     * heap holds about a kilobyte a file, whatever the file's size): with the launcher's 384 MiB cap a backup of 1 PB in
     * 100,000 files fits, full or incremental, and one of 300,000 files refused before copying, with the heap that would do.
     */
    @Test
    void manifestsThatWouldNotFitTheHeapAreRefusedBeforeCopying() {
        long pb = 1L << 50;
        long max = 341 * MIB;
        dev.pgproof.backup.Backup.checkManifestHeap("main", "F", pb, 100_000, null, 2, max);
        dev.pgproof.backup.Backup.checkManifestHeap("main", "I", pb, 100_000, "F", 2, max);
        assertThatThrownBy(() -> dev.pgproof.backup.Backup.checkManifestHeap("main", "F2", 10L << 40, 300_000, null, 2, max))
                .isInstanceOfSatisfying(PgproofException.class, e -> {
                    assertThat(e.exitCode()).isEqualTo(ExitCode.CONFIG);
                    assertThat(e.getMessage()).startsWith("backup F2 of cluster \"main\": 300000 files, 10.0 TB, need about ")
                            .endsWith(" MiB of Java heap (the files' manifest entries, and 2 jobs' buffers), but this JVM may use 341 MiB");
                    assertThat(e.hints()).singleElement().asString().startsWith("raise the heap: PGPROOF_JAVA_OPTS=-Xmx");
                });
        assertThatThrownBy(() -> dev.pgproof.backup.Backup.checkManifestHeap("main", "I2", 1L << 40, 300_000, "F", 2, max))
                .isInstanceOfSatisfying(PgproofException.class, e -> assertThat(e.getMessage())
                        .contains("(the files' manifest entries, this backup's and F's, and 2 jobs' buffers)"));
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
