package dev.pgproof.restore;

import dev.pgproof.cluster.PostmasterPid;
import dev.pgproof.io.Compression;
import dev.pgproof.io.Hashes;
import dev.pgproof.repo.BackupCatalog;
import dev.pgproof.repo.BackupManifest;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.PosixStorage;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import dev.pgproof.util.Progress;
import dev.pgproof.util.Sizes;
import dev.pgproof.wal.TimelineForks;
import dev.pgproof.wal.WalArchive;
import dev.pgproof.wal.WalFileName;
import dev.pgproof.wal.WalRanges;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.time.Instant;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Restores a backup into an empty or missing directory and prepares PostgreSQL's recovery: every
 * file is checked against the manifest, backup_manifest and backup_label are written, and
 * recovery.signal plus restore_command and the target go into postgresql.auto.conf.
 * global/pg_control and backup_label are written last, so that a restore cut short cannot start.
 */
public final class Restore {
    /** What the caller chose. */
    public record Options(String set, Path target, RecoveryTarget recovery, String restoreCommand, boolean archiveOff, int jobs,
            Map<Integer, Path> tablespaceMap, boolean delta) {
        public Options(String set, Path target, RecoveryTarget recovery, String restoreCommand, boolean archiveOff, int jobs,
                Map<Integer, Path> tablespaceMap) {
            this(set, target, recovery, restoreCommand, archiveOff, jobs, tablespaceMap, false);
        }
    }

    private final Storage storage;
    private final RepoLayout layout;

    public Restore(Storage storage, RepoLayout layout) {
        this.storage = storage;
        this.layout = layout;
    }

    /** Refuses a running cluster's directory and any non-empty one. */
    public static void checkTarget(Path target) {
        if (!Files.exists(target)) {
            return;
        }
        if (!Files.isDirectory(target)) {
            throw new PgproofException(ExitCode.RESTORE_FAILED, "restore target \"" + target + "\" exists and is not a directory",
                    "give --pgdata a new or empty directory");
        }
        try {
            PostmasterPid pid = PostmasterPid.read(target);
            if (pid != null && pid.processAlive()) {
                throw new PgproofException(ExitCode.RESTORE_FAILED, "restore target \"" + target + "\" is the data directory of a running server (pid "
                        + pid.pid() + ", port " + pid.port() + ")", "never restore over a running cluster; stop it first, or restore into a new directory");
            }
        } catch (IOException e) {
            // not readable as a pid file: the non-empty check below applies
        }
        try (var s = Files.list(target)) {
            if (s.findAny().isPresent()) {
                if (!Files.exists(target.resolve("global/pg_control")) && (Files.exists(target.resolve("PG_VERSION"))
                        || Files.exists(target.resolve("backup_manifest")) || Files.exists(target.resolve("base")))) {
                    throw new PgproofException(ExitCode.RESTORE_FAILED, "restore target \"" + target + "\" holds an interrupted restore "
                            + "(no global/pg_control, which a restore writes last: PostgreSQL cannot start it)",
                            "remove the directory and restore again; pgproof never writes into an existing directory");
                }
                throw new PgproofException(ExitCode.RESTORE_FAILED, "restore target \"" + target + "\" is not empty",
                        "restore into a new or empty directory; pgproof never overwrites an existing data directory");
            }
        } catch (IOException e) {
            throw new PgproofException(ExitCode.RESTORE_FAILED, "cannot read restore target \"" + target + "\": " + e.getMessage(),
                    "check its permissions");
        }
    }

    /**
     * For --delta: refuses a running server's directory and anything that is not a directory. A
     * stopped data directory passes; {@link #deltaApplies} then checks whose it is.
     */
    public static void checkDeltaTarget(Path target) {
        Delta.checkTarget(target);
    }

    /**
     * For --delta: true when the target holds a stopped copy of the backup's cluster to restore over,
     * false when it is missing or empty (a normal restore). Refuses another cluster's data directory
     * (exit 5), one whose cluster cannot be told, and one holding WAL never archived.
     */
    public boolean deltaApplies(Path target, BackupManifest m) {
        return Delta.applies(target, m, layout.cluster());
    }

    /**
     * Chooses the backup: --set, else for a time target the newest that finished before it, else the
     * newest. {@code complete} is the catalog's complete backups, oldest first (summaries will do); the
     * one chosen is returned as a summary with its file count, its manifest checked whole (hashed, not held):
     * {@link #run} streams its files.
     */
    public BackupCatalog.Entry choose(String set, RecoveryTarget rt, List<BackupManifest> complete) {
        String label = set != null ? set : pick(rt, complete).label();
        try {
            BackupCatalog.Entry e = new BackupCatalog(storage, layout).summary(label);
            if (!e.complete()) {
                boolean exists = !storage.list(layout.backupDir(label)).isEmpty();
                throw new PgproofException(ExitCode.RESTORE_FAILED, "backup \"" + label + "\" of cluster \"" + layout.cluster() + "\" "
                        + (exists ? "is not usable: " + e.problem() : "does not exist"), "list the usable backups with: pgproof info --cluster " + layout.cluster());
            }
            return e;
        } catch (IOException e) {
            throw unreadable(e);
        }
    }

