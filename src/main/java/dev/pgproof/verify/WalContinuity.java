package dev.pgproof.verify;

import dev.pgproof.wal.TimelineHistory;
import dev.pgproof.wal.WalFileName;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Which timeline each segment number is read from when recovery follows a timeline to its end, and
 * which segments are missing between a backup's start and the newest archived segment.
 *
 * <p>Recovery along timeline T reads segment s from the first ancestor in T's history that was
 * left after s began ({@code s < segment of its switch point}), else from T itself: the segment
 * that holds a switch point is read from the new timeline, whose first segment is a copy of its
 * parent's. When a history file is missing, each segment is taken from the highest timeline at or
 * below T that has it (and verify reports the missing history).
 */
public final class WalContinuity {
    private final int segSize;
    /** Stored segments as timeline -> segment numbers. */
    private final Map<Integer, TreeSet<Long>> stored;

    public WalContinuity(int segSize, Map<Integer, TreeSet<Long>> stored) {
        this.segSize = segSize;
        this.stored = stored;
    }

    /** A run of missing segments, named on the timeline recovery would read them from. */
    public record Gap(String first, String last, long count) {}

    /** The chain of (timeline, end LSN) recovery follows to reach {@code target}; null history means unknown. */
    public static List<TimelineHistory.Entry> chain(int target, List<TimelineHistory.Entry> history) {
        List<TimelineHistory.Entry> c = new ArrayList<>(history == null ? List.of() : history);
        c.add(new TimelineHistory.Entry(target, -1L)); // -1: never left (unsigned max)
        return c;
    }

    /** The timeline segment {@code s} is read from along {@code chain}; {@code known} false when the history is missing. */
    public int timelineFor(long s, List<TimelineHistory.Entry> chain, boolean known) {
        int target = chain.get(chain.size() - 1).timeline();
        if (!known) {
            int best = target;
            for (Map.Entry<Integer, TreeSet<Long>> e : stored.entrySet()) {
                if (e.getKey() <= target && e.getValue().contains(s)) {
                    best = e.getKey();
                }
            }
            return stored.getOrDefault(target, new TreeSet<>()).contains(s) ? target : best;
        }
        for (TimelineHistory.Entry e : chain) {
            if (e.switchLsn() == -1L || s < WalFileName.segmentOf(e.switchLsn(), segSize)) {
                return e.timeline();
            }
        }
        return target;
    }

    /** The newest segment number recovery along the chain can read, or -1 if none. */
    public long newest(List<TimelineHistory.Entry> chain, boolean known) {
        long best = -1;
        Set<Integer> tlis = new java.util.HashSet<>();
        chain.forEach(e -> tlis.add(e.timeline()));
        for (Map.Entry<Integer, TreeSet<Long>> e : stored.entrySet()) {
            if (!known && e.getKey() > chain.get(chain.size() - 1).timeline() || known && !tlis.contains(e.getKey())) {
                continue;
            }
            for (Long s : e.getValue().descendingSet()) {
                if (s <= best) {
                    break;
                }
                if (timelineFor(s, chain, known) == e.getKey()) {
                    best = s;
                    break;
                }
            }
        }
        return best;
    }

    /** The missing runs between segment {@code from} and {@code to} (inclusive) along the chain. */
    public List<Gap> gaps(long from, long to, List<TimelineHistory.Entry> chain, boolean known) {
        List<Gap> out = new ArrayList<>();
        long runStart = -1;
        int runTli = 0;
        for (long s = from; s <= to + 1; s++) {
            boolean missing = false;
            int tli = 0;
            if (s <= to) {
                tli = timelineFor(s, chain, known);
                missing = !stored.getOrDefault(tli, new TreeSet<>()).contains(s);
            }
            if (missing && runStart < 0) {
                runStart = s;
                runTli = tli;
            } else if (!missing && runStart >= 0) {
                out.add(new Gap(WalFileName.segmentName(runTli, runStart, segSize), WalFileName.segmentName(timelineFor(s - 1, chain, known), s - 1,
                        segSize), s - runStart));
                runStart = -1;
            }
        }
        return out;
    }
}
