package dev.pgproof.wal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pgproof.io.Compression;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** Diverging timelines: a parent that kept writing past its child's switch point, versus a clean promotion. */
class TimelineForksTest {
    private static final int SEG = 16 * 1024 * 1024;

    private static TreeMap<String, List<WalArchive.StoredWal>> archive(String... names) {
        TreeMap<String, List<WalArchive.StoredWal>> all = new TreeMap<>();
        for (String n : names) {
            all.put(n, List.of(new WalArchive.StoredWal("main/wal/x/" + n + "-sha.zst", n, "sha", Compression.ZSTD, 1)));
        }
        return all;
    }

    @Test
    void aParentThatKeepsWritingPastTheSwitchIsAForkAndMakesLatestAmbiguous() {
        // Timeline 2 left timeline 1 in segment 5; timeline 1 went on to segment 7.
        var all = archive("000000010000000000000004", "000000010000000000000005", "000000010000000000000006", "000000010000000000000007",
                "00000002.history", "000000020000000000000005", "000000020000000000000006");
        Map<Integer, List<TimelineHistory.Entry>> h = Map.of(2, List.of(new TimelineHistory.Entry(1, 5L * SEG + 0x108)));
        List<TimelineForks.Fork> forks = TimelineForks.forks(all, h, SEG);
        assertThat(forks).hasSize(1);
        assertThat(forks.get(0).describe()).isEqualTo("timeline 2 branches off timeline 1 at 0/5000108, but timeline 1 has WAL past that point "
                + "(up to 000000010000000000000007)");
        assertThat(forks.get(0).childLast()).isEqualTo("000000020000000000000006");
        assertThat(TimelineForks.latestFrom(1, all)).isEqualTo(2);
        assertThat(TimelineForks.ambiguousForLatest(1, all, h, SEG)).isEqualTo(forks.get(0));
        // A backup on timeline 2 recovers along 2 only: nothing ambiguous.
        assertThat(TimelineForks.ambiguousForLatest(2, all, h, SEG)).isNull();
    }

    @Test
    void aCleanPromotionIsNoFork() {
        // The old primary stopped in the switch segment (its copy of segment 5, or a .partial): a failover or a PITR.
        var all = archive("000000010000000000000004", "000000010000000000000005", "000000010000000000000005.partial", "00000002.history",
                "000000020000000000000005", "000000020000000000000006");
        Map<Integer, List<TimelineHistory.Entry>> h = Map.of(2, List.of(new TimelineHistory.Entry(1, 5L * SEG + 0x108)));
        assertThat(TimelineForks.forks(all, h, SEG)).isEmpty();
        assertThat(TimelineForks.ambiguousForLatest(1, all, h, SEG)).isNull();
    }
}