    private PgproofException unreadable(IOException e) {
        return new PgproofException(ExitCode.REPOSITORY, "could not read the backups of cluster \"" + layout.cluster() + "\" in repository \""
                + storage.describe() + "\": " + e.getMessage(), "check that the repository is mounted and readable");
    }

    /**
     * Refuses a backup of an identity that is neither the cluster's pin nor one it had before pg_upgrade
     * ({@code init --upgrade}): another cluster stored it under this name, and recovery would fail on this cluster's
     * WAL, or worse.
     */
    public void checkIdentity(BackupManifest m, dev.pgproof.repo.ClusterIdentity pinned) {
        if (m.systemIdentifier().equals(pinned.systemIdentifierString()) || dev.pgproof.repo.ClusterInfo.formers(storage, layout).stream()
                .anyMatch(f -> f.systemIdentifierString().equals(m.systemIdentifier()))) {
            return;
        }
        throw new PgproofException(ExitCode.IDENTITY, "backup " + m.label() + " of cluster \"" + layout.cluster() + "\" is of system identifier "
                + m.systemIdentifier() + ", PostgreSQL " + m.pgVersion() + "; the cluster is pinned to " + pinned.describe()
                + ", and had no such identity before an upgrade",
                "another cluster stored backups under this name: pgproof verify --cluster " + layout.cluster() + " lists them",
                "restore another backup with --set (pgproof info --cluster " + layout.cluster() + " lists them)");
    }

    /**
     * For a reader (restore, prove) that has just put its hold on backup label: fails when the backup
     * is no longer complete. Expire withdraws a backup (removes its marker) before it looks for holds,
     * so a reader that still finds the marker once its hold is in place may read on: expire will see
     * the hold and keep the backup's objects and those it references.
     */
    public void checkStillComplete(String label, String reader) {
        boolean complete;
        try {
            complete = storage.exists(layout.completeMarker(label));
        } catch (IOException e) {
            throw unreadable(e);
        }
        if (!complete) {
            throw new PgproofException(ExitCode.RESTORE_FAILED, "backup " + label + " of cluster \"" + layout.cluster() + "\" was expired as this "
                    + reader + " began (pgproof expire withdrew it)", "run the " + reader + " again: it chooses among the backups that remain "
                    + "(pgproof info --cluster " + layout.cluster() + " lists them)");
        }
    }

    /** The backup a restore without --set starts from (a summary will do). */
    private BackupManifest pick(RecoveryTarget rt, List<BackupManifest> complete) {
        if (complete.isEmpty()) {
            throw new PgproofException(ExitCode.RESTORE_FAILED, "cluster \"" + layout.cluster() + "\" has no complete backup in repository \""
                    + storage.describe() + "\"", "take one with: pgproof backup --cluster " + layout.cluster());
        }
        if (rt.time() != null) {
            BackupManifest best = null;
            for (BackupManifest m : complete) {
                if (Instant.parse(m.stopTime()).isBefore(rt.time())) {
                    best = m;
                }
            }
            if (best == null) {
                throw new PgproofException(ExitCode.RESTORE_FAILED, "cluster \"" + layout.cluster() + "\" has no backup that finished before "
                        + rt.time() + "; the oldest finished at " + complete.get(0).stopTime(),
                        "choose a later --target-time; a point-in-time restore starts from a backup taken before the target");
            }
            return best;
        }
        if (rt.kind() != null && rt.kind().equals("lsn")) {
            long target = WalFileName.parseLsn(rt.value());
            BackupManifest best = null;
            for (BackupManifest m : complete) {
                if (Long.compareUnsigned(WalFileName.parseLsn(m.stopLsn()), target) <= 0) {
                    best = m;
                }
            }
            if (best == null) {
                throw new PgproofException(ExitCode.RESTORE_FAILED, "cluster \"" + layout.cluster() + "\" has no backup that ends before LSN "
                        + rt.value() + "; the oldest ends at " + complete.get(0).stopLsn(), "choose a later --target-lsn");
            }
            return best;
        }
        return complete.get(complete.size() - 1);
    }

    /** Checks that the WAL the recovery needs is in the repository without holes. */
    public void checkWal(BackupManifest m, RecoveryTarget rt) {
        checkWal(m, rt, null);
    }

