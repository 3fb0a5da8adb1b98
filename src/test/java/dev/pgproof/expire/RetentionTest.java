package dev.pgproof.expire;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pgproof.repo.BackupManifest;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class RetentionTest {
    private static final Instant NOW = Instant.parse("2026-11-25T12:00:00Z");
    private static final int SEG = 16 * 1024 * 1024;

    /** A full backup that ended {@code daysAgo} days before NOW and started in segment {@code seg}. */
    private static BackupManifest backup(String label, double daysAgo, long seg) {
        Instant stop = NOW.minus((long) (daysAgo * 24 * 60), ChronoUnit.MINUTES);
        String lsn = String.format("%X/%X", (seg * SEG) >>> 32, (seg * SEG) & 0xffffffffL);
        return new BackupManifest(1, label, "full", "main", "1", 15, 150000, SEG, 1, lsn, lsn, null, null, stop.toString(),
                stop.toString(), "UTC", "zstd", false, "/x", "postgres", 0, 0, null, null, null, List.of(), List.of(), List.of());
    }

    /** A backup of the given type built on prior (null for a full backup). */
    private static BackupManifest backup(String label, String type, String prior, double daysAgo) {
        BackupManifest f = backup(label, daysAgo, 1);
        return new BackupManifest(1, label, type, "main", "1", 15, 150000, SEG, 1, f.startLsn(), f.stopLsn(), null, null, f.startTime(),
                f.stopTime(), "UTC", "zstd", false, "/x", "postgres", 0, 0, null, null, null, List.of(), List.of(), List.of(), prior);
    }

    /** F1 <- D1 <- I1, F1 <- D2 <- I2, F2 <- I3 <- I4, F2 <- D3: oldest first. */
    private final List<BackupManifest> chains = List.of(backup("F1", "full", null, 9), backup("D1", "diff", "F1", 8),
            backup("I1", "incr", "D1", 7), backup("D2", "diff", "F1", 6), backup("I2", "incr", "D2", 5), backup("F2", "full", null, 4),
            backup("I3", "incr", "F2", 3), backup("I4", "incr", "I3", 2), backup("D3", "diff", "F2", 1));

    private static List<String> labels(List<BackupManifest> l) {
        List<String> out = new ArrayList<>();
        l.forEach(m -> out.add(m.label()));
        return out;
    }

    private final List<BackupManifest> five = List.of(backup("a", 20, 1), backup("b", 10, 5), backup("c", 5, 9), backup("d", 2, 12),
            backup("e", 0.5, 20));

    @Test
    void noPolicyKeepsEverything() {
        Retention.Plan p = Retention.plan(five, new Retention.Policy(null, null), Set.of(), NOW);
        assertThat(p.expire()).isEmpty();
        assertThat(labels(p.keep())).containsExactly("a", "b", "c", "d", "e");
    }

    @Test
    void countKeepsTheNewestFullBackups() {
        Retention.Plan p = Retention.plan(five, new Retention.Policy(2, null), Set.of(), NOW);
        assertThat(labels(p.keep())).containsExactly("d", "e");
        assertThat(labels(p.expire())).containsExactly("a", "b", "c");
        assertThat(Retention.firstNeededSegment(p.keep(), SEG)).isEqualTo(12);
    }

    @Test
    void daysKeepTheWindowAndTheNewestBackupBeforeIt() {
        Retention.Plan p = Retention.plan(five, new Retention.Policy(null, 7), Set.of(), NOW);
        // c (5 days), d, e are in the window; b (10 days) is needed to restore to 7 days ago.
        assertThat(labels(p.keep())).containsExactly("b", "c", "d", "e");
        assertThat(p.kept().get("b")).contains("before the 7-day window");
        assertThat(Retention.firstNeededSegment(p.keep(), SEG)).isEqualTo(5);
    }

    @Test
    void bothRulesKeepWhatEitherKeeps() {
        Retention.Plan p = Retention.plan(five, new Retention.Policy(4, 1), Set.of(), NOW);
        assertThat(labels(p.keep())).containsExactly("b", "c", "d", "e");
    }

    @Test
    void heldAndNewestBackupsAreAlwaysKept() {
        Retention.Plan p = Retention.plan(five, new Retention.Policy(1, null), Set.of("a"), NOW);
        assertThat(labels(p.keep())).containsExactly("a", "e");
        assertThat(p.kept().get("a")).contains("held");
        assertThat(Retention.firstNeededSegment(p.keep(), SEG)).isEqualTo(1);
    }

    @Test
    void orderIsByStopTimeAsGivenNeverByLabel() {
        // Labels out of time order (e.g. after a clock change): the caller sorts by stop time.
        List<BackupManifest> l = List.of(backup("z", 3, 1), backup("y", 1, 4));
        Retention.Plan p = Retention.plan(l, new Retention.Policy(1, null), Set.of(), NOW);
        assertThat(labels(p.keep())).containsExactly("y");
    }

    @Test
    void nothingKeptMeansNoWalIsRemoved() {
        assertThat(Retention.firstNeededSegment(List.of(), SEG)).isEqualTo(-1);
    }

    @Test
    void fullCountKeepsTheBackupsBuiltOnTheKeptFullBackups() {
        Retention.Plan p = Retention.plan(chains, new Retention.Policy(1, null), Set.of(), NOW);
        assertThat(labels(p.keep())).containsExactly("F2", "I3", "I4", "D3");
        assertThat(labels(p.expire())).containsExactly("F1", "D1", "I1", "D2", "I2");
        assertThat(p.kept().get("I4")).isEqualTo("built on full backup F2, one of the newest 1 full backups");
        p = Retention.plan(chains, new Retention.Policy(2, null), Set.of(), NOW);
        assertThat(p.expire()).isEmpty();
    }

    @Test
    void diffCountExpiresOlderDifferentialsWithTheirIncrementalsAndNeverAFullBackup() {
        Retention.Plan p = Retention.plan(chains, new Retention.Policy(2, null, 1), Set.of(), NOW);
        assertThat(labels(p.expire())).containsExactly("D1", "I1", "D2", "I2");
        assertThat(labels(p.keep())).containsExactly("F1", "F2", "I3", "I4", "D3");
        // diff alone: full backups and incrementals not built on an expired differential stay.
        p = Retention.plan(chains, new Retention.Policy(null, null, 2), Set.of(), NOW);
        assertThat(labels(p.expire())).containsExactly("D1", "I1");
        assertThat(p.kept().get("F1")).contains("retention-diff expires only");
        assertThat(new Retention.Policy(null, null, 2).describe()).isEqualTo("keep the newest 2 differential backups");
    }

    @Test
    void aWindowOrAHoldStillKeepsWhatTheDiffRuleWouldExpire() {
        Retention.Plan p = Retention.plan(chains, new Retention.Policy(1, 6, 1), Set.of("D1"), NOW);
        // D2 (ended 6 days ago, on the window's edge) and I2 are in the window, I1 is the newest before it, D1 is held.
        assertThat(labels(p.keep())).containsExactly("D1", "I1", "D2", "I2", "F2", "I3", "I4", "D3");
        assertThat(labels(p.expire())).containsExactly("F1");
    }
}
