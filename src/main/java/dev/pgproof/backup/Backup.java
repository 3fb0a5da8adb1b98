package dev.pgproof.backup;

import dev.pgproof.cluster.LiveCluster;
import dev.pgproof.io.Compression;
import dev.pgproof.io.CountingOutputStream;
import dev.pgproof.io.BlockTreeHash;
import dev.pgproof.io.Hashes;
import dev.pgproof.io.Xor;
import dev.pgproof.repo.BackupCatalog;
import dev.pgproof.repo.BackupManifest;
import dev.pgproof.repo.FileSpool;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import dev.pgproof.util.Progress;
import dev.pgproof.util.Sizes;
import dev.pgproof.util.TestHooks;
import dev.pgproof.wal.WalArchive;
import dev.pgproof.wal.WalFileName;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * A full base backup with the non-exclusive backup API on one connection. Write order: data
 * chunks, backup_manifest, manifest.json.zst, and only after the WAL it needs is archived, the
 * backup.complete marker.
 */
public final class Backup {
    /** Size of the independently compressed pieces of large files. */
    public static final int CHUNK_SIZE = 8 << 20;
    private static final DateTimeFormatter LABEL = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss").withZone(ZoneOffset.UTC);

    /** What the caller chose. */
    public record Options(boolean startFast, int jobs, Compression compression, int level, int archiveTimeoutSeconds, boolean resume,
            String type) {}

    /** The backup an incremental or differential one is based on (null for a full), without its files. */
    private BackupManifest prior;
    /**
     * The prior backup's files with block hashes (incremental and differential backups), spooled to local disk; each is
     * read back, and its block hashes read, when the same file is copied. Null for a full backup.
     */
    private FileSpool priorFiles;
    private String type = "full";

    /** On a standby: the primary, used only to switch WAL so that the backup's last segment gets archived; may be null. */
    private LiveCluster primary;
    private boolean standby;

    /** The label being written, for messages. */
    private volatile String currentLabel;

    /** Objects an interrupted run of this backup left, by key, with their stored sizes (empty for a new backup). */
    private Map<String, Long> leftovers = Map.of();
    /** Where this backup's objects are written: in place, made durable together before its manifest (see {@link Storage.Batch}). */
    private Storage.Batch objects;
    private final java.util.concurrent.atomic.AtomicLong reusedChunks = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong reusedBytes = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong unchangedBytes = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong xorBytes = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong baseBytesRead = new java.util.concurrent.atomic.AtomicLong();
    private final ThreadLocal<java.util.ArrayDeque<byte[]>> basePool = ThreadLocal.withInitial(java.util.ArrayDeque::new);
    /** Verifies page checksums of relation files while copying them; null when the cluster has data checksums off. */
    private PageVerifier pages;

    private final LiveCluster cluster;
    private final Storage storage;
    private final RepoLayout layout;
    private final Options opt;

    public Backup(LiveCluster cluster, Storage storage, RepoLayout layout, Options opt) {
        this.cluster = cluster;
        this.storage = storage;
        this.layout = layout;
        this.opt = opt;
    }

    /** Backs up a standby; {@code primary} (may be null) is used only to switch WAL at the end. */
    public Backup fromStandby(LiveCluster primary) {
        this.standby = true;
        this.primary = primary;
        return this;
    }

    /** The WAL file holding an LSN, named without pg_walfile_name (which refuses to run during recovery). */
    private String walFileOf(String lsn, int timeline) {
        return WalFileName.segmentName(timeline, WalFileName.segmentOf(WalFileName.parseLsn(lsn), cluster.control().walSegmentSize()),
                cluster.control().walSegmentSize());
    }

    /** Takes the backup; returns its summary (the manifest without its files) and its number of files. */
    public BackupCatalog.Entry run() {
        try {
            return take();
        } finally {
            if (priorFiles != null) {
                try {
                    priorFiles.close();
                } catch (IOException e) {
                    Log.debug("closing the prior's spool: %s", e.getMessage());
                }
            }
        }
    }

