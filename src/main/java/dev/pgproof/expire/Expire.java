package dev.pgproof.expire;

import dev.pgproof.lock.RepoLock;
import dev.pgproof.repo.BackupCatalog;
import dev.pgproof.repo.BackupManifest;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.Log;
import dev.pgproof.util.Sizes;
import dev.pgproof.util.TestHooks;
import dev.pgproof.wal.StreamedWal;
import dev.pgproof.wal.WalArchive;
import dev.pgproof.wal.WalFileName;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Removes what a retention policy no longer keeps: expired backups, backups left incomplete by an
 * interrupted run, and WAL older than every kept backup needs. The caller holds the cluster's
 * "backup" lock, so no backup is in progress; backups held by a restore or prove are kept.
 *
 * <p>Order, so that a crash at any point leaves a consistent repository: for each backup its
 * completion marker first (from then on it is an incomplete backup nobody restores, and the next
 * run removes the rest), then its manifests, then its data; WAL only after the backups, and only
 * below the first segment the oldest kept backup needs.
 */
public final class Expire {
    private final Storage storage;
    private final RepoLayout layout;
    private final int segSize;

    public Expire(Storage storage, RepoLayout layout, int walSegmentSize) {
        this.storage = storage;
        this.layout = layout;
        this.segSize = walSegmentSize;
    }

    /** What was (or, dry, would be) removed. */
    public record Result(List<String> expiredBackups, List<String> removedIncomplete, long walFilesRemoved, String walRemovedFrom,
            String walRemovedTo, long bytesRemoved, String windowFromBackup, String windowFromTime, List<String> leftoversRemoved) {}

