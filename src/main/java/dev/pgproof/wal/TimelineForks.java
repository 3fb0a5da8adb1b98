package dev.pgproof.wal;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Diverging timelines in one cluster's archive: a timeline's history says it left its parent at an
 * LSN, yet the parent has archived segments past the one holding that LSN. That happens when a copy
 * restored from the repository is promoted and archives under the same cluster name while the
 * original keeps writing (or after a failover where the old primary archived past the switch).
 * PostgreSQL's recovery_target_timeline = 'latest' then follows the highest timeline, which may be
 * the wrong server's history; so restore refuses to guess and verify reports it.
 */
public final class TimelineForks {
    private TimelineForks() {}

    /**
     * A fork: timeline {@code child} left {@code parent} at {@code switchLsn}, while the parent has WAL up
     * to {@code parentLast} past it; {@code childLast} is the child's newest segment (null if none).
     */
    public record Fork(int child, int parent, long switchLsn, String parentLast, String childLast, String historyKey) {
        public String describe() {
            return "timeline " + child + " branches off timeline " + parent + " at " + WalFileName.formatLsn(switchLsn) + ", but timeline "
                    + parent + " has WAL past that point (up to " + parentLast + ")";
        }
    }

    /** Every readable, well-formed history file of the archive by timeline (verify reports the others). */
    public static Map<Integer, List<TimelineHistory.Entry>> histories(WalArchive archive, Map<String, List<WalArchive.StoredWal>> all)
            throws IOException {
        Map<Integer, List<TimelineHistory.Entry>> out = new HashMap<>();
        for (Map.Entry<String, List<WalArchive.StoredWal>> e : all.entrySet()) {
            if (WalFileName.kindOf(e.getKey()) != WalFileName.Kind.HISTORY) {
                continue;
            }
            int tli = WalFileName.timeline(e.getKey());
            try {
                String text = new String(archive.readVerified(e.getValue().get(0)), StandardCharsets.UTF_8);
                out.put(tli, TimelineHistory.parse(tli, text));
            } catch (WalArchive.CorruptWalException | IllegalArgumentException bad) {
                // damaged or malformed: verify reports it; no fork is read from it
            }
        }
        return out;
    }

    /** The forks of an archive, by child timeline. */
    public static List<Fork> forks(Map<String, List<WalArchive.StoredWal>> all, Map<Integer, List<TimelineHistory.Entry>> histories,
            int segSize) {
        Map<Integer, Long> newest = new HashMap<>();
        for (String name : all.keySet()) {
            if (WalFileName.kindOf(name) == WalFileName.Kind.SEGMENT) {
                newest.merge(WalFileName.timeline(name), WalFileName.segmentNumber(name, segSize), Math::max);
            }
        }
        List<Fork> out = new ArrayList<>();
        new java.util.TreeMap<>(histories).forEach((child, h) -> {
            if (h.isEmpty()) {
                return;
            }
            TimelineHistory.Entry parent = h.get(h.size() - 1);
            Long parentNewest = newest.get(parent.timeline());
            if (parentNewest == null || parentNewest <= WalFileName.segmentOf(parent.switchLsn(), segSize)) {
                return;
            }
            Long childNewest = newest.get(child);
            String historyKey = all.get(String.format("%08X.history", child)).get(0).key();
            out.add(new Fork(child, parent.timeline(), parent.switchLsn(), WalFileName.segmentName(parent.timeline(), parentNewest, segSize),
                    childNewest == null ? null : WalFileName.segmentName(child, childNewest, segSize), historyKey));
        });
        return out;
    }

    /**
     * The fork that makes recovery to the latest timeline ambiguous for a backup on {@code timeline}, or null:
     * PostgreSQL follows the newest timeline found by probing history files upwards from the backup's; every
     * step of that path must be a clean switch (the parent stopped at the switch point).
     */
    public static Fork ambiguousForLatest(int timeline, Map<String, List<WalArchive.StoredWal>> all,
            Map<Integer, List<TimelineHistory.Entry>> histories, int segSize) {
        int latest = timeline;
        while (all.containsKey(String.format("%08X.history", latest + 1))) {
            latest++;
        }
        if (latest == timeline) {
            return null;
        }
        List<TimelineHistory.Entry> path = histories.get(latest);
        java.util.Set<Integer> onPath = new java.util.HashSet<>();
        onPath.add(latest);
        if (path != null) {
            path.forEach(e -> onPath.add(e.timeline()));
        }
        for (Fork f : forks(all, histories, segSize)) {
            if (onPath.contains(f.child()) && onPath.contains(f.parent()) && f.parent() >= timeline) {
                return f;
            }
        }
        return null;
    }

    /** The newest timeline PostgreSQL's 'latest' finds from {@code timeline}, probing history files upwards. */
    public static int latestFrom(int timeline, Map<String, List<WalArchive.StoredWal>> all) {
        int latest = timeline;
        while (all.containsKey(String.format("%08X.history", latest + 1))) {
            latest++;
        }
        return latest;
    }
}