    private BackupCatalog.Entry take() {
        String name = cluster.name();
        if (!standby) {
            checkArchiving();
        }
        type = opt.type();
        if (!type.equals("full")) {
            choosePrior();
        }
        String label = opt.resume() && type.equals("full") ? resumable() : null;
        if (label == null) {
            label = newLabel();
        }
        currentLabel = label;
        Log.timing("archiving checked, prior backup chosen, label %s", label);
        Instant startTime = Instant.now();
        String timezone;
        Map<Integer, Path> tablespaces = new TreeMap<>();
        String startLsn;
        String startWal;
        try {
            timezone = cluster.query("SHOW timezone");
            try (Statement st = cluster.connection().createStatement();
                    ResultSet rs = st.executeQuery("SELECT oid, pg_tablespace_location(oid) FROM pg_tablespace "
                            + "WHERE spcname NOT IN ('pg_default', 'pg_global')")) {
                while (rs.next()) {
                    tablespaces.put(rs.getInt(1), Path.of(rs.getString(2)));
                }
            }
            Log.timing("time zone and tablespaces read");
            Log.info("backup %s of cluster \"%s\": starting (%s checkpoint)", label, name, opt.startFast() ? "fast" : "spread");
            try (PreparedStatement ps = cluster.connection().prepareStatement(
                    "SELECT l::text, (SELECT timeline_id FROM pg_control_checkpoint()) FROM pg_backup_start(?, ?) AS l")) {
                ps.setString(1, "pgproof " + label);
                ps.setBoolean(2, opt.startFast());
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    startLsn = rs.getString(1);
                    startWal = walFileOf(startLsn, rs.getInt(2));
                }
            }
        } catch (SQLException e) {
            throw new PgproofException(ExitCode.BACKUP_FAILED, "cluster \"" + name + "\": could not start the backup: " + e.getMessage(),
                    "pgproof needs a superuser or a role with EXECUTE on pg_backup_start and pg_backup_stop");
        }
        Log.info("backup %s: started at WAL location %s (%s)", label, startLsn, startWal);
        boolean ok = false;
        try {
            BackupCatalog.Entry m = copyAndFinish(label, startTime, timezone, tablespaces, startLsn, startWal);
            ok = true;
            return m;
        } finally {
            if (!ok) {
                discard(label);
            }
        }
    }

    private void checkArchiving() {
        try {
            String mode = cluster.query("SHOW archive_mode");
            String cmd = cluster.query("SHOW archive_command");
            if ("off".equals(mode) || cmd == null || cmd.isBlank() || cmd.equals("(disabled)")) {
                throw new PgproofException(ExitCode.BACKUP_FAILED, "cluster \"" + cluster.name() + "\": WAL archiving is not set up (archive_mode = "
                        + mode + ", archive_command = '" + (cmd == null ? "" : cmd) + "'); a backup without its WAL cannot be restored",
                        "run: pgproof init --cluster " + cluster.name() + " --configure, then restart PostgreSQL if it says so");
            }
        } catch (SQLException e) {
            throw new PgproofException(ExitCode.CONNECT, "cluster \"" + cluster.name() + "\": could not read archive settings: " + e.getMessage());
        }
    }

    /**
     * The newest incomplete backup of this cluster, to resume: its stored chunks are reused where
     * their content still matches (checked by decompressing and hashing each), the rest is copied again.
     * The caller holds the backup lock, so no other backup is writing it.
     */
    private String resumable() {
        try {
            String found = new BackupCatalog(storage, layout).newestIncompleteFull(e -> Log.warn(
                    "backup %s of cluster \"%s\" is %s; it is never resumed nor used", e.label(), cluster.name(), e.problem()));
            if (found == null) {
                return null;
            }
            // Whatever might make it read as complete goes first: a stale marker, a stale manifest.
            storage.delete(layout.completeMarker(found));
            new BackupCatalog(storage, layout).deleteManifest(found);
            Map<String, Long> objects = new java.util.HashMap<>();
            long bytes = 0;
            for (Storage.ObjectInfo o : storage.list(layout.backupDir(found))) {
                objects.put(o.key(), o.size());
                bytes += o.size();
            }
            leftovers = objects;
            Log.info("backup %s of cluster \"%s\": resuming this interrupted backup; its %d stored objects (%s) are checked and reused where "
                    + "the data did not change", found, cluster.name(), objects.size(), Sizes.bytes(bytes));
            return found;
        } catch (IOException e) {
            throw repoError(e);
        }
    }

    /** Whether the chunk an interrupted run stored under the piece's key holds exactly the piece (decompressed and hashed). */
    private boolean storedMatches(BackupManifest.Chunk piece) {
        if (!leftovers.containsKey(piece.key())) {
            return false;
        }
        BackupManifest.ContentCheck check = piece.check();
        try (InputStream in = opt.compression().decompress(storage.open(piece.key()))) {
            byte[] b = new byte[1 << 16];
            int r;
            while ((r = in.read(b)) > 0) {
                check.update(b, 0, r);
            }
        } catch (IOException | RuntimeException e) {
            Log.debug("stored chunk %s of the interrupted backup is unreadable (%s): copying it again", piece.key(), e.getMessage());
            return false;
        }
        return check.matches();
    }

    /** A piece's checksums (manifest format 3): the SHA-256 of its blocks' hashes, its CRC-32C and its XXH64. */
    private record Sums(String blocksSha256, long crc32c, long xxh64) {
        /** The manifest's piece with these checksums. */
        BackupManifest.Chunk piece(String key, long offset, long size, long storedSize, Long sourceOffset, String xorKey, Long xorOffset) {
            return new BackupManifest.Chunk(key, offset, size, storedSize, null, sourceOffset, xorKey, xorOffset, blocksSha256, crc32c,
                    xxh64);
        }
    }

    /**
     * The checksums of buf[from, from + len), from the window's block hashes (hashes, whose first block starts at buf[0]):
     * with 8 KiB blocks, the blocks' SHA-256 of the piece costs one SHA-256 of its block hashes, not a pass over its bytes.
     */
    private Sums sums(byte[] buf, int from, int len, byte[] hashes) {
        int bs = blockSize();
        String tree = bs == BlockTreeHash.LEAF
                ? BlockTreeHash.ofLeaves(hashes, from / bs * BlockDelta.HASH, (len + bs - 1) / bs * BlockDelta.HASH)
                : BlockTreeHash.of(buf, from, len);
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(buf, from, len);
        return new Sums(tree, crc.getValue(), Hashes.xxh64(buf, from, len));
    }

    /**
     * The prior of an incremental (the newest complete backup) or a differential (the newest full), of
     * this identity, with block hashes, and an ancestor on the current timeline; without one, the
     * backup becomes a full and says why.
     */
    private void choosePrior() {
        String want = type;
        List<BackupManifest> complete;
        int tli;
        try {
            complete = new BackupCatalog(storage, layout).complete();
            tli = Integer.parseInt(cluster.query("SELECT timeline_id FROM pg_control_checkpoint()"));
        } catch (IOException e) {
            throw repoError(e);
        } catch (SQLException e) {
            throw new PgproofException(ExitCode.CONNECT, "cluster \"" + cluster.name() + "\": could not read the timeline: " + e.getMessage());
        }
        String sysid = Long.toUnsignedString(cluster.control().systemIdentifier());
        BackupManifest found = null;
        for (int i = complete.size() - 1; i >= 0 && found == null; i--) {
            BackupManifest m = complete.get(i);
            if (m.systemIdentifier().equals(sysid) && m.pgVersion() == cluster.majorVersion() && (want.equals("incr") || m.type().equals("full"))) {
                found = m;
            }
        }
        String why = null;
        FileSpool files = null;
        try {
            if (found == null) {
                why = "there is no " + (want.equals("incr") ? "complete" : "full") + " backup of this cluster to base it on";
            } else if (!isAncestor(found, tli)) {
                why = "the prior backup " + found.label() + " (timeline " + found.timeline() + ", ending at " + found.stopLsn()
                        + ") is not on the history of the current timeline " + tli;
            } else {
                // The prior's files stream from its manifest to a local spool, found again by path as each file is copied:
                // the heap holds one index entry per file, whatever the size of the prior.
                files = FileSpool.create("prior backup " + found.label());
                try (BackupCatalog.FileStream stream = new BackupCatalog(storage, layout).files(found.label())) {
                    for (BackupManifest.FileEntry f = stream.next(); f != null && why == null; f = stream.next()) {
                        if (f.hasBlockHashes()) {
                            files.add(f);
                        } else if (f.size() > 0) {
                            why = "the prior backup " + found.label() + " has no block hashes (made by an older pgproof)";
                        }
                    }
                }
            }
        } catch (IOException e) {
            closeQuietly(files);
            throw repoError(e);
        }
        if (why != null) {
            closeQuietly(files);
            Log.warn("cluster \"%s\": %s requested, but %s: taking a full backup", cluster.name(), want.equals("incr") ? "an incremental backup"
                    : "a differential backup", why);
            type = "full";
            return;
        }
        prior = found;
        priorFiles = files;
        Log.info("cluster \"%s\": %s backup based on %s (%s, ended %s): unchanged blocks are referenced, not stored again", cluster.name(),
                type.equals("incr") ? "incremental" : "differential", found.label(), found.type(), found.stopTime());
    }

    private static void closeQuietly(FileSpool spool) {
        if (spool != null) {
            try {
                spool.close();
            } catch (IOException e) {
                Log.debug("closing a spool: %s", e.getMessage());
            }
        }
    }

    /** Whether a backup lies on the history of timeline tli (its own timeline, or a parent it left after the backup ended). */
    private boolean isAncestor(BackupManifest m, int tli) {
        if (m.timeline() == tli) {
            return true;
        }
        String history = String.format("%08X.history", tli);
        try {
            WalArchive archive = new WalArchive(storage, layout);
            List<WalArchive.StoredWal> copies = archive.find(history);
            if (copies.isEmpty()) {
                return false;
            }
            String text = new String(archive.readVerified(copies.get(0)), StandardCharsets.UTF_8);
            for (String line : text.split("\n")) {
                String[] f = line.trim().split("\\s+");
                if (f.length >= 2 && f[0].matches("\\d+") && Integer.parseInt(f[0]) == m.timeline()) {
                    return WalFileName.parseLsn(f[1]) >= WalFileName.parseLsn(m.stopLsn());
                }
            }
            return false;
        } catch (IOException e) {
            throw repoError(e);
        }
    }

    private String newLabel() {
        while (true) {
            String label = LABEL.format(Instant.now()) + (type.equals("incr") ? "I" : type.equals("diff") ? "D" : "F");
            try {
                if (storage.list(layout.backupDir(label)).isEmpty()) {
                    return label;
                }
                Thread.sleep(1000);
            } catch (IOException e) {
                throw repoError(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new PgproofException(ExitCode.INTERRUPTED, "backup interrupted");
            }
        }
    }

    /**
     * Heap a backup holds per file of the cluster, whatever the file's size: its listing, its copy task, its index entries
     * in the backup's spool and, for an incremental, the prior's, and its backup_manifest entry (measured by bench/heap.sh:
     * about 440 bytes; this bound leaves room for backup_manifest, rendered in memory). The files' pieces are spooled to
     * local disk ({@link FileSpool}), not held.
     */
    static final long FILE_HEAP = 1024;

    /**
     * Stops a backup whose files would not fit the heap beside the jobs' buffers, before a byte is copied rather than
     * after hours of it (a cluster of some million files with the launcher's default heap).
     */
    private void checkManifestHeap(String label, long bytes, int files) {
        checkManifestHeap(cluster.name(), label, bytes, files, prior == null ? null : prior.label(), opt.jobs(),
                Runtime.getRuntime().maxMemory());
    }

    /** The check of {@link #checkManifestHeap(String, long, int)}, given the prior's label (null: none). */
    public static void checkManifestHeap(String cluster, String label, long bytes, int files, String priorLabel, int jobs, long max) {
        long need = manifestHeap(files, jobs, priorLabel != null);
        if (need > max) {
            throw new PgproofException(ExitCode.CONFIG, "backup " + label + " of cluster \"" + cluster + "\": " + files + " files, "
                    + Sizes.bytes(bytes) + ", need about " + (need >> 20) + " MiB of Java heap (the files' manifest entries"
                    + (priorLabel != null ? ", this backup's and " + priorLabel + "'s" : "") + ", and " + jobs + " jobs' buffers), but this JVM may use "
                    + (max >> 20) + " MiB", "raise the heap: PGPROOF_JAVA_OPTS=-Xmx" + ((need >> 20) * 9 / 8 + 64) + "m");
        }
    }

    /** Heap a backup needs: the jobs' chunk buffers (as the command's own check counts them) and its files' entries. */
    public static long manifestHeap(long files, int jobs, boolean incremental) {
        return (incremental ? 4L : 3L) * CHUNK_SIZE * jobs + (64L << 20) + files * FILE_HEAP;
    }

    private BackupCatalog.Entry copyAndFinish(String label, Instant startTime, String timezone, Map<Integer, Path> tablespaces,
            String startLsn, String startWal) {
        DataDirScanner.Scan scan;
        try {
            scan = DataDirScanner.scan(cluster.pgdata(), tablespaces);
        } catch (IOException e) {
            throw new PgproofException(ExitCode.BACKUP_FAILED, "cluster \"" + cluster.name() + "\": could not list data directory \""
                    + cluster.pgdata() + "\": " + e.getMessage(), "pgproof runs as the cluster owner; check permissions");
        }
        long total = scan.files().stream().mapToLong(DataDirScanner.SourceFile::size).sum();
        checkManifestHeap(label, total, scan.files().size());
        Log.info("backup %s: copying %d files, %s, with %d jobs, %s compression", label, scan.files().size(), Sizes.bytes(total),
                opt.jobs(), opt.compression().id);
        if (cluster.control().dataChecksumsEnabled()) {
            pages = new PageVerifier(startLsn, blockSize(), cluster.control().relSegSize());
            Log.info("backup %s: data checksums are on: verifying the checksum of every relation page older than the backup's start",
                    label);
        }
        TestHooks.pause("backup-after-list", label);
        try (FileSpool entries = FileSpool.create("backup " + label); Storage.Batch batch = storage.batch()) {
            objects = batch;
            return finish(label, startTime, timezone, tablespaces, startLsn, startWal, scan, total, entries);
        } catch (IOException e) {
            throw repoError(e);
        }
    }

    /** Copies the files into the spool, stops the backup, waits for its WAL, writes its manifests and marks it complete. */
    private BackupCatalog.Entry finish(String label, Instant startTime, String timezone, Map<Integer, Path> tablespaces, String startLsn,
            String startWal, DataDirScanner.Scan scan, long total, FileSpool entries) throws IOException {
        copyFiles(label, scan.files(), total, entries);
        BackupManifest.PageChecksums pageChecksums = pages == null ? null : new BackupManifest.PageChecksums(pages.checked.get(),
                pages.skipped.get(), pages.failed.get(), pages.failedFiles.get());
        if (pageChecksums != null) {
            if (pageChecksums.failed() == 0) {
                Log.info("backup %s: page checksums: %d pages verified, no errors (%d skipped: new, written since the backup started, "
                        + "or incomplete)", label, pageChecksums.checked(), pageChecksums.skipped());
            } else {
                Log.warn("backup %s: page checksums: %d of %d verified pages FAILED, in %d file(s) (listed above): the cluster's data is "
                        + "damaged there; the backup holds those pages as they are on disk", label, pageChecksums.failed(),
                        pageChecksums.checked(), pageChecksums.failedFiles());
            }
        }

        // Stop the backup: PostgreSQL switches WAL and hands back backup_label and tablespace_map.
        String stopLsn;
        String stopWal;
        String labelFile;
        String spcMap;
        try (Statement st = cluster.connection().createStatement();
                ResultSet rs = st.executeQuery("SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(false)")) {
            rs.next();
            stopLsn = rs.getString(1);
            labelFile = rs.getString(2);
            spcMap = rs.getString(3);
        } catch (SQLException e) {
            throw new PgproofException(ExitCode.BACKUP_FAILED, "cluster \"" + cluster.name() + "\": could not stop the backup: " + e.getMessage());
        }
        Instant stopTime = Instant.now();
        int timeline = startTimeline(labelFile);
        stopWal = walFileOf(stopLsn, timeline);
        if (standby) {
            switchOnPrimary(label, stopWal);
        }
        Log.info("backup %s: stopped at WAL location %s (%s)", label, stopLsn, stopWal);

        // Wait for the archiver while backup_label and backup_manifest are written (they need only
        // the repository; the wait polls it too and touches the connection only to explain a timeout).
        final String lastWal = stopWal;
        java.util.concurrent.CompletableFuture<Void> walWait = new java.util.concurrent.CompletableFuture<>();
        Thread waiter = new Thread(() -> {
            try {
                waitForWal(label, timeline, startWal, lastWal);
                walWait.complete(null);
            } catch (Throwable t) {
                walWait.completeExceptionally(t);
            }
        }, "backup-wal-wait");
        waiter.setDaemon(true);
        waiter.start();
        boolean waited = false;
        try {
            entries.add(storeSmall(label, "backup_label", labelFile.getBytes(StandardCharsets.UTF_8), stopTime));

            // PostgreSQL-format backup_manifest, for pg_verifybackup on a restored copy; the sizes, from the same pass.
            List<PgBackupManifest.FileEntry> pgFiles = new ArrayList<>();
            long size = 0;
            long stored = 0;
            for (String path : entries.paths()) {
                BackupManifest.FileEntry f = entries.get(path);
                pgFiles.add(PgBackupManifest.FileEntry.withCrc32c(f.path(), f.size(), Instant.parse(f.mtime()), f.crc32c()));
                size += f.size();
                for (BackupManifest.Chunk c : f.chunks()) {
                    stored += c.storedSize();
                }
            }
            byte[] pgManifest = PgBackupManifest.render(pgFiles, List.of(new PgBackupManifest.WalRange(timeline,
                    WalFileName.parseLsn(startLsn), WalFileName.parseLsn(stopLsn))));
            BackupManifest.StoredRef pgRef;
            try {
                String key = layout.pgManifest(label, opt.compression());
                writeChunk(key, pgManifest, pgManifest.length);
                pgRef = new BackupManifest.StoredRef(key, pgManifest.length, Hashes.sha256Hex(pgManifest));
            } catch (IOException e) {
                throw repoError(e);
            }

            if (!leftovers.isEmpty()) {
                removeUnused(label, entries, pgRef.key());
            }
            Log.timing("backup_label and backup_manifest stored");
            // Every data object, backup_label and backup_manifest durable (their files and directories) before the
            // manifest that names them; the last fsyncs overlap the wait for WAL.
            try {
                objects.sync();
            } catch (IOException e) {
                throw repoError(e);
            }
            Log.timing("data objects durable");
            try {
                walWait.join();
                waited = true;
            } catch (java.util.concurrent.CompletionException e) {
                if (e.getCause() instanceof RuntimeException r) {
                    throw r;
                }
                throw e;
            }

            List<BackupManifest.Tablespace> tbs = new ArrayList<>();
            tablespaces.forEach((oid, loc) -> tbs.add(new BackupManifest.Tablespace(oid, loc.toString())));
            List<BackupManifest.Directory> dirs = new ArrayList<>();
            for (String[] d : scan.directories()) {
                dirs.add(new BackupManifest.Directory(d[0], d[1]));
            }
            // Format 3: a file's whole checksum is its CRC-32C, a piece's are the SHA-256 of its blocks' hashes, its CRC-32C
            // and its XXH64 (docs/repository-format.md); a reader of formats 1 and 2 finds no sha256 and refuses the files as damaged, never
            // restores them wrong.
            BackupManifest m = new BackupManifest(MANIFEST_FORMAT, label, type, cluster.name(),
                    Long.toUnsignedString(cluster.control().systemIdentifier()), cluster.majorVersion(), cluster.serverVersionNum(),
                    cluster.control().walSegmentSize(), timeline, startLsn, stopLsn, startWal, stopWal, startTime.toString(),
                    stopTime.toString(), timezone, opt.compression().id, cluster.control().dataChecksumVersion() != 0,
                    cluster.pgdata().toString(), System.getProperty("user.name"), size, stored, labelFile,
                    spcMap == null || spcMap.isEmpty() ? null : spcMap, pgRef, tbs, dirs, null, prior == null ? null : prior.label(),
                    pageChecksums);
            if (prior != null) {
                Log.info("backup %s: %s of %s unchanged since %s, %s stored; %s (changed blocks, or whole windows of scattered changes) "
                        + "stored as their XOR with the earlier version (%s of earlier objects read for it)", label, Sizes.bytes(unchangedBytes.get()),
                        Sizes.bytes(size), prior.label(), Sizes.bytes(stored), Sizes.bytes(xorBytes.get()), Sizes.bytes(baseBytesRead.get()));
            }
            BackupCatalog catalog = new BackupCatalog(storage, layout);
            String sha = catalog.writeManifest(m, entries.rawInPathOrder());
            TestHooks.pause("backup-before-complete", label);
            catalog.markComplete(m, entries.size(), sha);
            Log.timing("manifest written, marked complete");
            return new BackupCatalog.Entry(label, true, m, null, entries.size(), sha);
        } finally {
            if (!waited) {
                waiter.interrupt();   // failed before the WAL arrived: stop polling
            }
        }
    }

    /** After a resume: objects of the interrupted run that this backup does not use (files since dropped) go. */
    private void removeUnused(String label, FileSpool all, String pgManifestKey) {
        java.util.Set<String> used = new java.util.HashSet<>();
        used.add(pgManifestKey);
        int removed = 0;
        try {
            for (String path : all.paths()) {
                for (String key : all.get(path).objectKeys()) {
                    if (leftovers.containsKey(key)) {
                        used.add(key);
                    }
                }
            }
            for (String key : leftovers.keySet()) {
                if (!used.contains(key)) {
                    storage.delete(key);
                    removed++;
                }
            }
        } catch (IOException e) {
            throw repoError(e);
        }
        Log.info("backup %s: resumed; reused %d stored chunks (%s) after checking their checksums, removed %d objects no longer needed",
                label, reusedChunks.get(), Sizes.bytes(reusedBytes.get()), removed);
    }

    private static int startTimeline(String labelFile) {
        for (String line : labelFile.split("\n")) {
            if (line.startsWith("START TIMELINE:")) {
                return Integer.parseInt(line.substring(15).trim());
            }
        }
        throw new IllegalStateException("backup_label without START TIMELINE: " + labelFile);
    }

    /**
     * Copies every file with {@code jobs} readers and {@code jobs} compressors: a reader reads a file
     * in 8 MiB chunks and hashes the whole file in order (for backup_manifest); each chunk is then
     * hashed, compressed and stored on its own, so all cores compress even when one file holds most
     * of the data. Memory is bounded by 2 x jobs chunk buffers.
     */
    private void copyFiles(String label, List<DataDirScanner.SourceFile> files, long total, FileSpool out) {
        List<DataDirScanner.SourceFile> order = new ArrayList<>(files);
        order.sort(Comparator.comparingLong(DataDirScanner.SourceFile::size).reversed());
        ExecutorService readers = Executors.newFixedThreadPool(opt.jobs(), daemon("backup-read"));
        ExecutorService compressors = Executors.newFixedThreadPool(opt.jobs(), daemon("backup-compress"));
        BlockingQueue<byte[]> buffers = new ArrayBlockingQueue<>(2 * opt.jobs());
        for (int i = 0; i < 2 * opt.jobs(); i++) {
            buffers.add(new byte[CHUNK_SIZE]);
        }
        try (Progress progress = new Progress("backup " + label, files.size(), total)) {
            List<Future<Void>> futures = new ArrayList<>();
            for (DataDirScanner.SourceFile f : order) {
                futures.add(readers.submit(() -> {
                    BackupManifest.FileEntry e = copyFile(label, f, buffers, compressors, progress);
                    if (e != null) {
                        out.add(e);   // spooled: the heap keeps its path, not its pieces
                    }
                    return null;
                }));
            }
            for (Future<Void> fu : futures) {
                fu.get();
            }
            long el = progress.elapsedNanos();
            Log.info("backup %s: copied %d files, %s in %s (%s)", label, out.size(), Sizes.bytes(progress.bytes()), Sizes.seconds(el),
                    Sizes.rate(progress.bytes(), el));
        } catch (ExecutionException e) {
            throw failure(label, e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PgproofException(ExitCode.INTERRUPTED, "backup " + label + " interrupted");
        } finally {
            readers.shutdownNow();
            compressors.shutdownNow();
            // After a failure, no copy thread may still commit a chunk once the failed backup's pieces are removed.
            try {
                readers.awaitTermination(60, java.util.concurrent.TimeUnit.SECONDS);
                compressors.awaitTermination(60, java.util.concurrent.TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static java.util.concurrent.ThreadFactory daemon(String name) {
        return r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        };
    }

    private RuntimeException failure(String label, Throwable c) {
        while ((c instanceof ExecutionException || c instanceof java.io.UncheckedIOException) && c.getCause() != null) {
            c = c.getCause();
        }
        if (c instanceof PgproofException) {
            return (PgproofException) c;
        }
        if (c instanceof IOException) {
            return repoError((IOException) c);
        }
        if (c instanceof InterruptedException) {
            return new PgproofException(ExitCode.INTERRUPTED, "backup " + label + " interrupted");
        }
        return new IllegalStateException("backup copy failed", c);
    }

    /** Copies one file as chunks; returns null if it vanished (normal: WAL replay recreates it). */
    private BackupManifest.FileEntry copyFile(String label, DataDirScanner.SourceFile f, BlockingQueue<byte[]> buffers,
            ExecutorService compressors, Progress progress) throws IOException, InterruptedException, ExecutionException {
        InputStream in;
        try {
            in = Files.newInputStream(f.source());
        } catch (NoSuchFileException e) {
            Log.debug("file %s vanished before it was copied", f.path());
            progress.fileDone();
            return null;
        }
        long segment = pages == null ? -1 : PageVerifier.segmentOf(f.path());
        PageVerifier.File pageFile = segment < 0 ? null : pages.file(f.source(), segment);
        java.util.zip.CRC32C whole = new java.util.zip.CRC32C();   // the whole file's checksum, as backup_manifest gives it
        List<Future<Window>> parts = new ArrayList<>();
        long offset = 0;
        BlockDelta.Prior priorFile = priorOf(f.path());
        try (in) {
            int index = 0;
            while (true) {
                byte[] buf = buffers.take();
                int n;
                try {
                    n = in.readNBytes(buf, 0, buf.length);
                } catch (IOException | RuntimeException e) {
                    buffers.add(buf);
                    throw e;
                }
                if (n == 0 && index > 0) {
                    buffers.add(buf);
                    break;
                }
                whole.update(buf, 0, n);
                String key = layout.dataChunk(label, f.path(), index, opt.compression());
                long chunkOffset = offset;
                parts.add(compressors.submit(() -> {
                    try {
                        return storeWindow(key, chunkOffset, buf, n, priorFile, pageFile, progress);
                    } finally {
                        buffers.add(buf);
                    }
                }));
                offset += n;
                index++;
                if (n < buf.length) {
                    break;
                }
            }
        }
        List<BackupManifest.Chunk> chunks = new ArrayList<>();
        java.io.ByteArrayOutputStream hashes = new java.io.ByteArrayOutputStream();
        List<BackupManifest.BadPage> bad = new ArrayList<>();
        for (Future<Window> part : parts) {
            Window w = part.get();
            chunks.addAll(w.pieces());
            hashes.write(w.hashes());
            bad.addAll(w.badPages());
        }
        if (!bad.isEmpty()) {
            reportBadPages(label, f.path(), bad);
        }
        byte[] blockHashes = hashes.toByteArray();
        String inline = null;
        BackupManifest.StoredRef hashObject = null;
        if (blockHashes.length <= INLINE_HASHES) {
            inline = BlockDelta.encode(blockHashes);
        } else {
            String key = layout.blockHashes(label, f.path());
            objects.write(key, blockHashes);
            hashObject = new BackupManifest.StoredRef(key, blockHashes.length, Hashes.sha256Hex(blockHashes));
        }
        progress.fileDone();
        TestHooks.pause("backup-mid-copy", f.path());
        return new BackupManifest.FileEntry(f.path(), offset, Instant.ofEpochMilli(f.mtimeMillis()).toString(), f.mode(), null, chunks,
                inline, bad.isEmpty() ? null : bad, hashObject, whole.getValue());
    }

    /**
     * Block hashes of a file up to this size (64 blocks, a 512 KiB file) are kept in the manifest; a
     * larger file's go to their own object, read back only while the next incremental copies that
     * file, so that no manifest (and no command's memory) grows with the cluster's size at 2 MB per GB.
     */
    static final int INLINE_HASHES = 64 * BlockDelta.HASH;

    /** The format of the manifests this version writes (docs/repository-format.md). */
    static final int MANIFEST_FORMAT = 3;

    /**
     * The prior backup's view of one file: its pieces, in file order, and its block hashes (read from
     * their object for a large file, checked against size and SHA-256); null when the prior has no such
     * file, or its hashes cannot be read (the file is then stored whole, and said so).
     */
    private BlockDelta.Prior priorOf(String path) {
        BackupManifest.FileEntry f;
        try {
            f = priorFiles == null ? null : priorFiles.take(path);   // each file is copied once: its entry is not needed again
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        if (f == null) {
            return null;
        }
        byte[] hashes;
        if (f.blockHashes() != null) {
            hashes = BlockDelta.decode(f.blockHashes());
        } else {
            BackupManifest.StoredRef ref = f.blockHashObject();
            try (InputStream in = storage.open(ref.key())) {
                hashes = in.readAllBytes();
            } catch (IOException e) {
                Log.warn("backup: the block hashes of file \"%s\" in backup %s cannot be read (%s): the file is stored whole", path,
                        prior.label(), e.getMessage());
                return null;
            }
            if (!ref.matches(hashes)) {
                Log.warn("backup: the block hashes of file \"%s\" in backup %s (\"%s\") do not match their SHA-256: the file is stored whole",
                        path, prior.label(), ref.key());
                return null;
            }
        }
        List<BackupManifest.Chunk> pieces = new ArrayList<>(f.chunks());
        pieces.sort(Comparator.comparingLong(BackupManifest.Chunk::offset));
        return new BlockDelta.Prior(hashes, pieces);
    }

    /** Pages of one file named on stderr: the first few one by one (as pg_basebackup does), then a count. */
    private void reportBadPages(String label, String path, List<BackupManifest.BadPage> bad) {
        pages.failedFiles.incrementAndGet();
        int shown = Math.min(bad.size(), 5);
        for (int i = 0; i < shown; i++) {
            BackupManifest.BadPage p = bad.get(i);
            Log.warn("backup %s: page checksum verification failed in file \"%s\", block %d: the page header holds 0x%04X, its content "
                    + "gives 0x%04X (page LSN %s, before the backup started; read %d times)", label, path, p.block(), p.stored(),
                    p.computed(), p.lsn(), PageVerifier.RETRIES + 1);
        }
        if (bad.size() > shown) {
            Log.warn("backup %s: file \"%s\" has %d pages with failed checksums in all (the manifest lists every block)", label, path,
                    bad.size());
        }
    }

    /** What one window (up to a chunk) of a file became: its pieces, its block hashes and the pages whose checksum failed. */
    private record Window(List<BackupManifest.Chunk> pieces, byte[] hashes, List<BackupManifest.BadPage> badPages) {}

    /**
     * Stores one window of a file. Without a prior (full backup, or a file new since the prior), or
     * when every block changed, the window is one object. Otherwise unchanged runs of blocks are
     * referenced where the prior stored them, and the changed runs are stored together in one object.
     */
    private Window storeWindow(String key, long fileOffset, byte[] buf, int n, BlockDelta.Prior priorFile, PageVerifier.File pageFile,
            Progress progress) throws IOException, InterruptedException {
        List<Integer> suspects = new ArrayList<>(0);
        byte[] hashes = BlockDelta.hashes(buf, n, blockSize(), pageFile == null ? null : (from, len) -> {
            if (!pageFile.pageOk(buf, from, len, fileOffset + from)) {
                suspects.add(from);
            }
        });
        // Suspect pages are read again from the file; the window is stored as first read whatever the re-reads show.
        List<BackupManifest.BadPage> bad = suspects.isEmpty() ? List.of() : pageFile.confirm(suspects, fileOffset);
        // The earlier object changed blocks are XOR-stored against, read once per window into this thread's reused buffer:
        // one per window (typically the full backup's chunk of the window), so that a job holds at most one more chunk;
        // blocks whose earlier version lies in another object are stored as they are.
        Map<String, BlockDelta.Base> bases = new java.util.HashMap<>(2);
        java.util.ArrayDeque<byte[]> pool = basePool.get();
        BlockDelta.Objects objects = k -> {
            if (!bases.containsKey(k)) {
                if (!bases.isEmpty()) {
                    return null;
                }
                bases.put(k, readBase(k, pool));
            }
            return bases.get(k);
        };
        try {
            long[] unchanged = new long[1];
            List<BlockDelta.Run> runs = priorFile == null ? null : BlockDelta.plan(fileOffset, buf, n, hashes, priorFile, blockSize(), objects,
                    unchanged);
            unchangedBytes.addAndGet(unchanged[0]);
            return storeRuns(key, fileOffset, buf, n, hashes, bad, runs, bases, progress);
        } finally {
            for (BlockDelta.Base b : bases.values()) {
                if (b != null) {
                    pool.push(b.bytes());
                }
            }
        }
    }

    private Window storeRuns(String key, long fileOffset, byte[] buf, int n, byte[] hashes, List<BackupManifest.BadPage> bad,
            List<BlockDelta.Run> runs, Map<String, BlockDelta.Base> bases, Progress progress) throws IOException {
        if (runs == null || (runs.size() == 1 && runs.get(0).changed() && runs.get(0).xorKey() == null) || n == 0) {
            Sums sums = sums(buf, 0, n, hashes);
            long storedSize;
            if (storedMatches(sums.piece(key, fileOffset, n, 0, null, null, null))) {
                objects.adopt(key);
                storedSize = leftovers.get(key);
                reusedChunks.incrementAndGet();
                reusedBytes.addAndGet(n);
            } else {
                storedSize = writeChunk(key, buf, n);
            }
            progress.addBytes(n);
            return new Window(List.of(sums.piece(key, fileOffset, n, storedSize, null, null, null)), hashes, bad);
        }
        long storedSize = 0;
        if (runs.stream().anyMatch(BlockDelta.Run::changed)) {
            storedSize = writeCompressed(key, z -> {
                byte[] scratch = null;
                for (BlockDelta.Run r : runs) {
                    if (r.changed() && r.xorKey() == null) {
                        z.write(buf, r.bufOffset(), r.length());
                    } else if (r.changed()) {
                        if (scratch == null) {
                            scratch = new byte[1 << 16];
                        }
                        byte[] base = bases.get(r.xorKey()).bytes();
                        for (int at = 0; at < r.length(); at += scratch.length) {
                            int len = Math.min(scratch.length, r.length() - at);
                            System.arraycopy(buf, r.bufOffset() + at, scratch, 0, len);
                            Xor.apply(scratch, 0, base, (int) r.xorOffset() + at, len);
                            z.write(scratch, 0, len);
                        }
                        xorBytes.addAndGet(r.length());
                    }
                }
            });
        }
        List<BackupManifest.Chunk> pieces = new ArrayList<>();
        boolean first = true;
        for (BlockDelta.Run r : runs) {
            Sums sums = sums(buf, r.bufOffset(), r.length(), hashes);
            Long xorOffset = r.xorKey() == null ? null : r.xorOffset();
            if (r.changed()) {
                pieces.add(sums.piece(key, fileOffset + r.bufOffset(), r.length(), first ? storedSize : 0, r.changesOffset(), r.xorKey(),
                        xorOffset));
                first = false;
            } else {
                pieces.add(sums.piece(r.refKey(), fileOffset + r.bufOffset(), r.length(), 0, r.refOffset(), r.xorKey(), xorOffset));
            }
        }
        progress.addBytes(n);
        return new Window(pieces, hashes, bad);
    }

    /**
     * An earlier backup's object, decompressed, as the base its changed blocks are XOR-stored against;
     * null when it cannot be read, and those blocks are stored whole (the earlier backup's own checks
     * are verify's business; restore checks every piece it rebuilds).
     */
    private BlockDelta.Base readBase(String key, java.util.ArrayDeque<byte[]> pool) {
        Compression c = Compression.byExtension(key.substring(key.lastIndexOf('.') + 1));
        if (c == null) {
            return null;
        }
        byte[] b = pool.isEmpty() ? new byte[CHUNK_SIZE] : pool.pop();
        try (InputStream in = c.decompress(storage.open(key))) {
            int n = in.readNBytes(b, 0, b.length);
            if (n == b.length && in.read() >= 0) {
                pool.push(b);   // larger than any object a backup writes (a chunk or a window): not used as a base
                Log.warn("backup: object \"%s\" of the prior backup is larger than a chunk: the blocks changed since it are stored whole", key);
                return null;
            }
            baseBytesRead.addAndGet(n);
            return new BlockDelta.Base(b, n);
        } catch (IOException | RuntimeException e) {
            pool.push(b);
            Log.warn("backup: object \"%s\" of the prior backup cannot be read (%s): the blocks changed since it are stored whole", key,
                    e.getMessage());
            return null;
        }
    }

    private int blockSize() {
        return cluster.control().blockSize();
    }

    private long writeChunk(String key, byte[] data, int len) throws IOException {
        if (!opt.compression().compressesWhole() || len > CHUNK_SIZE) {
            return writeCompressed(key, z -> z.write(data, 0, len));
        }
        // In one call: zstd compresses a chunk held whole about 1.8x as fast as through its stream (docs/benchmarks.md).
        byte[] out = len <= SMALL_OBJECT ? new byte[Compression.bound(len)] : compressed.get();
        int n = opt.compression().compressWhole(data, 0, len, out, opt.level());
        try (Storage.Writer w = objects.create(key)) {
            w.stream().write(out, 0, n);
            w.commit(false);
        }
        return n;
    }

    /** Up to this many bytes, an object compressed whole gets an output buffer of its own; larger ones, the thread's. */
    private static final int SMALL_OBJECT = 256 << 10;

    /** Each copy thread's output buffer for a chunk compressed whole: the "one compressed" chunk buffer the heap check counts. */
    private static final ThreadLocal<byte[]> compressed = ThreadLocal.withInitial(() -> new byte[Compression.bound(CHUNK_SIZE)]);

    /** What is written, uncompressed, into an object of this backup. */
    private interface Body {
        void writeTo(OutputStream out) throws IOException;
    }

    /** Writes an object of this backup, compressed as the backup is; returns the bytes stored. */
    private long writeCompressed(String key, Body body) throws IOException {
        try (Storage.Writer w = objects.create(key)) {
            CountingOutputStream counter = new CountingOutputStream(w.stream());
            OutputStream z = opt.compression().compress(dev.pgproof.io.Streams.nonClosing(counter), opt.level());
            body.writeTo(z);
            z.close();
            w.commit(false);
            return counter.count();
        }
    }

    private BackupManifest.FileEntry storeSmall(String label, String path, byte[] content, Instant mtime) {
        try {
            String key = layout.dataChunk(label, path, 0, opt.compression());
            long stored = writeChunk(key, content, content.length);
            byte[] hashes = BlockDelta.hashes(content, content.length, blockSize());
            Sums sums = sums(content, 0, content.length, hashes);
            return new BackupManifest.FileEntry(path, content.length, mtime.toString(), "0600", null,
                    List.of(sums.piece(key, 0, content.length, stored, null, null, null)),
                    BlockDelta.encode(hashes), null, null, sums.crc32c());
        } catch (IOException e) {
            throw repoError(e);
        }
    }

    /**
     * A standby archives nothing itself: its last segment reaches the repository when the primary
     * finishes that segment. With the primary at hand, switch WAL there if it is still writing it.
     */
    private void switchOnPrimary(String label, String stopWal) {
        if (primary == null) {
            Log.info("backup %s: from a standby, WAL %s is archived when the primary finishes that segment (archive_timeout, or "
                    + "give --primary-pgdata to let pgproof switch WAL there)", label, stopWal);
            return;
        }
        try {
            String current = primary.query("SELECT pg_walfile_name(pg_current_wal_lsn())");
            if (current.substring(8).compareTo(stopWal.substring(8)) <= 0) {
                String switched = primary.query("SELECT pg_walfile_name(pg_switch_wal())");
                Log.info("backup %s: switched WAL on the primary (port %d) so that %s gets archived (was writing %s)", label,
                        primary.endpoint().port(), stopWal, switched);
            }
        } catch (SQLException e) {
            throw new PgproofException(ExitCode.BACKUP_FAILED, "backup " + label + ": could not switch WAL on the primary of cluster \""
                    + cluster.name() + "\": " + e.getMessage(), "pg_switch_wal() needs a superuser or EXECUTE on it, on the primary");
        }
    }

    /** Waits until every WAL segment from the backup's start to its stop is in the repository. */
    private void waitForWal(String label, int timeline, String startWal, String stopWal) {
        int segSize = cluster.control().walSegmentSize();
        long first = WalFileName.segmentNumber(startWal, segSize);
        long last = WalFileName.segmentNumber(stopWal, segSize);
        WalArchive archive = new WalArchive(storage, layout);
        long deadline = System.nanoTime() + opt.archiveTimeoutSeconds() * 1_000_000_000L;
        long begin = System.nanoTime();
        long lastReport = begin;
        long pause = 10;
        Log.info("backup %s: waiting for WAL %s to %s to reach the repository", label, startWal, stopWal);
        for (long seg = first; seg <= last; ) {
            String wal = WalFileName.segmentName(timeline, seg, segSize);
            try {
                if (!archive.find(wal).isEmpty()) {
                    seg++;
                    continue;
                }
            } catch (IOException e) {
                throw repoError(e);
            }
            long now = System.nanoTime();
            if (now > deadline) {
                throw new PgproofException(ExitCode.BACKUP_FAILED, "backup " + label + " of cluster \"" + cluster.name() + "\": WAL segment "
                        + wal + " did not reach the repository within " + opt.archiveTimeoutSeconds() + " s (" + archiverStatus() + ")",
                        "check archive_command (pgproof init --cluster " + cluster.name() + " prints the right one) and PostgreSQL's log",
                        "the backup was not marked complete; raise --archive-timeout if archiving is merely slow");
            }
            if (now - lastReport > 3_000_000_000L) {
                Log.info("backup %s: still waiting for WAL segment %s (%s)", label, wal, Sizes.seconds(now - begin));
                lastReport = now;
            }
            try {
                // The segment usually lands within a few hundred ms (one archive-push): poll every
                // 10, 20, 40, then 50 ms, and every 250 ms after 5 s; a poll lists one directory.
                Thread.sleep(pause);
                pause = now - begin > 5_000_000_000L ? 250 : Math.min(50, pause * 2);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new PgproofException(ExitCode.INTERRUPTED, "backup " + label + " interrupted");
            }
        }
        Log.info("backup %s: WAL %s to %s is archived (%s)", label, startWal, stopWal, Sizes.seconds(System.nanoTime() - begin));
    }

    private String archiverStatus() {
        try (Statement st = cluster.connection().createStatement();
                ResultSet rs = st.executeQuery("SELECT last_archived_wal, failed_count, last_failed_wal, last_failed_time FROM pg_stat_archiver")) {
            rs.next();
            return "pg_stat_archiver: last archived " + rs.getString(1) + ", " + rs.getLong(2) + " failures, last failed "
                    + rs.getString(3) + " at " + rs.getString(4);
        } catch (SQLException e) {
            return "pg_stat_archiver could not be read: " + e.getMessage();
        }
    }

    private void discard(String label) {
        try {
            for (Storage.ObjectInfo o : storage.list(layout.backupDir(label))) {
                storage.delete(o.key());
            }
            // Every copy thread has stopped: a temporary file still here is one of this run's, and a directory made
            // for a write that failed (a full file system) may be left empty. Neither may outlive the failed backup.
            for (Storage.Leftover l : storage.leftovers(layout.backupDir(label))) {
                storage.deleteLeftover(l.key());
            }
            storage.removeEmptyDirectories(layout.backupDir(label));
        } catch (IOException | RuntimeException e) {
            Log.warn("could not remove the pieces of failed backup %s: %s (they are never used: the backup has no backup.complete)",
                    label, e.getMessage());
        }
    }

    private PgproofException repoError(IOException e) {
        if (e instanceof FileSpool.SpoolException spool) {
            return new PgproofException(ExitCode.BACKUP_FAILED, "backup " + (currentLabel == null ? "" : currentLabel + " ") + "of cluster \""
                    + cluster.name() + "\": " + spool.getMessage(), "the backup was not marked complete; free space in "
                    + System.getProperty("java.io.tmpdir") + ", or give pgproof another local directory: PGPROOF_JAVA_OPTS=-Djava.io.tmpdir=DIR");
        }
        if (e instanceof dev.pgproof.storage.RepositoryFullException full) {
            return new PgproofException(ExitCode.BACKUP_FAILED, "repository \"" + storage.describe() + "\" is full: backup "
                    + (currentLabel == null ? "" : currentLabel + " ") + "of cluster \"" + cluster.name() + "\" could not store \"" + full.key()
                    + "\" (" + full.reason() + ")",
                    "the backup was not marked complete and what it stored was removed; earlier backups are untouched",
                    "free space (pgproof expire --cluster " + cluster.name() + " removes what the retention policy no longer keeps, or enlarge the "
                            + "file system), then run the backup again");
        }
        return new PgproofException(ExitCode.BACKUP_FAILED, "could not write to repository \"" + storage.describe() + "\": " + e.getMessage(),
                "check free space and permissions of the repository; the backup was not marked complete");
    }
}