    public Result run(Retention.Policy policy, boolean dryRun) throws IOException {
        String verb = dryRun ? "would remove" : "removing";
        BackupCatalog catalog = new BackupCatalog(storage, layout);
        List<BackupCatalog.Entry> entries = catalog.list();
        List<BackupManifest> complete = new ArrayList<>();
        List<String> incomplete = new ArrayList<>();
        for (BackupCatalog.Entry e : entries) {
            if (e.complete()) {
                complete.add(e.manifest());
            } else if (e.damaged()) {
                Log.warn("backup %s of cluster \"%s\" is %s: expire keeps it for inspection (restore the damaged object from a copy of the "
                        + "repository, or remove the backup's directory by hand)", e.label(), layout.cluster(), e.problem());
            } else {
                incomplete.add(e.label()); // also expired remains: what no kept backup references any more goes
            }
        }
        complete.sort(BackupCatalog.BY_STOP_TIME);
        Set<String> held = new HashSet<>();
        for (RepoLock.Held h : RepoLock.holds(storage, layout, !dryRun)) {
            held.add(h.label());
            Log.info("backup %s is held by %s: it is kept", h.label(), h.lease().describe());
        }
        Retention.Plan plan = Retention.plan(complete, policy, held, Instant.now());
        Log.info("cluster \"%s\": %d complete backup%s; policy: %s", layout.cluster(), complete.size(), complete.size() == 1 ? "" : "s",
                policy.describe());
        for (Map.Entry<String, String> k : plan.kept().entrySet()) {
            Log.info("keeping backup %s (%s)", k.getKey(), k.getValue());
        }

        // Only objects under the backups to remove can go, and of those none a kept backup references (pieces, the
        // bases XOR-stored pieces are rebuilt from, block hashes). Kept manifests stream past one at a time and
        // only those objects are remembered: memory follows what is removed, not the size of the repository.
        Map<String, List<Storage.ObjectInfo>> doomed = new java.util.LinkedHashMap<>();
        for (BackupManifest m : plan.expire()) {
            doomed.put(m.label(), storage.list(layout.backupDir(m.label())));
        }
        for (String label : incomplete) {
            if (!held.contains(label)) {
                doomed.put(label, storage.list(layout.backupDir(label)));
            }
        }
        Set<String> candidates = new HashSet<>();
        doomed.values().forEach(objects -> objects.forEach(o -> candidates.add(o.key())));
        Set<String> referenced = new HashSet<>();
        for (BackupManifest m : plan.keep()) {
            referenced.addAll(referencedAmong(catalog, m.label(), candidates));
        }

        // What an expiring backup references under the others, read while its marker still stands: needed if a reader
        // puts a hold on it while it goes (an incremental's reader needs its full backup's objects too).
        List<BackupManifest> going = new ArrayList<>();
        Map<String, Set<String>> goingRefs = new java.util.HashMap<>();
        List<BackupManifest> heldMeanwhile = new ArrayList<>();
        for (BackupManifest m : plan.expire()) {
            if (!dryRun && heldNow(m.label())) {
                Log.info("backup %s was put on hold meanwhile: it is kept", m.label());
                referenced.addAll(referencedAmong(catalog, m.label(), candidates));
                heldMeanwhile.add(m);
                continue;
            }
            going.add(m);
            if (!dryRun) {
                goingRefs.put(m.label(), referencedAmong(catalog, m.label(), candidates));
            }
        }
        // Withdrawn first, all of them, and only then are holds judged again: a reader (restore, prove) puts its hold,
        // then checks that the marker still stands. So either the reader finds the marker gone and stops, or this
        // finds its hold, and the backup stays readable with every object it references (ours are in "referenced").
        List<BackupManifest> stillHeld = new ArrayList<>();
        if (!dryRun && !going.isEmpty()) {
            TestHooks.pause("expire-before-withdraw", going.get(going.size() - 1).label());
            for (BackupManifest m : going) {
                catalog.markExpired(m.label());   // before the marker goes: the remains are never taken for a backup to resume
                storage.delete(layout.completeMarker(m.label()));
            }
            for (BackupManifest m : going) {
                if (heldNow(m.label())) {
                    Log.info("backup %s was put on hold by a reader while it was being expired: it is withdrawn (no longer listed as "
                            + "complete), but its objects and those it references stay until the reader is done; the next expire removes "
                            + "them", m.label());
                    stillHeld.add(m);
                    heldMeanwhile.add(m);
                    referenced.addAll(goingRefs.get(m.label()));
                }
            }
        }

        long bytes = 0;
        List<String> expired = new ArrayList<>();
        for (BackupManifest m : going) {
            if (stillHeld.contains(m)) {
                continue;
            }
            Log.info("%s backup %s (ended %s, %s stored)", verb, m.label(), m.stopTime(), Sizes.bytes(m.storedSize()));
            bytes += removeBackup(m.label(), doomed.get(m.label()), referenced, dryRun);
            expired.add(m.label());
        }
        List<String> removedIncomplete = new ArrayList<>();
        for (String label : incomplete) {
            if (held.contains(label)) {
                continue;
            }
            Log.info("%s %s %s (%s)", verb, "incomplete backup", label, "interrupted, or the remains of an expired one; only what no kept "
                    + "backup references");
            bytes += removeBackup(label, doomed.get(label), referenced, dryRun);
            removedIncomplete.add(label);
        }

        List<BackupManifest> needWal = new ArrayList<>(plan.keep());
        needWal.addAll(heldMeanwhile);   // its reader needs its WAL
        long first = Retention.firstNeededSegment(needWal, segSize);
        long walFiles = 0;
        String from = null;
        String to = null;
        if (first >= 0) {
            TreeMap<String, List<WalArchive.StoredWal>> all = new WalArchive(storage, layout).listAll();
            for (Map.Entry<String, List<WalArchive.StoredWal>> e : all.entrySet()) {
                String name = e.getKey();
                WalFileName.Kind kind = WalFileName.kindOf(name);
                if (kind == WalFileName.Kind.HISTORY || kind == null) {
                    continue; // history files are tiny and every later timeline needs them
                }
                if (WalFileName.segmentNumber(name.substring(0, 24), segSize) >= first) {
                    continue;
                }
                for (WalArchive.StoredWal w : e.getValue()) {
                    if (!dryRun) {
                        storage.delete(w.key());
                    }
                    bytes += w.storedSize();
                    walFiles++;
                }
                from = from == null ? name : from;
                to = name;
            }
            if (walFiles > 0) {
                Log.info("%s %d WAL file%s from %s to %s: older than the start of the oldest kept backup (%s, WAL %s)", verb, walFiles,
                        walFiles == 1 ? "" : "s", from, to, plan.keep().get(0).label(), plan.keep().get(0).startWal());
            }
            // wal-receive's partial copies: of a segment that is archived whole, or older than any kept backup needs.
            int partials = 0;
            for (StreamedWal.Partial p : new StreamedWal(storage, layout).all()) {
                if (all.containsKey(p.segment()) || WalFileName.segmentNumber(p.segment(), segSize) < first) {
                    if (!dryRun) {
                        storage.delete(p.key());
                    }
                    partials++;
                }
            }
            if (partials > 0) {
                Log.info("%s %d streamed partial cop%s of segments archived whole or older than the oldest kept backup", verb, partials,
                        partials == 1 ? "y" : "ies");
            }
        }
        long[] leftoverBytes = new long[1];
        List<String> leftovers = removeLeftovers(dryRun, verb, leftoverBytes);
        bytes += leftoverBytes[0];
        String windowBackup = plan.keep().isEmpty() ? null : plan.keep().get(0).label();
        String windowTime = plan.keep().isEmpty() ? null : plan.keep().get(0).stopTime();
        if (windowBackup == null) {
            Log.info("no complete backup: nothing can be restored yet");
        } else {
            Log.info("%s: the restore window %s from %s (end of backup %s) to the end of the archive; %s %s", layout.cluster(),
                    dryRun ? "would remain" : "is", windowTime, windowBackup, dryRun ? "would free" : "freed", Sizes.bytes(bytes));
        }
        return new Result(expired, removedIncomplete, walFiles, from, to, bytes, windowBackup, windowTime, leftovers);
    }

