package dev.pgproof.verify;

import dev.pgproof.wal.TimelineHistory;
import dev.pgproof.io.Compression;
import dev.pgproof.io.Hashes;
import dev.pgproof.repo.BackupCatalog;
import dev.pgproof.repo.BackupManifest;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.repo.ClusterInfo;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import dev.pgproof.util.Progress;
import dev.pgproof.util.Sizes;
import dev.pgproof.wal.StreamedWal;
import dev.pgproof.wal.TimelineForks;
import dev.pgproof.wal.WalArchive;
import dev.pgproof.wal.WalFileName;
import dev.pgproof.wal.WalHeader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Judges one cluster's part of a repository without PostgreSQL, collecting every problem instead
 * of stopping at the first: each backup's objects against its manifest (decompressed and hashed),
 * every archived WAL file against the SHA-256 in its name and its page headers, the continuity of
 * WAL from each complete backup's start to the newest segment (across timelines, by their history
 * files), conflicting copies, and incomplete backups and objects no manifest references.
 *
 * <p>The work is one task per backup file and one per stored WAL object, run on {@code jobs}
 * threads (pgBackRest's verify shape: a plan, a per-object task returning its problems, an executor).
 */
public final class Verifier {
    private final Storage storage;
    private final RepoLayout layout;
    private final int jobs;
    private final String onlySet;

    public Verifier(Storage storage, RepoLayout layout, int jobs, String onlySet) {
        this.storage = storage;
        this.layout = layout;
        this.jobs = jobs;
        this.onlySet = onlySet;
    }

    /** What verify found in one cluster. */
    public record Result(String cluster, int backups, int incompleteBackups, long files, long chunks, long walFiles, long bytes,
            double seconds, List<Problem> problems, List<String> inProgress, List<Leftover> leftovers) {}

    /** A temporary file of an interrupted write, older than {@link RepoLayout#LEFTOVER_AGE}: not a problem, expire removes it. */
    public record Leftover(String key, long size, String modified) {}

    /** One unit of work: its problems, and the bytes it read (uncompressed) for the rate. */
    private record TaskResult(List<Problem> problems, long bytes) {}

    public Result run() {
        String cluster = layout.cluster();
        long t0 = System.nanoTime();
        ClusterIdentity id = ClusterInfo.read(storage, layout);
        Log.info("verify of cluster \"%s\" in repository \"%s\": listing backups and WAL (pinned to %s)", cluster, storage.describe(),
                id.describe());
        List<Problem> problems = Collections.synchronizedList(new ArrayList<>());
        List<BackupManifest> complete = new ArrayList<>();
        List<Callable<TaskResult>> tasks = new ArrayList<>();   // WAL: small
        List<Batch> batches = new ArrayList<>();   // one per backup, its files streamed from its manifest when run
        long taskCount = 0;
        long totalBytes = 0;
        long files = 0;
        AtomicLong chunks = new AtomicLong();   // counted as each backup's manifest streams past for its checks
        int incomplete = 0;
        List<String> inProgress = new ArrayList<>();
        List<Leftover> leftovers = new ArrayList<>();
        TreeMap<String, List<WalArchive.StoredWal>> wal;
        try {
            // Backups are listed one directory at a time, and a complete backup's objects only while it is checked: memory
            // follows the largest backup, not the repository. (The objects of backups that are not complete are few.)
            Map<String, List<String>> byLabel = new HashMap<>();   // the objects under each backup that is not complete
            BackupCatalog catalog = new BackupCatalog(storage, layout);
            List<BackupCatalog.Entry> entries = new ArrayList<>();
            String prefix = layout.backupPrefix();
            for (String dir : storage.listPrefixes(prefix)) {
                String label = dir.substring(prefix.length(), dir.length() - 1);
                BackupCatalog.Entry entry;
                try {
                    entry = catalog.summary(label);   // each manifest's files stream past only while its backup is checked
                } catch (IOException | RuntimeException ex) {
                    if (onlySet == null || onlySet.equals(label)) {
                        problems.add(new Problem(cluster, Problem.Kind.BACKUP_CORRUPT, layout.backupDir(label), "backup " + label
                                + ": backup.complete or its manifest cannot be read: " + oneLine(ex)));
                    }
                    entry = new BackupCatalog.Entry(label, false, null, null);
                }
                if (!entry.complete()) {
                    List<String> keys = storage.list(layout.backupDir(label)).stream().map(Storage.ObjectInfo::key).toList();
                    if (keys.isEmpty()) {
                        continue;   // an empty directory: nothing to judge
                    }
                    byLabel.put(label, keys);
                }
                entries.add(entry);
            }
            if (onlySet != null && entries.stream().noneMatch(e -> e.label().equals(onlySet))) {
                throw new PgproofException(ExitCode.USAGE, "backup \"" + onlySet + "\" of cluster \"" + cluster + "\" does not exist in repository \""
                        + storage.describe() + "\"", "list the backups with: pgproof info --cluster " + cluster);
            }
            // A backup running now (its lock held by a live process) is in progress, not incomplete.
            java.util.Optional<dev.pgproof.lock.Lease> running = dev.pgproof.lock.RepoLock.liveHolder(storage, layout, "backup");
            // A backup a reader (restore, prove) holds: if an expire withdrew it meanwhile, its objects stay until the reader is done.
            Map<String, dev.pgproof.lock.Lease> held = new HashMap<>();
            for (dev.pgproof.lock.RepoLock.Held h : dev.pgproof.lock.RepoLock.holds(storage, layout, false)) {
                held.put(h.label(), h.lease());
            }
            // Objects some complete backup references: an expired backup's directory may keep only objects a later
            // (incremental) backup still references, which is not an incomplete backup.
            // Only objects under backups that are not complete are looked up in it, so only those are remembered.
            Set<String> notComplete = new HashSet<>();
            for (BackupCatalog.Entry e : entries) {
                if (!e.complete()) {
                    notComplete.addAll(byLabel.getOrDefault(e.label(), List.of()));
                }
            }
            // Each complete backup's manifest streams past once more for that, only when such objects exist.
            Set<String> referencedByAny = new HashSet<>();
            for (BackupCatalog.Entry e : entries) {
                if (!e.complete()) {
                    continue;
                }
                try {
                    referencedByAny.addAll(catalog.objectKeysAmong(e, notComplete));
                } catch (IOException ex) {
                    continue;   // reported when the backup is checked
                }
            }
            for (BackupCatalog.Entry e : entries) {
                if (onlySet != null && !e.label().equals(onlySet)) {
                    continue;
                }
                List<String> under = byLabel.getOrDefault(e.label(), List.of());
                if (e.expired() && held.containsKey(e.label())) {
                    Log.info("verify of cluster \"%s\": backup %s was expired while %s holds it: its objects stay until the next expire "
                            + "after the reader is done; not judged", cluster, e.label(), held.get(e.label()).describe());
                    continue;
                }
                if (e.expired()) {
                    // Remains of an expired backup (expire's backup.expired marker): each object must still be referenced.
                    for (String key : under) {
                        if (!key.equals(layout.expiredMarker(e.label())) && !referencedByAny.contains(key)) {
                            problems.add(new Problem(cluster, Problem.Kind.BACKUP_ORPHAN, key, "object under expired backup " + e.label()
                                    + " that no backup references any more"));
                        }
                    }
                    continue;
                }
                if (!e.complete() && e.problem() != null && !under.isEmpty() && referencedByAny.containsAll(under)) {
                    Log.info("verify of cluster \"%s\": %s holds only %d object(s) that later backups reference (an expired backup); "
                            + "they are verified with those backups", cluster, layout.backupDir(e.label()), under.size());
                    continue;
                }
                if (!e.complete() && e.problem() == null) {
                    incomplete++; // unparsable: reported above
                    continue;
                }
                if (e.damaged()) {
                    incomplete++;
                    problems.add(new Problem(cluster, Problem.Kind.BACKUP_CORRUPT, layout.backupDir(e.label()),
                            "backup " + e.label() + " is " + e.problem() + "; it is never used for a restore"));
                    continue;
                }
                if (!e.complete() && running.isPresent()) {
                    inProgress.add(e.label());
                    Log.info("verify of cluster \"%s\": backup %s is in progress (the cluster's backup lock is held by %s): not judged",
                            cluster, e.label(), running.get().describe());
                    continue;
                }
                if (!e.complete()) {
                    incomplete++;
                    problems.add(new Problem(cluster, Problem.Kind.BACKUP_INCOMPLETE, layout.backupDir(e.label()),
                            "backup " + e.label() + " is incomplete: " + e.problem() + "; it is never used for a restore"));
                    continue;
                }
                BackupManifest m = e.manifest();
                complete.add(m);
                if (m.pageChecksums() != null && m.pageChecksums().failed() > 0) {
                    Log.warn("verify of cluster \"%s\": backup %s found %d page(s) of the cluster failing their data checksums when it was "
                            + "taken; it holds them as they were on disk (damage of the cluster, not of the repository; pgproof info lists "
                            + "them)", cluster, m.label(), m.pageChecksums().failed());
                }
                files += e.fileCount();
                totalBytes += m.size() + (m.pgManifest() == null ? 0 : m.pgManifest().size());
                taskCount += e.fileCount() + (m.pgManifest() == null ? 0 : 1);
                batches.add(submit -> backupTasks(e, catalog, id, problems, chunks, submit));
            }
            wal = new WalArchive(storage, layout).listAll();
            java.time.Instant old = java.time.Instant.now().minus(RepoLayout.LEFTOVER_AGE);
            for (Storage.Leftover l : storage.leftovers(cluster + "/")) {
                if (l.modified().isBefore(old)) {
                    leftovers.add(new Leftover(l.key(), l.size(), l.modified().toString()));
                }
            }
            if (!leftovers.isEmpty()) {
                Log.info("verify of cluster \"%s\": %d temporary file(s), %s, left by interrupted writes (not errors: never read; pgproof "
                        + "expire removes those older than %d minutes)", cluster, leftovers.size(),
                        Sizes.bytes(leftovers.stream().mapToLong(Leftover::size).sum()), RepoLayout.LEFTOVER_AGE.toMinutes());
            }
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not list cluster \"" + cluster + "\" in repository \"" + storage.describe()
                    + "\": " + e.getMessage(), "check that the repository is mounted and readable by this OS user");
        }
        WalPageCheck pages = new WalPageCheck(id.systemIdentifier(), id.walSegmentSize(), id.walBlockSize(),
                WalHeader.magicByMajor().get(id.pgVersion()));
        Map<Integer, String> historyText = new java.util.concurrent.ConcurrentHashMap<>();
        long walFiles = 0;
        for (Map.Entry<String, List<WalArchive.StoredWal>> e : wal.entrySet()) {
            List<WalArchive.StoredWal> copies = e.getValue();
            if (copies.size() > 1) {
                boolean differ = copies.stream().map(WalArchive.StoredWal::sha256).distinct().count() > 1;
                List<String> keys = copies.stream().map(WalArchive.StoredWal::key).toList();
                problems.add(new Problem(cluster, differ ? Problem.Kind.WAL_CONFLICT : Problem.Kind.WAL_DUPLICATE, keys.get(0),
                        differ ? "WAL file " + e.getKey() + " is stored " + copies.size() + " times with different contents (" + String.join(", ", keys)
                                + "); archive-get refuses it and recovery stops there"
                                : "WAL file " + e.getKey() + " is stored " + copies.size() + " times with the same content (" + String.join(", ", keys)
                                        + ")"));
            }
            for (WalArchive.StoredWal w : copies) {
                walFiles++;
                WalFileName.Kind kind = WalFileName.kindOf(w.name());
                totalBytes += kind == WalFileName.Kind.SEGMENT || kind == WalFileName.Kind.PARTIAL ? id.walSegmentSize() : w.storedSize();
                tasks.add(() -> checkWal(w, kind, pages, historyText));
            }
        }
        List<StreamedWal.Partial> streamed;
        try {
            streamed = new StreamedWal(storage, layout).all();
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not list cluster \"" + cluster + "\" in repository \"" + storage.describe()
                    + "\": " + e.getMessage(), "check that the repository is mounted and readable by this OS user");
        }
        for (StreamedWal.Partial p : streamed) {
            totalBytes += p.length();
            tasks.add(() -> checkStreamed(p, id));
        }
        Log.info("verify of cluster \"%s\" in repository \"%s\": %d backup(s) (%d files), %d WAL files, %d streamed partial "
                + "cop%s, %s to read, %d jobs", cluster, storage.describe(), complete.size(), files, walFiles, streamed.size(),
                streamed.size() == 1 ? "y" : "ies", Sizes.bytes(totalBytes), jobs);
        batches.add(submit -> tasks.forEach(submit));
        long bytes = runAll(batches, taskCount + tasks.size(), problems, totalBytes);
        checkContinuity(id, wal, historyText, complete, problems);
        double seconds = (System.nanoTime() - t0) / 1e9;
        List<Problem> sorted = new ArrayList<>(problems);
        sorted.sort(Comparator.comparing(Problem::key).thenComparing(Problem::kind));
        return new Result(cluster, complete.size(), incomplete, files, chunks.get(), walFiles, bytes, seconds, sorted, inProgress, leftovers);
    }

    /**
     * The manifest object of a complete backup as the catalog reads it, among the objects listed under it:
     * manifest.json.zst, or when that is not stored, the plain manifest.json of an older pgproof.
     */
    private String manifestKey(String label, Set<String> listed) {
        String key = layout.manifest(label);
        return listed.contains(key) || !listed.contains(layout.legacyManifest(label)) ? key : layout.legacyManifest(label);
    }

    /** A batch of checks: hands each of its tasks to submit, which runs it (and waits while the pool is busy). */
    private interface Batch {
        void feed(java.util.function.Consumer<Callable<TaskResult>> submit);
    }

    /**
     * The checks of one complete backup (its catalog entry), handed to submit as its files stream from its manifest: its
     * identity against the pin, each file, the backup_manifest, and objects under the backup its manifest does not
     * reference (from the listing of its directory, read now). Adds the backup's pieces to {@code chunks}.
     */
    private void backupTasks(BackupCatalog.Entry e, BackupCatalog catalog, ClusterIdentity id, List<Problem> problems, AtomicLong chunks,
            java.util.function.Consumer<Callable<TaskResult>> submit) {
        BackupManifest m = e.manifest();
        String cluster = layout.cluster();
        String label = m.label();
        List<Storage.ObjectInfo> under;
        try {
            under = storage.list(layout.backupDir(label));
        } catch (IOException | RuntimeException ex) {
            problems.add(new Problem(cluster, Problem.Kind.BACKUP_CORRUPT, layout.backupDir(label), "backup " + label
                    + ": its objects cannot be listed: " + oneLine(ex)));
            return;
        }
        Set<String> listed = new HashSet<>();
        under.forEach(o -> listed.add(o.key()));
        String manifestKey = manifestKey(label, listed);
        if (!m.systemIdentifier().equals(id.systemIdentifierString()) || m.pgVersion() != id.pgVersion()) {
            problems.add(new Problem(cluster, Problem.Kind.BACKUP_IDENTITY, manifestKey, "backup " + label + " is of system identifier "
                    + m.systemIdentifier() + ", PostgreSQL " + m.pgVersion() + "; the cluster is pinned to " + id.describe()));
        }
        // What is listed and not referenced is an orphan: each reference found takes its object out of the listing.
        Set<String> unreferenced = listed;
        unreferenced.remove(manifestKey);
        unreferenced.remove(layout.completeMarker(label));
        if (m.pgManifest() != null) {
            unreferenced.remove(m.pgManifest().key());
            BackupManifest.StoredRef ref = m.pgManifest();
            long stored = under.stream().filter(o -> o.key().equals(ref.key())).mapToLong(Storage.ObjectInfo::size).findFirst().orElse(-1L);
            BackupManifest.FileEntry asFile = new BackupManifest.FileEntry("backup_manifest", ref.size(), null, null, ref.sha256(),
                    List.of(new BackupManifest.Chunk(ref.key(), 0, ref.size(), stored, ref.sha256())));
            submit.accept(() -> checkFile(m, asFile, manifestKey));
        }
        try (BackupCatalog.FileStream files = catalog.files(e)) {
            for (BackupManifest.FileEntry f = files.next(); f != null; f = files.next()) {
                BackupManifest.FileEntry file = f;
                chunks.addAndGet(file.chunks().size());
                unreferenced.removeAll(file.objectKeys());
                submit.accept(() -> checkFile(m, file, manifestKey));
            }
        } catch (IOException | RuntimeException ex) {
            problems.add(new Problem(cluster, Problem.Kind.BACKUP_CORRUPT, manifestKey, "backup " + label
                    + ": its manifest cannot be read: " + oneLine(ex)));
            return;   // what it references is not known: no orphans are judged
        }
        for (String key : unreferenced) {
            problems.add(new Problem(cluster, Problem.Kind.BACKUP_ORPHAN, key, "object under backup " + label
                    + " that its manifest does not reference"));
        }
    }

    /**
     * Runs the batches one after the other, each batch's tasks on the pool as the batch hands them over; a batch waits
     * while a few tasks per job are queued, so that no list of tasks grows with a backup's size.
     */
    private long runAll(List<Batch> batches, long taskCount, List<Problem> problems, long totalBytes) {
        AtomicLong bytes = new AtomicLong();
        int slots = jobs * 4;
        java.util.concurrent.Semaphore free = new java.util.concurrent.Semaphore(slots);
        java.util.concurrent.ConcurrentLinkedQueue<Problem> found = new java.util.concurrent.ConcurrentLinkedQueue<>();
        java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
        ExecutorService pool = Executors.newFixedThreadPool(jobs, r -> {
            Thread t = new Thread(r, "verify");
            t.setDaemon(true);
            return t;
        });
        try (Progress progress = new Progress("verify " + layout.cluster(), taskCount, totalBytes)) {
            for (Batch batch : batches) {
                batch.feed(task -> {
                    free.acquireUninterruptibly();
                    if (failure.get() != null) {
                        free.release();
                        return;   // a bug stopped the checks: what is left is not started
                    }
                    pool.execute(() -> {
                        try {
                            TaskResult r = task.call();
                            progress.addBytes(r.bytes());
                            progress.fileDone();
                            found.addAll(r.problems());
                            bytes.addAndGet(r.bytes());
                        } catch (Throwable t) {
                            failure.compareAndSet(null, t);
                        } finally {
                            free.release();
                        }
                    });
                });
                free.acquireUninterruptibly(slots);   // the batch's tasks have ended
                free.release(slots);
            }
        } finally {
            pool.shutdownNow();
        }
        Throwable t = failure.get();
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t != null) {
            throw new IllegalStateException(t);
        }
        problems.addAll(found);
        return bytes.get();
    }

    /**
     * A piece's bytes checked against every checksum it records: the strong one verify vouches for, the one restore
     * checks, and the pair a delta restore keeps bytes on disk by.
     */
    private static final class Checks {
        private final BackupManifest.ContentCheck strong;
        private final BackupManifest.ContentCheck quick;
        private final BackupManifest.ContentCheck same;

        Checks(BackupManifest.Chunk c) {
            strong = c.check();
            quick = c.crc32c() != null ? c.quickCheck() : null;
            same = c.crc32c() != null && c.xxh64() != null ? c.sameCheck() : null;
        }

        void update(byte[] b, int off, int len) {
            strong.update(b, off, len);
            if (quick != null) {
                quick.update(b, off, len);
            }
            if (same != null) {
                same.update(b, off, len);
            }
        }

        boolean match() {
            return strong.matches() & (quick == null || quick.matches()) & (same == null || same.matches());
        }
    }

    /**
     * Reads every chunk of one file, checking each against its size and checksums, then the whole file.
     * The listed (stored) size is not compared with the manifest's: an encrypted repository lists
     * ciphertext sizes; any damage shows in the decompressed content anyway.
     */
    private TaskResult checkFile(BackupManifest m, BackupManifest.FileEntry f, String manifestKey) {
        String cluster = layout.cluster();
        List<Problem> out = new ArrayList<>();
        BackupManifest.ContentCheck whole = f.wholeFile();
        long size = 0;
        long read = 0;
        boolean chunksOk = true;
        byte[] buf = new byte[1 << 16];
        BackupManifest.StoredRef hashes = f.blockHashObject();
        if (hashes != null) {
            String where = "file \"" + f.path() + "\" of backup " + m.label();
            try (InputStream in = storage.open(hashes.key())) {
                byte[] b = in.readAllBytes();
                read += b.length;
                if (!hashes.matches(b)) {
                    out.add(new Problem(cluster, Problem.Kind.BACKUP_CORRUPT, hashes.key(), where + ": its block hashes do not match their size "
                            + "and SHA-256 in the manifest (a later incremental stores the file whole)"));
                }
            } catch (NoSuchFileException e) {
                out.add(new Problem(cluster, Problem.Kind.BACKUP_MISSING, hashes.key(), where + ": its block hashes are missing (a later "
                        + "incremental stores the file whole)"));
            } catch (IOException e) {
                out.add(new Problem(cluster, Problem.Kind.BACKUP_CORRUPT, hashes.key(), where + ": its block hashes cannot be read: " + oneLine(e)));
            }
        }
        // Objects pieces are cut from (block-incremental backups), the last three read: a file alternates between earlier
        // backups' objects (references, XOR bases) and its own.
        Map<String, byte[]> objects = new dev.pgproof.util.LruMap<>(3);
        Set<String> bad = new HashSet<>();
        for (BackupManifest.Chunk c : f.chunks()) {
            String where = "file \"" + f.path() + "\" of backup " + m.label();
            // The piece's object, and for an XOR-stored piece its base.
            List<String> keys = c.xorKey() == null ? List.of(c.key()) : List.of(c.key(), c.xorKey());
            if (c.sourceOffset() != null) {
                byte[] obj = null;
                byte[] base = null;
                for (String key : keys) {
                    byte[] o = objects.get(key);
                    if (o == null && !bad.contains(key)) {
                        try (InputStream in = Compression.byExtension(key.substring(key.lastIndexOf('.') + 1)).decompress(storage.open(key))) {
                            o = in.readAllBytes();
                            read += o.length;
                            objects.put(key, o);
                        } catch (NoSuchFileException e) {
                            bad.add(key);
                            out.add(new Problem(cluster, Problem.Kind.BACKUP_MISSING, key, where + ": stored object is missing"));
                        } catch (IOException | RuntimeException e) {
                            bad.add(key);
                            out.add(new Problem(cluster, Problem.Kind.BACKUP_CORRUPT, key, where + ": stored object cannot be read or decompressed: "
                                    + oneLine(e)));
                        }
                    }
                    if (key.equals(c.key())) {
                        obj = o;
                    } else {
                        base = o;
                    }
                }
                if (obj == null || (c.xorKey() != null && base == null)) {
                    chunksOk = false;
                    continue;
                }
                long from = c.sourceOffset();
                if (c.xorKey() != null) {
                    obj = c.resolve(obj, base);
                    from = 0;
                    if (obj == null) {
                        out.add(new Problem(cluster, Problem.Kind.BACKUP_CORRUPT, c.key(), where + ": stored objects \"" + c.key() + "\" and \""
                                + c.xorKey() + "\" (its XOR base) are shorter than the manifest's piece at " + c.offset() + " needs"));
                        chunksOk = false;
                        continue;
                    }
                } else if (from < 0 || from + c.size() > obj.length) {
                    out.add(new Problem(cluster, Problem.Kind.BACKUP_CORRUPT, c.key(), where + ": stored object has " + obj.length
                            + " bytes, the manifest takes bytes " + from + " to " + (from + c.size())));
                    chunksOk = false;
                    continue;
                }
                Checks part = new Checks(c);
                part.update(obj, (int) from, (int) c.size());
                whole.update(obj, (int) from, (int) c.size());
                size += c.size();
                if (!part.match()) {
                    out.add(new Problem(cluster, Problem.Kind.BACKUP_CORRUPT, c.key(), where + ": bytes " + from + " to " + (from + c.size())
                            + " of the stored object do not match their checksum"));
                    chunksOk = false;
                }
                continue;
            }
            Checks part = new Checks(c);
            long n = 0;
            Compression comp = Compression.byExtension(c.key().substring(c.key().lastIndexOf('.') + 1));
            if (comp == null) {
                out.add(new Problem(cluster, Problem.Kind.BACKUP_CORRUPT, c.key(), where + ": key has no known compression extension"));
                chunksOk = false;
                continue;
            }
            try (InputStream in = comp.decompress(storage.open(c.key()))) {
                int r;
                while ((r = in.read(buf)) > 0) {
                    part.update(buf, 0, r);
                    whole.update(buf, 0, r);
                    n += r;
                }
            } catch (NoSuchFileException e) {
                out.add(new Problem(cluster, Problem.Kind.BACKUP_MISSING, c.key(), where + ": stored chunk is missing"));
                chunksOk = false;
                continue;
            } catch (IOException | RuntimeException e) {
                out.add(new Problem(cluster, Problem.Kind.BACKUP_CORRUPT, c.key(), where + ": stored chunk cannot be read or decompressed: "
                        + oneLine(e)));
                chunksOk = false;
                read += n;
                continue;
            }
            read += n;
            size += n;
            if (n != c.size() || !part.match()) {
                out.add(new Problem(cluster, Problem.Kind.BACKUP_CORRUPT, c.key(), where + ": stored chunk does not match its checksum ("
                        + n + " bytes, the manifest says " + c.size() + ")"));
                chunksOk = false;
            }
        }
        if (chunksOk && (size != f.size() || !whole.matches())) {
            out.add(new Problem(cluster, Problem.Kind.BACKUP_CORRUPT, f.chunks().isEmpty() ? manifestKey : f.chunks().get(0).key(),
                    "file \"" + f.path() + "\" of backup " + m.label() + ": its chunks together do not match the file's size and "
                            + whole.algorithm() + " in the manifest"));
        }
        return new TaskResult(out, read);
    }

    /** Decompresses one stored WAL file, checks the SHA-256 in its name, and its page headers or history text. */
    /** A copy wal-receive stored of the segment it was receiving: its content against its name, its header against the pin. */
    private TaskResult checkStreamed(StreamedWal.Partial p, ClusterIdentity id) {
        String cluster = layout.cluster();
        List<Problem> out = new ArrayList<>();
        try {
            byte[] d = new StreamedWal(storage, layout).readVerified(p);
            WalHeader h = WalHeader.parse(java.util.Arrays.copyOf(d, Math.min(40, d.length)), p.key());
            if (h.systemIdentifier() != id.systemIdentifier()) {
                out.add(new Problem(cluster, Problem.Kind.WAL_HEADER, p.key(), "streamed partial copy of " + p.segment()
                        + " belongs to system identifier " + Long.toUnsignedString(h.systemIdentifier())));
            }
        } catch (NoSuchFileException e) {
            // replaced by a longer copy, or by the complete segment, while verify ran: normal for a running wal-receive
        } catch (WalArchive.CorruptWalException e) {
            out.add(new Problem(cluster, Problem.Kind.WAL_CORRUPT, p.key(), e.getMessage() + "; archive-get refuses it"));
        } catch (IOException e) {
            out.add(new Problem(cluster, Problem.Kind.UNREADABLE, p.key(), "cannot be read: " + oneLine(e)));
        }
        return new TaskResult(out, p.length());
    }

    private TaskResult checkWal(WalArchive.StoredWal w, WalFileName.Kind kind, WalPageCheck pages, Map<Integer, String> historyText) {
        String cluster = layout.cluster();
        List<Problem> out = new ArrayList<>();
        ByteArrayOutputStream buf = new ByteArrayOutputStream(kind == WalFileName.Kind.SEGMENT || kind == WalFileName.Kind.PARTIAL ? 1 << 24 : 1 << 12);
        try {
            new WalArchive(storage, layout).copyVerified(w, buf);
        } catch (WalArchive.CorruptWalException e) {
            String what = e.getMessage().replace("stored WAL file \"" + w.key() + "\" ", "");
            out.add(new Problem(cluster, Problem.Kind.WAL_CORRUPT, w.key(), "WAL file " + w.name() + " " + what
                    + (what.contains("SHA-256") ? ", its name says " + w.sha256() : "")));
            return new TaskResult(out, buf.size());
        } catch (NoSuchFileException e) {
            out.add(new Problem(cluster, Problem.Kind.UNREADABLE, w.key(), "vanished while verify ran"));
            return new TaskResult(out, 0);
        } catch (IOException e) {
            out.add(new Problem(cluster, Problem.Kind.UNREADABLE, w.key(), "cannot be read: " + oneLine(e)));
            return new TaskResult(out, buf.size());
        }
        byte[] content = buf.toByteArray();
        if (kind == WalFileName.Kind.SEGMENT || kind == WalFileName.Kind.PARTIAL) {
            for (String p : pages.check(w.name(), content)) {
                out.add(new Problem(cluster, Problem.Kind.WAL_HEADER, w.key(), "WAL file " + w.name() + " " + p));
            }
        } else if (kind == WalFileName.Kind.HISTORY) {
            int tli = WalFileName.timeline(w.name());
            String text = new String(content, StandardCharsets.UTF_8);
            try {
                TimelineHistory.parse(tli, text);
                historyText.put(tli, text);
            } catch (IllegalArgumentException e) {
                out.add(new Problem(cluster, Problem.Kind.WAL_HISTORY, w.key(), "history file of timeline " + tli + " is malformed: "
                        + e.getMessage()));
            }
        }
        return new TaskResult(out, content.length);
    }

    /** Every complete backup needs every segment from its start to the newest one recovery can reach. */
    private void checkContinuity(ClusterIdentity id, TreeMap<String, List<WalArchive.StoredWal>> wal, Map<Integer, String> historyText,
            List<BackupManifest> complete, List<Problem> problems) {
        String cluster = layout.cluster();
        int seg = id.walSegmentSize();
        Map<Integer, TreeSet<Long>> stored = new TreeMap<>();
        TreeSet<Integer> timelines = new TreeSet<>();
        for (String name : wal.keySet()) {
            WalFileName.Kind kind = WalFileName.kindOf(name);
            if (kind == WalFileName.Kind.SEGMENT) {
                stored.computeIfAbsent(WalFileName.timeline(name), k -> new TreeSet<>()).add(WalFileName.segmentNumber(name, seg));
            }
            timelines.add(WalFileName.timeline(name));
        }
        Map<Integer, List<TimelineHistory.Entry>> histories = new HashMap<>();
        historyText.forEach((tli, text) -> histories.put(tli, TimelineHistory.parse(tli, text)));
        for (TimelineForks.Fork f : TimelineForks.forks(wal, histories, seg)) {
            List<TimelineHistory.Entry> childHistory = histories.get(f.child());
            List<String> affected = new ArrayList<>();
            for (BackupManifest m : complete) {
                if (childHistory.stream().anyMatch(e -> e.timeline() == m.timeline())) {
                    affected.add(m.label());
                }
            }
            if (!affected.isEmpty()) {
                problems.add(new Problem(cluster, Problem.Kind.WAL_TIMELINE_FORK, f.historyKey(), f.describe()
                        + (f.childLast() == null ? "" : ", and timeline " + f.child() + " has WAL up to " + f.childLast())
                        + ": two servers archived under cluster \"" + cluster + "\"; restore and prove of backup(s) " + String.join(", ", affected)
                        + " refuse to guess a timeline without --target-timeline"));
            }
        }
        for (int tli : timelines) {
            if (tli > 1 && !wal.containsKey(String.format("%08X.history", tli))) {
                problems.add(new Problem(cluster, Problem.Kind.WAL_HISTORY, layout.walPrefix() + "history/" + String.format("%08X.history", tli),
                        "timeline " + tli + " has WAL but its history file is missing: recovery cannot follow it to its parent"));
            }
        }
        WalContinuity cont = new WalContinuity(seg, stored);
        Map<WalContinuity.Gap, List<String>> gaps = new LinkedHashMap<>();
        for (BackupManifest m : complete) {
            int target = timelines.isEmpty() ? m.timeline() : timelines.last();
            List<TimelineHistory.Entry> history = target == 1 ? List.of() : histories.get(target);
            boolean known = target == 1 || history != null;
            boolean onChain = target == m.timeline() || known && history.stream().anyMatch(e -> e.timeline() == m.timeline());
            if (!onChain && known) {
                // The backup is on a branch the newest timeline does not descend from: follow its own timeline.
                target = m.timeline();
                history = target == 1 ? List.of() : histories.get(target);
                known = target == 1 || history != null;
            }
            List<TimelineHistory.Entry> chain = WalContinuity.chain(target, history);
            long from = WalFileName.segmentNumber(m.startWal(), seg);
            long to = Math.max(cont.newest(chain, known), WalFileName.segmentNumber(m.stopWal(), seg));
            for (WalContinuity.Gap g : cont.gaps(from, to, chain, known)) {
                gaps.computeIfAbsent(g, k -> new ArrayList<>()).add(m.label());
            }
        }
        gaps.forEach((g, labels) -> problems.add(new Problem(cluster, Problem.Kind.WAL_GAP, layout.walDir(g.first()) + g.first(),
                "WAL gap: " + (g.count() == 1 ? "segment " + g.first() + " is" : "segments " + g.first() + " to " + g.last() + " (" + g.count()
                        + ") are") + " missing; backup(s) " + String.join(", ", labels) + " cannot recover past it")));
    }

    private static String oneLine(Exception e) {
        String s = e.getMessage() == null ? e.toString() : e.getMessage();
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
