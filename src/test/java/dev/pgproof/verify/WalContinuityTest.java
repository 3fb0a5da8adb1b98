package dev.pgproof.verify;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.wal.TimelineHistory;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** Continuity across timelines: which timeline each segment is read from, and the gaps. */
class WalContinuityTest {
    private static final int SEG = 16 << 20;

    private static Map<Integer, TreeSet<Long>> stored(Object... tliAndSegments) {
        Map<Integer, TreeSet<Long>> m = new TreeMap<>();
        for (int i = 0; i < tliAndSegments.length; i += 2) {
            TreeSet<Long> s = new TreeSet<>();
            for (long x : (long[]) tliAndSegments[i + 1]) {
                s.add(x);
            }
            m.put((Integer) tliAndSegments[i], s);
        }
        return m;
    }

    @Test
    void history_parsesAncestorsAndRejectsNonsense() {
        List<TimelineHistory.Entry> h = TimelineHistory.parse(3, "1\t0/5000000\tno recovery target specified\n\n2\t0/7000100\tbefore 2026\n");
        assertThat(h).containsExactly(new TimelineHistory.Entry(1, 0x5000000L), new TimelineHistory.Entry(2, 0x7000100L));
        assertThatThrownBy(() -> TimelineHistory.parse(2, "3\t0/5000000\tx\n")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> TimelineHistory.parse(2, "1 garbage\n")).hasMessageContaining("line 1");
    }

    @Test
    void gaps_followTheNewestTimelineThroughItsHistory() {
        // Timeline 1 has 3..7 (and 8, written after the switch by an old primary); timeline 2 starts in segment 7
        // (switch point 0/7000100: segment 7 is read from timeline 2) and has 7..9.
        Map<Integer, TreeSet<Long>> s = stored(1, new long[] {3, 4, 5, 6, 7, 8}, 2, new long[] {7, 8, 9});
        WalContinuity c = new WalContinuity(SEG, s);
        List<TimelineHistory.Entry> chain = WalContinuity.chain(2, List.of(new TimelineHistory.Entry(1, 0x7000100L)));
        assertThat(c.timelineFor(6, chain, true)).isEqualTo(1);
        assertThat(c.timelineFor(7, chain, true)).isEqualTo(2);
        assertThat(c.newest(chain, true)).isEqualTo(9);
        assertThat(c.gaps(3, 9, chain, true)).isEmpty();

        // Without segment 7 of timeline 2 there is a gap, though timeline 1 has a segment 7.
        s.get(2).remove(7L);
        assertThat(c.gaps(3, 9, chain, true)).containsExactly(new WalContinuity.Gap("000000020000000000000007", "000000020000000000000007", 1));
    }

    @Test
    void gaps_areRunsOfMissingSegments() {
        WalContinuity c = new WalContinuity(SEG, stored(1, new long[] {1, 2, 5, 6, 9}));
        List<TimelineHistory.Entry> chain = WalContinuity.chain(1, List.of());
        assertThat(c.newest(chain, true)).isEqualTo(9);
        assertThat(c.gaps(2, 9, chain, true)).containsExactly(
                new WalContinuity.Gap("000000010000000000000003", "000000010000000000000004", 2),
                new WalContinuity.Gap("000000010000000000000007", "000000010000000000000008", 2));
    }

    @Test
    void gaps_withoutHistoryTakeTheHighestTimelineThatHasTheSegment() {
        WalContinuity c = new WalContinuity(SEG, stored(1, new long[] {3, 4, 5}, 2, new long[] {5, 6}));
        List<TimelineHistory.Entry> chain = WalContinuity.chain(2, null);
        assertThat(c.timelineFor(4, chain, false)).isEqualTo(1);
        assertThat(c.timelineFor(5, chain, false)).isEqualTo(2);
        assertThat(c.gaps(3, c.newest(chain, false), chain, false)).isEmpty();
    }
}
