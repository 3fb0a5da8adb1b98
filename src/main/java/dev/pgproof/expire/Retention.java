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
 *   <li>{@code full = N}: the newest N full backups are kept, with the differential and incremental
 *       backups built on them (as with pgBackRest, a backup goes with the full backup it was built on).</li>
 *   <li>{@code diff = N}: only the newest N differential backups are kept by the rule above; an older
 *       differential goes, and so does every incremental built on it. Full backups are not touched.</li>
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
    public record Policy(Integer full, Integer days, Integer diff) {
        public Policy(Integer full, Integer days) {
            this(full, days, null);
        }

        public boolean isSet() {
            return full != null || days != null || diff != null;
        }

        public String describe() {
            List<String> parts = new ArrayList<>();
            if (full != null) {
                parts.add("the newest " + full + " full backup" + (full == 1 ? "" : "s"));
            }
            if (diff != null) {
                parts.add("the newest " + diff + " differential backup" + (diff == 1 ? "" : "s"));
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
        Map<String, BackupManifest> byLabel = new java.util.HashMap<>();
        for (BackupManifest m : oldestFirst) {
            byLabel.put(m.label(), m);
        }
        // diff = N: the differentials beyond the newest N, and the incrementals built on them.
        Set<String> expiredDiffs = new java.util.HashSet<>();
        if (policy.diff() != null) {
            int seen = 0;
            for (int i = n - 1; i >= 0; i--) {
                BackupManifest m = oldestFirst.get(i);
                if ("diff".equals(m.type()) && ++seen > policy.diff()) {
                    expiredDiffs.add(m.label());
                }
            }
        }
        if (policy.full() == null && policy.days() == null) {
            for (BackupManifest m : oldestFirst) {
                if (!policy.isSet()) {
                    why.put(m.label(), "no retention set");
                } else if (!"full".equals(m.type()) && chainPasses(m, expiredDiffs, byLabel) == null) {
                    why.put(m.label(), "neither an older differential than the newest " + policy.diff() + " nor built on one");
                } else if ("full".equals(m.type())) {
                    why.put(m.label(), "a full backup (retention-diff expires only differential and incremental backups)");
                }
            }
        }
        if (n > 0) {
            why.putIfAbsent(oldestFirst.get(n - 1).label(), "newest backup");
        }
        if (policy.full() != null) {
            Set<String> fulls = new java.util.HashSet<>();
            for (int i = n - 1; i >= 0 && fulls.size() < policy.full(); i--) {
                BackupManifest m = oldestFirst.get(i);
                if ("full".equals(m.type())) {
                    fulls.add(m.label());
                    why.putIfAbsent(m.label(), "one of the newest " + policy.full() + " full backups");
                }
            }
            for (BackupManifest m : oldestFirst) {
                if (!"full".equals(m.type()) && chainPasses(m, expiredDiffs, byLabel) == null) {
                    String root = rootFull(m, byLabel);
                    if (root != null && fulls.contains(root)) {
                        why.putIfAbsent(m.label(), "built on full backup " + root + ", one of the newest " + policy.full() + " full backups");
                    }
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

    /** The first backup of m's chain (m itself, then its priors) that is in the set, or null. */
    private static String chainPasses(BackupManifest m, Set<String> set, Map<String, BackupManifest> byLabel) {
        for (BackupManifest b = m; b != null; b = b.prior() == null ? null : byLabel.get(b.prior())) {
            if (set.contains(b.label())) {
                return b.label();
            }
        }
        return null;
    }

    /** The full backup m's chain starts from, or null when a prior is no longer complete (expired). */
    private static String rootFull(BackupManifest m, Map<String, BackupManifest> byLabel) {
        BackupManifest b = m;
        for (int guard = 0; b != null && guard < 10_000; guard++) {
            if ("full".equals(b.type())) {
                return b.label();
            }
            b = b.prior() == null ? null : byLabel.get(b.prior());
        }
        return null;
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