    /**
     * Without an explicit --target-timeline, PostgreSQL recovers to the newest timeline it finds. When the archive
     * has diverging timelines on that path (a parent that kept writing past a child's switch point: typically a
     * promoted copy archiving under this cluster name), refuse rather than restore the wrong server's history.
     */
    public void checkTimelines(BackupManifest m, RecoveryTarget rt) {
        if (rt.timeline() != null) {
            return; // chosen explicitly (latest, current or a number)
        }
        WalArchive archive = new WalArchive(storage, layout);
        java.util.TreeMap<String, List<WalArchive.StoredWal>> all;
        TimelineForks.Fork fork;
        try {
            all = archive.listAll();
            if (TimelineForks.latestFrom(m.timeline(), all) == m.timeline()) {
                return;
            }
            fork = TimelineForks.ambiguousForLatest(m.timeline(), all, TimelineForks.histories(archive, all), m.walSegmentSize());
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not read the timeline history files of cluster \"" + layout.cluster() + "\": "
                    + e.getMessage(), "check that the repository is mounted and readable");
        }
        if (fork == null) {
            return;
        }
        throw new PgproofException(ExitCode.RESTORE_FAILED, "cluster \"" + layout.cluster() + "\": the WAL archive has diverging timelines: "
                + fork.describe() + "; recovering backup " + m.label() + " to the latest timeline (PostgreSQL's default) would follow timeline "
                + TimelineForks.latestFrom(m.timeline(), all),
                "--target-timeline " + fork.parent() + " recovers the timeline that kept writing after the branch (when another server, such "
                        + "as a promoted copy, archived timeline " + fork.child() + " under this cluster name)",
                "--target-timeline " + fork.child() + " follows the branch (when this cluster itself was promoted there, as after a "
                        + "point-in-time restore)",
                "a promoted copy must archive under its own cluster name (pgproof init --cluster <new name>) or be restored with "
                        + "--archive-mode off; pgproof verify lists diverging timelines");
    }

    /** With {@code identityEnd}, the last segment of a former identity's archive: later ones belong to the upgraded cluster. */
    public void checkWal(BackupManifest m, RecoveryTarget rt, String identityEnd) {
        if (identityEnd == null) {
            checkTimelines(m, rt);
        }
        int segSize = m.walSegmentSize();
        TreeSet<Long> segs;
        try {
            segs = WalRanges.segments(new WalArchive(storage, layout).listAll(), segSize, m.timeline());
            if (identityEnd != null) {
                segs = new TreeSet<>(segs.headSet(WalFileName.segmentNumber(identityEnd, segSize), true));
            }
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not list the WAL archive of cluster \"" + layout.cluster() + "\": "
                    + e.getMessage(), "check that the repository is mounted and readable");
        }
        long first = WalFileName.segmentNumber(m.startWal(), segSize);
        long stop = WalFileName.segmentNumber(m.stopWal(), segSize);
        for (long s = first; s <= stop; s++) {
            if (!segs.contains(s)) {
                throw new PgproofException(ExitCode.RESTORE_FAILED, "backup " + m.label() + " of cluster \"" + layout.cluster()
                        + "\" cannot be restored: WAL segment " + WalFileName.segmentName(m.timeline(), s, segSize)
                        + ", needed to make it consistent, is missing from the repository", "restore another backup with --set; run pgproof info --cluster "
                                + layout.cluster());
            }
        }
        if (rt.kind() != null && rt.kind().equals("immediate")) {
            return;
        }
        long limit = Long.MAX_VALUE;
        if (rt.kind() != null && rt.kind().equals("lsn")) {
            limit = WalFileName.segmentOf(WalFileName.parseLsn(rt.value()), segSize);
        }
        long s = stop;
        while (segs.contains(s + 1)) {
            s++;
        }
        Long next = segs.higher(s);
        if (next != null && s + 1 <= limit) {
            throw new PgproofException(ExitCode.RESTORE_FAILED, "WAL gap in the archive of cluster \"" + layout.cluster() + "\": segments "
                    + WalFileName.segmentName(m.timeline(), s + 1, segSize) + " to " + WalFileName.segmentName(m.timeline(), next - 1, segSize)
                    + " are missing, between backup " + m.label() + " and the recovery target",
                    "recovery could only reach " + WalFileName.formatLsn((s + 1) * (long) segSize)
                            + "; restore with --target-lsn at or before it, or --target immediate, or find the missing segments");
        }
    }

    /**
     * Restores the chosen backup ({@link #choose}): its files stream from its manifest into the jobs' parts, so that
     * memory does not grow with the backup's size.
     */
    public void run(BackupCatalog.Entry chosen, Options o) {
        BackupManifest m = chosen.manifest();
        int fileCount = chosen.fileCount();
        BackupCatalog catalog = new BackupCatalog(storage, layout);
        Path target = o.target();
        long begin = System.nanoTime();
        boolean delta = o.delta();
        Delta.Stats stats = new Delta.Stats();
        try {
            if (!Files.exists(target)) {
                Files.createDirectories(target);
            }
            Files.setPosixFilePermissions(target, EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE,
                    PosixFilePermission.OWNER_EXECUTE));
            Map<Integer, Path> tsLocations = new java.util.HashMap<>();
            Set<Integer> inPlace = new java.util.HashSet<>();
            for (BackupManifest.Tablespace t : m.tablespaces()) {
                Path loc = o.tablespaceMap().getOrDefault(t.oid(), Path.of(t.location()));
                if (delta && Delta.linkedTo(target, t.oid(), loc)) {
                    inPlace.add(t.oid()); // this directory's own tablespace: restored over like the rest
                } else {
                    checkTarget(loc);
                }
                Files.createDirectories(loc);
                tsLocations.put(t.oid(), loc);
            }
            if (delta) {
                Delta.begin(target, m);
                Set<String> paths = new java.util.HashSet<>();
                try (BackupCatalog.FileStream files = catalog.files(chosen)) {
                    for (BackupManifest.FileEntry f = files.next(); f != null; f = files.next()) {
                        paths.add(f.path());
                    }
                }
                Delta.removeStrays(paths, m.directories(), target, tsLocations, stats);
            }
            for (BackupManifest.Directory d : m.directories()) {
                Path p = resolve(target, tsLocations, d.path());
                if (p != null) {
                    Files.createDirectories(p);
                    setMode(p, d.mode());
                }
            }
            Files.createDirectories(target.resolve("pg_tblspc"));
            for (Map.Entry<Integer, Path> t : tsLocations.entrySet()) {
                Path link = target.resolve("pg_tblspc/" + t.getKey());
                if (inPlace.contains(t.getKey())) {
                    continue;
                }
                if (delta) {
                    Files.deleteIfExists(link);
                }
                Files.createSymbolicLink(link, t.getValue());
            }
            long total = m.size();
            // backup_label before global/pg_control, and pg_control the very last file: a directory with pg_control but
            // without backup_label would start crash recovery from the wrong checkpoint. The rest go in the manifest's order.
            List<BackupManifest.FileEntry> label = new ArrayList<>();
            List<BackupManifest.FileEntry> control = new ArrayList<>();
            if (delta) {
                Log.info("delta restore of backup %s over \"%s\": checking %d files (%s) against the manifest's checksums with %d jobs; "
                        + "removed %d files and %d directories the backup does not have (%s)", m.label(), target, fileCount,
                        Sizes.bytes(total), o.jobs(), stats.removedFiles, stats.removedDirs, Sizes.bytes(stats.removedBytes));
            } else {
                Log.info("restore of backup %s: %d files, %s, with %d jobs into \"%s\"", m.label(), fileCount, Sizes.bytes(total), o.jobs(),
                        target);
            }
            try (Progress progress = new Progress((delta ? "delta restore " : "restore ") + m.label(), fileCount, total);
                    BackupCatalog.FileStream files = catalog.files(chosen)) {
                java.util.function.Function<java.util.Iterator<BackupManifest.FileEntry>, java.util.Iterator<Task>> tasks = fs -> new Parts(fs,
                        target, tsLocations, delta ? stats : null, progress);
                java.util.Iterator<BackupManifest.FileEntry> first = files.iterator(f -> {
                    if (f.path().equals("global/pg_control")) {
                        control.add(f);
                        return false;
                    }
                    if (f.path().equals("backup_label")) {
                        label.add(f);
                        return false;
                    }
                    return true;
                });
                runTasks(tasks.apply(first), o.jobs());
                if (delta) {
                    dev.pgproof.util.TestHooks.pause("restore-delta-before-control", target);
                }
                writeBackupManifest(m, target);
                writeRecoverySettings(target, o);
                // Every file is fsync'd as it is written; the files restore wrote itself and every directory are now, so that
                // backup_label, then pg_control, each made durable in turn, are never on disk before what they describe.
                for (String name : List.of("backup_manifest", "postgresql.auto.conf", "recovery.signal")) {
                    syncFile(target.resolve(name));
                }
                syncDirectories(target);
                for (Path t : tsLocations.values()) {
                    syncDirectories(t);
                }
                runTasks(tasks.apply(label.iterator()), 1);
                PosixStorage.fsyncDir(target);
                runTasks(tasks.apply(control.iterator()), 1);
                PosixStorage.fsyncDir(target.resolve("global"));
            }
            long el = System.nanoTime() - begin;
            if (delta) {
                Delta.finish(target);
                long same = stats.checked.get() - stats.rewritten.get() - stats.created.get();
                Log.info("delta restore of backup %s: %d files checked (%s), %d unchanged, %d rewritten, %d created, %s written, %s fetched "
                        + "from the repository, %d files and %d directories removed, in %s (%s checked)", m.label(), stats.checked.get(),
                        Sizes.bytes(stats.checkedBytes.get()), same, stats.rewritten.get(), stats.created.get(), Sizes.bytes(stats.writtenBytes.get()),
                        Sizes.bytes(stats.fetchedBytes.get()), stats.removedFiles, stats.removedDirs, Sizes.seconds(el),
                        Sizes.rate(stats.checkedBytes.get(), el));
            } else {
                Log.info("restore of backup %s: %s restored and verified in %s (%s)", m.label(), Sizes.bytes(total), Sizes.seconds(el),
                        Sizes.rate(total, el));
            }
        } catch (IOException e) {
            if (delta) {
                throw new PgproofException(ExitCode.RESTORE_FAILED, "delta restore over \"" + target + "\" failed: " + e.getMessage(),
                        "the directory is incomplete and cannot start (global/pg_control is written last); fix the cause and run restore --delta "
                                + "again");
            }
            throw new PgproofException(ExitCode.RESTORE_FAILED, "restore into \"" + target + "\" failed: " + e.getMessage(),
                    "the directory is incomplete and cannot start (global/pg_control is written last); remove it and restore again");
        }
    }

    /** One task of a restore job: a part of one file; buf is the job's own scratch buffer. */
    private interface Task {
        void run(byte[][] buf) throws IOException;
    }

    /**
     * Decompressed objects a restore job keeps: a block-incremental file alternates between earlier backups' objects
     * (references, XOR bases) and its own.
     */
    private static final int OBJECTS_CACHED = 3;

    /**
     * A piece cut from a decompressed object (cached in objects), XOR-resolved against its base when it has one, and
     * checked against its checksum (its CRC-32C, or an older backup's SHA-256); stats (may be null) counts the bytes fetched.
     */
    private Delta.Piece piece(BackupManifest.FileEntry f, BackupManifest.Chunk c, Map<String, byte[]> objects, Delta.Stats stats) {
        byte[] obj = cached(objects, f, c.key(), stats);
        if (c.xorKey() == null) {
            long from = c.sourceOffset() == null ? 0 : c.sourceOffset();
            if (from < 0 || from + c.size() > obj.length || (c.sourceOffset() == null && obj.length != c.size())) {
                throw corrupt(f, "stored object \"" + c.key() + "\" is not of the size the manifest says (" + obj.length + " bytes)");
            }
            checkPiece(f, c, obj, (int) from);
            return new Delta.Piece(obj, (int) from);
        }
        byte[] bytes = c.resolve(obj, cached(objects, f, c.xorKey(), stats));
        if (bytes == null) {
            throw corrupt(f, "stored objects \"" + c.key() + "\" and \"" + c.xorKey() + "\" are shorter than the manifest says");
        }
        checkPiece(f, c, bytes, 0);
        return new Delta.Piece(bytes, 0);
    }

    private byte[] cached(Map<String, byte[]> objects, BackupManifest.FileEntry f, String key, Delta.Stats stats) {
        byte[] obj = objects.get(key);
        if (obj == null) {
            obj = readObject(f, key);
            if (stats != null) {
                stats.fetchedBytes.addAndGet(obj.length);
            }
            objects.put(key, obj);
        }
        return obj;
    }

    /** Checks the piece's bytes at bytes[from, from + size) against its checksum (its CRC-32C, or an older backup's SHA-256). */
    private void checkPiece(BackupManifest.FileEntry f, BackupManifest.Chunk c, byte[] bytes, int from) {
        if (!c.quickCheck().matches(bytes, from, (int) c.size())) {
            long at = c.sourceOffset() == null ? 0 : c.sourceOffset();
            throw corrupt(f, "bytes " + at + " to " + (at + c.size()) + " of stored object \"" + c.key() + "\""
                    + (c.xorKey() == null ? "" : " (XOR-stored against \"" + c.xorKey() + "\")") + " do not match their checksum");
        }
    }

    private static Path resolve(Path target, Map<Integer, Path> ts, String path) {
        if (path.startsWith("pg_tblspc/")) {
            String rest = path.substring(10);
            int slash = rest.indexOf('/');
            if (slash < 0) {
                return null; // the link itself
            }
            return ts.get(Integer.parseInt(rest.substring(0, slash))).resolve(rest.substring(slash + 1));
        }
        return target.resolve(path);
    }

    /**
     * Runs the tasks on {@code jobs} threads, each taking the next task as it becomes free (tasks are made as they are
     * taken, so that no list of them grows with the backup); after a failure no new task starts, and the first failure
     * is thrown once the running tasks end.
     */
    private static void runTasks(java.util.Iterator<Task> source, int jobs) throws IOException {
        ExecutorService pool = Executors.newFixedThreadPool(jobs, r -> {
            Thread t = new Thread(r, "restore");
            t.setDaemon(true);
            return t;
        });
        java.util.concurrent.atomic.AtomicBoolean failed = new java.util.concurrent.atomic.AtomicBoolean();
        try {
            List<Future<Void>> workers = new ArrayList<>();
            for (int i = 0; i < jobs; i++) {
                workers.add(pool.submit(() -> {
                    byte[][] buf = {new byte[0]};
                    try {
                        while (true) {
                            Task t;
                            synchronized (source) {
                                if (failed.get() || !source.hasNext()) {   // making the next task checks its file's manifest entry
                                    return null;
                                }
                                t = source.next();
                            }
                            t.run(buf);
                        }
                    } catch (IOException | RuntimeException | Error e) {
                        failed.set(true);
                        throw e;
                    }
                }));
            }
            for (Future<Void> w : workers) {
                w.get();
            }
        } catch (ExecutionException e) {
            if (e.getCause() instanceof PgproofException) {
                throw (PgproofException) e.getCause();
            }
            if (e.getCause() instanceof IOException) {
                throw (IOException) e.getCause();
            }
            if (e.getCause() instanceof java.io.UncheckedIOException u) {
                throw u.getCause();   // reading the manifest's next file
            }
            throw new IllegalStateException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PgproofException(ExitCode.INTERRUPTED, "restore interrupted");
        } finally {
            pool.shutdownNow();
        }
    }

    /**
     * A file is restored in parts of whole pieces, of at least this many bytes each (the last may be smaller), which any
     * free job writes where they belong in the file: one large file (a pgbench cluster is mostly pgbench_accounts)
     * keeps every job busy decompressing, checking and writing.
     */
    static final long PART_BYTES = 8L << 20;

    /**
     * A file being restored: the parts of it not yet written, and the alignment its direct writes need (0: written
     * through the page cache); for a delta restore, whether it existed and what its parts wrote. The job that writes its
     * last part finishes it.
     */
    private static final class Restoring {
        final BackupManifest.FileEntry f;
        final Path dest;
        final int alignment;
        final boolean existed;
        final java.util.concurrent.atomic.AtomicLong written = new java.util.concurrent.atomic.AtomicLong();
        final java.util.concurrent.atomic.AtomicInteger partsLeft;

        Restoring(BackupManifest.FileEntry f, Path dest, int alignment, boolean existed, int parts) {
            this.f = f;
            this.dest = dest;
            this.alignment = alignment;
            this.existed = existed;
            this.partsLeft = new java.util.concurrent.atomic.AtomicInteger(parts);
        }
    }

    /** Each restore job's buffer for direct writes: aligned for any file system that needs at most this alignment. */
    private static final int DIRECT_ALIGNMENT_MAX = 64 << 10;
    private static final int DIRECT_BUFFER = 1 << 20;
    private final ThreadLocal<java.nio.ByteBuffer> directBuffers = ThreadLocal.withInitial(
            () -> dev.pgproof.io.RangeWriter.alignedBuffer(DIRECT_BUFFER, DIRECT_ALIGNMENT_MAX));
    /** The alignment direct writes need in each directory restored into (a tablespace may be another file system); 0: none. */
    private final Map<Path, Integer> alignments = new java.util.concurrent.ConcurrentHashMap<>();
    /** Set when a file system refused a direct open: every later file is written through the page cache. */
    private volatile boolean directRefused;

    /**
     * The alignment direct writes need in dir (its file store's block size), or 0 when they are not used there: a block
     * size that is not a power of two dividing the job's buffer, or a file store that cannot say.
     */
    private int alignmentIn(Path dir) {
        return alignments.computeIfAbsent(dir, r -> {
            try {
                long b = Files.getFileStore(r).getBlockSize();
                return b > 0 && b <= DIRECT_ALIGNMENT_MAX && Long.bitCount(b) == 1 ? (int) b : 0;
            } catch (IOException | UnsupportedOperationException e) {
                return 0;
            }
        });
    }

    /**
     * The restore's tasks, made as they are taken: the files in the order given, each cut into its parts; with delta
     * statistics, the parts of a delta restore.
     */
    private final class Parts implements java.util.Iterator<Task> {
        private final java.util.Iterator<BackupManifest.FileEntry> files;
        private final Path target;
        private final Map<Integer, Path> ts;
        private final Delta.Stats delta;
        private final Progress progress;
        private final java.util.ArrayDeque<Task> ready = new java.util.ArrayDeque<>();

        Parts(java.util.Iterator<BackupManifest.FileEntry> files, Path target, Map<Integer, Path> ts, Delta.Stats delta, Progress progress) {
            this.files = files;
            this.target = target;
            this.ts = ts;
            this.delta = delta;
            this.progress = progress;
        }

        @Override
        public boolean hasNext() {
            while (ready.isEmpty() && files.hasNext()) {
                cut(files.next());
            }
            return !ready.isEmpty();
        }

        @Override
        public Task next() {
            if (!hasNext()) {
                throw new java.util.NoSuchElementException();
            }
            return ready.poll();
        }

        /**
         * Checks that the manifest's pieces cover the file in order to its size (each piece is checked against its
         * checksum as it is written: the file is then what the backup read, without hashing it whole a second time;
         * pg_verifybackup, which prove runs, checks whole files against backup_manifest), then cuts it into parts.
         */
        private void cut(BackupManifest.FileEntry f) {
            List<BackupManifest.Chunk> pieces = f.chunks();
            if (pieces.size() == 1 && !java.util.Objects.equals(f.sha256() != null ? pieces.get(0).sha256() : pieces.get(0).crc32c(),
                    f.sha256() != null ? f.sha256() : f.crc32c())) {
                throw corrupt(f, "the manifest's one piece of the file does not have the file's checksum");
            }
            long size = 0;
            List<int[]> ranges = new ArrayList<>();
            int from = 0;
            long partBytes = 0;
            for (int i = 0; i < pieces.size(); i++) {
                BackupManifest.Chunk c = pieces.get(i);
                if (c.offset() != size || c.size() < 0 || c.size() > Integer.MAX_VALUE - 16) {   // pieces are held in arrays
                    throw corrupt(f, "the manifest's pieces do not cover the file in order (piece at " + c.offset() + ", expected " + size + ")");
                }
                size += c.size();
                partBytes += c.size();
                if (partBytes >= PART_BYTES || i == pieces.size() - 1) {
                    ranges.add(new int[] {from, i + 1});
                    from = i + 1;
                    partBytes = 0;
                }
            }
            if (size != f.size()) {
                throw corrupt(f, "the manifest's pieces hold " + size + " bytes, the manifest says the file has " + f.size());
            }
            if (ranges.isEmpty()) {
                ranges.add(new int[] {0, 0});
            }
            Path dest = resolve(target, ts, f.path());
            if (delta != null) {
                Restoring r = new Restoring(f, dest, 0, Files.isRegularFile(dest, java.nio.file.LinkOption.NOFOLLOW_LINKS), ranges.size());
                for (int[] range : ranges) {
                    ready.add(buf -> deltaPart(r, range[0], range[1], buf, delta, progress));
                }
                return;
            }
            int alignment = directRefused ? 0 : alignmentIn(dest.getParent());
            for (BackupManifest.Chunk c : pieces) {
                if (alignment > 0 && c.offset() % alignment != 0) {
                    alignment = 0;   // a piece that starts within a block (block sizes under the alignment): not written direct
                }
            }
            Restoring r = new Restoring(f, dest, alignment, false, ranges.size());
            for (int[] range : ranges) {
                ready.add(buf -> restorePart(r, range[0], range[1], buf, progress));
            }
        }
    }

    /**
     * Writes pieces [from, to) of a file where they belong, each checked against its CRC-32C (an older backup's piece:
     * its SHA-256) as it is written, direct (bypassing the page cache) where the file system allows it; the job that
     * writes a file's last part cuts it to its size, fsyncs it and sets its mode and time.
     */
    private void restorePart(Restoring r, int from, int to, byte[][] scratch, Progress progress) throws IOException {
        BackupManifest.FileEntry f = r.f;
        ensureDirectory(r.dest.getParent());
        if (scratch[0].length < (1 << 16)) {
            scratch[0] = new byte[1 << 16];
        }
        byte[] buf = scratch[0];
        long start = from < to ? f.chunks().get(from).offset() : 0;
        // Never truncated on open: other jobs may be writing other parts of the file.
        FileChannel direct = r.alignment > 0 ? openDirect(r.dest) : null;
        try (FileChannel ch = direct != null ? direct : FileChannel.open(r.dest, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            dev.pgproof.io.RangeWriter out = new dev.pgproof.io.RangeWriter(ch, direct != null ? directBuffers.get() : null, r.alignment, start);
            Map<String, byte[]> objects = new dev.pgproof.util.LruMap<>(OBJECTS_CACHED);
            for (int i = from; i < to; i++) {
                BackupManifest.Chunk c = f.chunks().get(i);
                if (c.sourceOffset() != null) {
                    Delta.Piece p = piece(f, c, objects, null);
                    out.write(p.bytes(), p.from(), (int) c.size());
                    progress.addBytes(c.size());
                    continue;
                }
                BackupManifest.ContentCheck part = c.quickCheck();
                long n = 0;
                Compression comp = compressionOf(c.key());
                try (InputStream in = comp.decompress(storage.open(c.key()))) {
                    int got;
                    while ((got = in.read(buf)) > 0) {
                        if (n + got > c.size()) {
                            throw corrupt(f, "stored chunk \"" + c.key() + "\" holds more than the " + c.size() + " bytes the manifest says");
                        }
                        out.write(buf, 0, got);
                        part.update(buf, 0, got);
                        n += got;
                    }
                } catch (NoSuchFileException e) {
                    throw corrupt(f, "stored chunk \"" + c.key() + "\" is missing");
                } catch (IOException | RuntimeException e) {
                    if (e instanceof PgproofException) {
                        throw e;
                    }
                    throw corrupt(f, "stored chunk \"" + c.key() + "\" cannot be read: " + e.getMessage());
                }
                if (!part.matches()) {
                    throw corrupt(f, "stored chunk \"" + c.key() + "\" does not match its checksum");
                }
                progress.addBytes(n);
            }
            out.finish();
            if (r.partsLeft.decrementAndGet() == 0) {
                ch.truncate(f.size());   // the padding of a direct write's last block, or a longer file that was there
                settle(r);
                ch.force(true);
                progress.fileDone();
                dev.pgproof.util.TestHooks.pause("restore-mid-copy", f.path());
            }
        }
    }

    /**
     * Brings pieces [from, to) of a file to the backup's content in place (a delta restore), fetching only the pieces that
     * differ, each checked, with objects cached per part; the job that does a file's last part cuts it to its size, checks
     * that size, fsyncs it if anything changed and sets its mode and time.
     */
    private void deltaPart(Restoring r, int from, int to, byte[][] buf, Delta.Stats stats, Progress progress) throws IOException {
        BackupManifest.FileEntry f = r.f;
        ensureDirectory(r.dest.getParent());
        if (r.existed && !Files.isWritable(r.dest)) {
            setMode(r.dest, "0600");
        }
        try (FileChannel ch = FileChannel.open(r.dest, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            Map<String, byte[]> objects = new dev.pgproof.util.LruMap<>(OBJECTS_CACHED);
            r.written.addAndGet(Delta.pieces(f, ch, from, to, r.existed, (file, c) -> piece(file, c, objects, stats), buf, stats, progress));
            if (r.partsLeft.decrementAndGet() == 0) {
                Delta.finish(f, ch, r.existed, r.written.get(), stats, what -> corrupt(f, what), () -> settle(r));
                progress.fileDone();
            }
        }
    }

    /**
     * Creates a file's directory if it is missing. One stat when it is there (nearly always: the manifest's directories are
     * made first), where {@link Files#createDirectories} would try a mkdir under the parent's lock and throw and catch
     * an exception for every part of every file.
     */
    private static void ensureDirectory(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            Files.createDirectories(dir);
        }
    }

    /** Gives a file whose every part is written the backup's mode and modification time; whether either changed. */
    private static boolean settle(Restoring r) throws IOException {
        java.nio.file.attribute.PosixFileAttributes was = Files.readAttributes(r.dest, java.nio.file.attribute.PosixFileAttributes.class);
        FileTime mtime = FileTime.from(Instant.parse(r.f.mtime()));
        boolean changed = false;
        if (!was.permissions().equals(permissions(r.f.mode()))) {
            setMode(r.dest, r.f.mode());
            changed = true;
        }
        if (!was.lastModifiedTime().equals(mtime)) {
            Files.setLastModifiedTime(r.dest, mtime);
            changed = true;
        }
        return changed;
    }

    /** Opens a file being restored for direct writes; null when the file system refuses them (and it is not asked again). */
    private FileChannel openDirect(Path dest) throws IOException {
        if (directRefused) {
            return null;
        }
        try {
            if (dev.pgproof.util.TestHooks.active("restore-direct-refused")) {
                throw new IOException("Invalid argument: refused by PGPROOF_TEST_HOOK");
            }
            return FileChannel.open(dest, StandardOpenOption.CREATE, StandardOpenOption.WRITE, com.sun.nio.file.ExtendedOpenOption.DIRECT);
        } catch (IOException | UnsupportedOperationException e) {
            if (!directRefused) {
                directRefused = true;
                Log.debug("restore: direct I/O refused for \"%s\" (%s): writing through the page cache", dest, e.getMessage());
            }
            return null;
        }
    }


    /** A whole stored object, decompressed (objects are at most one chunk, 8 MiB). */
    private byte[] readObject(BackupManifest.FileEntry f, String key) {
        try (InputStream in = compressionOf(key).decompress(storage.open(key))) {
            return in.readAllBytes();
        } catch (NoSuchFileException e) {
            throw corrupt(f, "stored object \"" + key + "\" is missing");
        } catch (IOException | RuntimeException e) {
            throw corrupt(f, "stored object \"" + key + "\" cannot be read: " + e.getMessage());
        }
    }

    private PgproofException corrupt(BackupManifest.FileEntry f, String what) {
        return new PgproofException(ExitCode.CORRUPT, "file \"" + f.path() + "\" of cluster \"" + layout.cluster() + "\": " + what,
                "the backup is damaged; restore another one with --set (pgproof info lists them)");
    }

    static Compression compressionOf(String key) {
        Compression c = Compression.byExtension(key.substring(key.lastIndexOf('.') + 1));
        if (c == null) {
            throw new IllegalStateException("stored key without a compression extension: " + key);
        }
        return c;
    }

    private static void syncFile(Path p) throws IOException {
        if (Files.exists(p)) {
            try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
                ch.force(true);
            }
        }
    }

    /** fsyncs every directory under root (not following links: each tablespace is synced as its own root). */
    private static void syncDirectories(Path root) throws IOException {
        List<Path> dirs = new ArrayList<>();
        Files.walkFileTree(root, new java.nio.file.SimpleFileVisitor<>() {
            @Override
            public java.nio.file.FileVisitResult preVisitDirectory(Path dir, java.nio.file.attribute.BasicFileAttributes attrs) {
                dirs.add(dir);
                return java.nio.file.FileVisitResult.CONTINUE;
            }
        });
        for (Path d : dirs) {
            PosixStorage.fsyncDir(d);
        }
    }

    private void writeBackupManifest(BackupManifest m, Path target) throws IOException {
        BackupManifest.StoredRef ref = m.pgManifest();
        byte[] bytes;
        try (InputStream in = compressionOf(ref.key()).decompress(storage.open(ref.key()))) {
            bytes = in.readAllBytes();
        }
        if (!Hashes.sha256Hex(bytes).equals(ref.sha256())) {
            throw new PgproofException(ExitCode.CORRUPT, "backup_manifest of backup " + m.label() + " does not match its checksum",
                    "the backup is damaged; restore another one with --set");
        }
        Files.write(target.resolve("backup_manifest"), bytes);
        setMode(target.resolve("backup_manifest"), "0600");
    }

    private void writeRecoverySettings(Path target, Options o) throws IOException {
        Path auto = target.resolve("postgresql.auto.conf");
        String original = Files.exists(auto) ? Files.readString(auto, StandardCharsets.UTF_8) : "";
        List<String> lines = new ArrayList<>();
        lines.add("restore_command = '" + o.restoreCommand().replace("'", "''") + "'");
        lines.addAll(o.recovery().settings());
        Files.writeString(auto, AutoConf.edit(original, lines, o.archiveOff()), StandardCharsets.UTF_8);
        setMode(auto, "0600");
        Files.write(target.resolve("recovery.signal"), new byte[0]);
        setMode(target.resolve("recovery.signal"), "0600");
    }

    static void setMode(Path p, String octal) {
        Set<PosixFilePermission> set = permissions(octal);
        try {
            Files.setPosixFilePermissions(p, set);
        } catch (IOException | UnsupportedOperationException e) {
            Log.debug("could not set mode of %s: %s", p, e.getMessage());
        }
    }

    /** The permissions of an octal mode such as "0600". */
    static Set<PosixFilePermission> permissions(String octal) {
        int mode = Integer.parseInt(octal, 8);
        Set<PosixFilePermission> set = EnumSet.noneOf(PosixFilePermission.class);
        PosixFilePermission[] all = {PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_READ,
            PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_READ,
            PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_READ};
        for (int i = 0; i < 9; i++) {
            if ((mode & (1 << i)) != 0) {
                set.add(all[i]);
            }
        }
        return set;
    }

    /** The zone a time target without offset is read in: the cluster's at backup time. */
    public static ZoneId zoneOf(BackupManifest m) {
        try {
            return ZoneId.of(m.timezone());
        } catch (RuntimeException e) {
            return ZoneId.of("UTC");
        }
    }
}
