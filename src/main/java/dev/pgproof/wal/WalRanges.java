package dev.pgproof.wal;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Continuity of archived WAL segments. Segment numbers are counted across timelines from a given
 * timeline on: after a promotion the new timeline continues the numbering of its parent.
 */
public final class WalRanges {
    private WalRanges() {}

    /** A run of consecutive segment numbers, inclusive. */
    public record Range(long first, long last) {}

    /** Segment numbers archived on timelines at or above {@code fromTimeline}. */
    public static TreeSet<Long> segments(Map<String, List<WalArchive.StoredWal>> all, int segSize, int fromTimeline) {
        TreeSet<Long> segs = new TreeSet<>();
        for (String name : all.keySet()) {
            if (WalFileName.kindOf(name) == WalFileName.Kind.SEGMENT && Integer.compareUnsigned(WalFileName.timeline(name), fromTimeline) >= 0) {
                segs.add(WalFileName.segmentNumber(name, segSize));
            }
        }
        return segs;
    }

    /** The runs of consecutive segments in a set. */
    public static List<Range> ranges(TreeSet<Long> segs) {
        List<Range> out = new ArrayList<>();
        Long start = null;
        Long prev = null;
        for (long s : segs) {
            if (start == null) {
                start = s;
            } else if (s != prev + 1) {
                out.add(new Range(start, prev));
                start = s;
            }
            prev = s;
        }
        if (start != null) {
            out.add(new Range(start, prev));
        }
        return out;
    }

    /** Timelines of all archived segments, for display. */
    public static TreeSet<Integer> timelines(Map<String, List<WalArchive.StoredWal>> all) {
        TreeSet<Integer> t = new TreeSet<>();
        for (String name : all.keySet()) {
            if (WalFileName.kindOf(name) == WalFileName.Kind.SEGMENT) {
                t.add(WalFileName.timeline(name));
            }
        }
        return t;
    }
}
