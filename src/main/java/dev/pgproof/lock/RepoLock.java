package dev.pgproof.lock;

import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * A lock or a hold kept in the repository itself (no shared file system is assumed, so it works the
 * same on S3). Created with a no-replace write, so two processes cannot both create it; renewed by a
 * background thread while held; removed on close. A stale lock (holder gone, or lease run out) is
 * replaced and reported; a live one is never taken over.
 *
 * <p>Exclusive locks: "backup" (backup and expire: expire must not see a backup in progress as
 * abandoned) and "prove". Holds: one per reader of a backup (restore, prove); expire skips held
 * backups.
 */
public final class RepoLock implements AutoCloseable {
    /** How long a lease lasts without renewal; renewed every third of it. */
    public static final Duration LEASE = Duration.ofMinutes(10);

    private final Storage storage;
    private final String key;
    private volatile Lease lease;
    private volatile boolean lost;
    private final ScheduledExecutorService renewer;

    private RepoLock(Storage storage, String key, Lease lease) {
        this.storage = storage;
        this.key = key;
        this.lease = lease;
        this.renewer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "lock-renewer");
            t.setDaemon(true);
            return t;
        });
        long every = LEASE.toSeconds() / 3;
        renewer.scheduleAtFixedRate(this::renew, every, every, TimeUnit.SECONDS);
    }

    /**
     * Takes the cluster's exclusive lock {@code name} for {@code command}, or fails at once naming
     * the holder.
     */
    public static RepoLock exclusive(Storage storage, RepoLayout layout, String name, String command) {
        String key = layout.lock(name);
        Lease mine = Lease.mine(command, LEASE);
        for (int attempt = 0; attempt < 3; attempt++) {
            try {
                try {
                    mine.write(storage, key, true);
                    return new RepoLock(storage, key, mine);
                } catch (FileAlreadyExistsException e) {
                    // held, or stale: look below
                }
                Optional<Lease> holder = Lease.read(storage, key);
                if (holder.isEmpty()) {
                    continue; // released between our write and our read
                }
                Optional<String> stale = holder.get().staleReason(Instant.now());
                if (stale.isEmpty()) {
                    throw new PgproofException(ExitCode.LOCKED, "cluster \"" + layout.cluster() + "\" is locked by " + holder.get().describe()
                            + ": " + command + " cannot run at the same time",
                            "wait for it to finish; the lock is " + key + " in " + storage.describe(),
                            "a lock whose holder has died is cleared automatically (at once on the same host, after its lease of "
                                    + LEASE.toMinutes() + " minutes elsewhere); if you are sure no pgproof runs, delete that object");
                }
                Log.warn("cluster \"%s\": clearing a stale %s lock held by %s: %s", layout.cluster(), name, holder.get().describe(),
                        stale.get());
                deleteIfSame(storage, key, holder.get());
            } catch (dev.pgproof.storage.RepositoryFullException e) {
                throw new PgproofException(ExitCode.REPOSITORY, "repository \"" + storage.describe() + "\" is full: " + command
                        + " of cluster \"" + layout.cluster() + "\" could not write its lock \"" + key + "\" (" + e.reason() + ")",
                        "pgproof expire takes this lock too: free a little space on that file system by other means (or enlarge it), then run "
                                + "pgproof expire --cluster " + layout.cluster());
            } catch (IOException e) {
                throw new PgproofException(ExitCode.REPOSITORY, "cannot take the lock " + key + " in " + storage.describe() + ": " + e.getMessage(),
                        "check that the repository is reachable and writable by this user");
            }
        }
        throw new PgproofException(ExitCode.LOCKED, "cluster \"" + layout.cluster() + "\": could not take the " + name
                + " lock after clearing a stale one (another pgproof took it)", "retry; see " + key + " in " + storage.describe());
    }

    /** Puts a hold on backup {@code label} for a reader (restore, prove); expire will not remove it while held. */
    public static RepoLock hold(Storage storage, RepoLayout layout, String label, String command) {
        Lease mine = Lease.mine(command, LEASE);
        String key = layout.hold(label, mine.token());
        try {
            mine.write(storage, key, true);
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "cannot write the hold " + key + " in " + storage.describe() + ": " + e.getMessage(),
                    "check that the repository is writable by this user");
        }
        return new RepoLock(storage, key, mine);
    }

    /** The holder of the cluster's exclusive lock {@code name} when it is live (its holder may be working), else empty. */
    public static Optional<Lease> liveHolder(Storage storage, RepoLayout layout, String name) throws IOException {
        Optional<Lease> l = Lease.read(storage, layout.lock(name));
        return l.isPresent() && l.get().staleReason(Instant.now()).isEmpty() ? l : Optional.empty();
    }

    /** A live hold found in the repository: the backup label and who holds it. */
    public record Held(String label, Lease lease) {}

    /** Live holds on backups of a cluster; stale ones are removed on the way (when {@code clean}). */
    public static java.util.List<Held> holds(Storage storage, RepoLayout layout, boolean clean) throws IOException {
        java.util.List<Held> out = new java.util.ArrayList<>();
        String prefix = layout.holdPrefix();
        for (Storage.ObjectInfo o : storage.list(prefix)) {
            String name = o.key().substring(prefix.length());
            int dot = name.indexOf('.');
            if (dot <= 0 || !name.endsWith(".json")) {
                continue;
            }
            Optional<Lease> l = Lease.read(storage, o.key());
            if (l.isEmpty()) {
                continue;
            }
            Optional<String> stale = l.get().staleReason(Instant.now());
            if (stale.isPresent()) {
                if (clean) {
                    Log.info("removing a stale hold on backup %s by %s: %s", name.substring(0, dot), l.get().describe(), stale.get());
                    deleteIfSame(storage, o.key(), l.get());
                }
                continue;
            }
            out.add(new Held(name.substring(0, dot), l.get()));
        }
        return out;
    }

    /** Whether the lock was found taken over (its lease ran out while we were stalled); work must not be finalised then. */
    public void checkHeld() {
        if (lost) {
            throw new PgproofException(ExitCode.LOCKED, "lost the lock " + key + " in " + storage.describe()
                    + " (its lease ran out while this process was stalled, and another process may have taken it)",
                    "nothing was finalised; run the command again");
        }
    }

    private void renew() {
        try {
            Optional<Lease> now = Lease.read(storage, key);
            if (now.isEmpty() || !now.get().token().equals(lease.token())) {
                lost = true;
                return;
            }
            Lease next = lease.renewed(LEASE);
            next.write(storage, key, false);
            lease = next;
        } catch (IOException | RuntimeException e) {
            Log.warn("could not renew the lock %s: %s", key, e.getMessage());
        }
    }

    @Override
    public void close() {
        renewer.shutdownNow();
        try {
            deleteIfSame(storage, key, lease);
        } catch (IOException e) {
            Log.warn("could not remove the lock %s in %s: %s (it will be cleared as stale)", key, storage.describe(), e.getMessage());
        }
    }

    /** Deletes a lock object only if it still holds the given lease (never another holder's fresh lock). */
    private static void deleteIfSame(Storage storage, String key, Lease expected) throws IOException {
        Optional<Lease> now = Lease.read(storage, key);
        if (now.isPresent() && now.get().token().equals(expected.token())) {
            storage.delete(key);
        }
    }
}
