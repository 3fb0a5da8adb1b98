package dev.pgproof.expire;

import dev.pgproof.repo.BackupManifest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Which backups a retention policy keeps. Pure: backups in, decision out, so it is unit-tested
 * without a repository.
 *
 * <ul>
 *   <li>{@code full = N}: the newest N full backups are kept.</li>
 *   <li>{@code days = D}: every backup that ended within the last D days is kept, and the newest one
 *       that ended before that, so that any time in the window can be restored.</li>
 *   <li>Both: a backup either rule keeps is kept. Neither: nothing expires.</li>
 *   <li>The newest backup, and every backup that is held (being restored or proven), is always kept.</li>
 * </ul>
 * Backups are ordered by their stop time (from the manifest), never by timeline or label.
 */
public final class Retention {
    private Retention() {}

    /** A retention policy; null means "not set". */
    public record Policy(Integer full, Integer days) {
        public boolean isSet() {
            return full != null || days != null;
        }

        public String describe() {
            List<String> parts = new ArrayList<>();
            if (full != null) {
                parts.add("the newest " + full + " full backup" + (full == 1 ? "" : "s"));
            }
            if (days != null) {
                parts.add("a recovery window of " + days + " day" + (days == 1 ? "" : "s"));
            }
            return parts.isEmpty() ? "no retention set" : "keep " + String.join(" and ", parts);
        }
    }

    /** The decision: each kept backup with why, and the backups to expire (both oldest first). */
    public record Plan(Map<String, String> kept, List<BackupManifest> keep, List<BackupManifest> expire) {}

    /**
     * @param oldestFirst complete backups of one cluster, oldest first by stop time
     * @param held        labels that readers hold
     */
    public static Plan plan(List<BackupManifest> oldestFirst, Policy policy, Set<String> held, Instant now) {
        Map<String, String> why = new LinkedHashMap<>();
        int n = oldestFirst.size();
        if (!policy.isSet()) {
            for (BackupManifest m : oldestFirst) {
                why.put(m.label(), "no retention set");
            }
        }
        if (n > 0) {
            why.putIfAbsent(oldestFirst.get(n - 1).label(), "newest backup");
        }
        if (policy.full() != null) {
            int seen = 0;
            for (int i = n - 1; i >= 0 && seen < policy.full(); i--) {
                BackupManifest m = oldestFirst.get(i);
                if ("full".equals(m.type())) {
                    seen++;
                    why.putIfAbsent(m.label(), "one of the newest " + policy.full() + " full backups");
                }
            }
        }
        if (policy.days() != null) {
            Instant windowStart = now.minus(Duration.ofDays(policy.days()));
            for (int i = n - 1; i >= 0; i--) {
                BackupManifest m = oldestFirst.get(i);
                if (!Instant.parse(m.stopTime()).isBefore(windowStart)) {
                    why.putIfAbsent(m.label(), "ended within the last " + policy.days() + " days");
                } else {
                    why.putIfAbsent(m.label(), "the newest backup before the " + policy.days() + "-day window (restores its start)");
                    break;
                }
            }
        }
        for (BackupManifest m : oldestFirst) {
            if (held.contains(m.label())) {
                why.putIfAbsent(m.label(), "held by a restore or prove in progress");
            }
        }
        List<BackupManifest> keep = new ArrayList<>();
        List<BackupManifest> expire = new ArrayList<>();
        Map<String, String> kept = new LinkedHashMap<>();
        for (BackupManifest m : oldestFirst) {
            if (why.containsKey(m.label())) {
                keep.add(m);
                kept.put(m.label(), why.get(m.label()));
            } else {
                expire.add(m);
            }
        }
        return new Plan(kept, keep, expire);
    }

    /**
     * The WAL segment number before which no kept backup needs WAL: recovery from a backup reads WAL
     * forward from the segment of its start LSN, on its timeline or later ones. -1 when nothing is kept
     * (then no WAL is removed).
     */
    public static long firstNeededSegment(List<BackupManifest> keep, int segSize) {
        long min = Long.MAX_VALUE;
        for (BackupManifest m : keep) {
            long lsn = dev.pgproof.wal.WalFileName.parseLsn(m.startLsn());
            min = Math.min(min, dev.pgproof.wal.WalFileName.segmentOf(lsn, segSize));
        }
        return keep.isEmpty() ? -1 : min;
    }
}