    /**
     * Temporary files of writes that a kill interrupted (posix), older than {@link RepoLayout#LEFTOVER_AGE}: no write in
     * progress is that old (archive-push, which runs without the lock, takes seconds), so they are garbage.
     */
    private List<String> removeLeftovers(boolean dryRun, String verb, long[] removedBytes) throws IOException {
        List<String> out = new ArrayList<>();
        long bytes = 0;
        Instant old = Instant.now().minus(RepoLayout.LEFTOVER_AGE);
        for (Storage.Leftover l : storage.leftovers(layout.cluster() + "/")) {
            if (!l.modified().isBefore(old)) {
                continue;
            }
            if (!dryRun) {
                storage.deleteLeftover(l.key());
            }
            out.add(l.key());
            bytes += l.size();
        }
        if (!out.isEmpty()) {
            Log.info("%s %d temporary file%s (%s) left by interrupted writes more than %d minutes ago", verb, out.size(), out.size() == 1 ? "" : "s",
                    Sizes.bytes(bytes), RepoLayout.LEFTOVER_AGE.toMinutes());
        }
        removedBytes[0] = bytes;
        return out;
    }

    /** The objects among candidates that backup label (complete) references, its files streamed from its manifest. */
    private static Set<String> referencedAmong(BackupCatalog catalog, String label, Set<String> candidates) throws IOException {
        return catalog.objectKeysAmong(label, candidates);
    }

    private boolean heldNow(String label) throws IOException {
        for (RepoLock.Held h : RepoLock.holds(storage, layout, false)) {
            if (h.label().equals(label)) {
                return true;
            }
        }
        return false;
    }

    /** Marker, then manifests, then data: a crash midway leaves an incomplete backup the next run removes. */
    private long removeBackup(String label, List<Storage.ObjectInfo> objects, Set<String> referenced, boolean dryRun) throws IOException {
        long bytes = 0;
        for (Storage.ObjectInfo o : objects) {
            bytes += referenced.contains(o.key()) ? 0 : o.size();
        }
        if (dryRun) {
            return bytes;
        }
        boolean kept = objects.stream().anyMatch(o -> referenced.contains(o.key()));
        if (kept) {
            // Written before the marker goes: from then on the remains are never taken for an interrupted backup to resume.
            new BackupCatalog(storage, layout).markExpired(label);
        }
        storage.delete(layout.completeMarker(label));
        TestHooks.pause("expire-after-marker", label);
        new BackupCatalog(storage, layout).deleteManifest(label);
        for (Storage.ObjectInfo o : objects) {
            if (!referenced.contains(o.key()) && !o.key().equals(layout.expiredMarker(label))) {
                storage.delete(o.key());
            }
        }
        if (!kept) {
            storage.delete(layout.expiredMarker(label));
        }
        return bytes;
    }
}
