package dev.pgproof.backup;

import dev.pgproof.cluster.LiveCluster;
import dev.pgproof.io.Compression;
import dev.pgproof.io.CountingOutputStream;
import dev.pgproof.io.Hashes;
import dev.pgproof.repo.BackupCatalog;
import dev.pgproof.repo.BackupManifest;
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
import java.security.MessageDigest;
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
 * chunks, backup_manifest, manifest.json, and only after the WAL it needs is archived, the
 * backup.complete marker.
 */
public final class Backup {
    /** Size of the independently compressed pieces of large files. */
    public static final int CHUNK_SIZE = 8 << 20;
    private static final DateTimeFormatter LABEL = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss").withZone(ZoneOffset.UTC);

    /** What the caller chose. */
    public record Options(boolean startFast, int jobs, Compression compression, int level, int archiveTimeoutSeconds) {}

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

    public BackupManifest run() {
        String name = cluster.name();
        checkArchiving();
        String label = newLabel();
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
            Log.info("backup %s of cluster \"%s\": starting (%s checkpoint)", label, name, opt.startFast() ? "fast" : "spread");
            try (PreparedStatement ps = cluster.connection().prepareStatement(
                    "SELECT l::text, pg_walfile_name(l) FROM pg_backup_start(?, ?) AS l")) {
                ps.setString(1, "pgproof " + label);
                ps.setBoolean(2, opt.startFast());
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    startLsn = rs.getString(1);
                    startWal = rs.getString(2);
                }
            }
        } catch (SQLException e) {
            throw new PgproofException(ExitCode.BACKUP_FAILED, "cluster \"" + name + "\": could not start the backup: " + e.getMessage(),
                    "pgproof needs a superuser or a role with EXECUTE on pg_backup_start and pg_backup_stop");
        }
        Log.info("backup %s: started at WAL location %s (%s)", label, startLsn, startWal);
        boolean ok = false;
        try {
            BackupManifest m = copyAndFinish(label, startTime, timezone, tablespaces, startLsn, startWal);
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

    private String newLabel() {
        while (true) {
            String label = LABEL.format(Instant.now()) + "F";
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

    private BackupManifest copyAndFinish(String label, Instant startTime, String timezone, Map<Integer, Path> tablespaces,
            String startLsn, String startWal) {
        DataDirScanner.Scan scan;
        try {
            scan = DataDirScanner.scan(cluster.pgdata(), tablespaces);
        } catch (IOException e) {
            throw new PgproofException(ExitCode.BACKUP_FAILED, "cluster \"" + cluster.name() + "\": could not list data directory \""
                    + cluster.pgdata() + "\": " + e.getMessage(), "pgproof runs as the cluster owner; check permissions");
        }
        long total = scan.files().stream().mapToLong(DataDirScanner.SourceFile::size).sum();
        Log.info("backup %s: copying %d files, %s, with %d jobs, %s compression", label, scan.files().size(), Sizes.bytes(total),
                opt.jobs(), opt.compression().id);
        TestHooks.pause("backup-after-list", label);
        List<BackupManifest.FileEntry> entries = copyFiles(label, scan.files(), total);

        // Stop the backup: PostgreSQL switches WAL and hands back backup_label and tablespace_map.
        String stopLsn;
        String stopWal;
        String labelFile;
        String spcMap;
        try (Statement st = cluster.connection().createStatement();
                ResultSet rs = st.executeQuery("SELECT lsn::text, pg_walfile_name(lsn), labelfile, spcmapfile FROM pg_backup_stop(false)")) {
            rs.next();
            stopLsn = rs.getString(1);
            stopWal = rs.getString(2);
            labelFile = rs.getString(3);
            spcMap = rs.getString(4);
        } catch (SQLException e) {
            throw new PgproofException(ExitCode.BACKUP_FAILED, "cluster \"" + cluster.name() + "\": could not stop the backup: " + e.getMessage());
        }
        Instant stopTime = Instant.now();
        int timeline = startTimeline(labelFile);
        Log.info("backup %s: stopped at WAL location %s (%s)", label, stopLsn, stopWal);

        List<BackupManifest.FileEntry> all = new ArrayList<>(entries);
        all.add(storeSmall(label, "backup_label", labelFile.getBytes(StandardCharsets.UTF_8), stopTime));
        all.sort(Comparator.comparing(BackupManifest.FileEntry::path));

        // PostgreSQL-format backup_manifest, for pg_verifybackup on a restored copy.
        List<PgBackupManifest.FileEntry> pgFiles = new ArrayList<>();
        for (BackupManifest.FileEntry f : all) {
            pgFiles.add(new PgBackupManifest.FileEntry(f.path(), f.size(), Instant.parse(f.mtime()), f.sha256()));
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

        waitForWal(label, timeline, startWal, stopWal);

        long size = 0;
        long stored = 0;
        for (BackupManifest.FileEntry f : all) {
            size += f.size();
            for (BackupManifest.Chunk c : f.chunks()) {
                stored += c.storedSize();
            }
        }
        List<BackupManifest.Tablespace> tbs = new ArrayList<>();
        tablespaces.forEach((oid, loc) -> tbs.add(new BackupManifest.Tablespace(oid, loc.toString())));
        List<BackupManifest.Directory> dirs = new ArrayList<>();
        for (String[] d : scan.directories()) {
            dirs.add(new BackupManifest.Directory(d[0], d[1]));
        }
        BackupManifest m = new BackupManifest(RepoLayout.FORMAT, label, "full", cluster.name(),
                Long.toUnsignedString(cluster.control().systemIdentifier()), cluster.majorVersion(), cluster.serverVersionNum(),
                cluster.control().walSegmentSize(), timeline, startLsn, stopLsn, startWal, stopWal, startTime.toString(),
                stopTime.toString(), timezone, opt.compression().id, cluster.control().dataChecksumVersion() != 0,
                cluster.pgdata().toString(), System.getProperty("user.name"), size, stored, labelFile,
                spcMap == null || spcMap.isEmpty() ? null : spcMap, pgRef, tbs, dirs, all);
        try {
            BackupCatalog catalog = new BackupCatalog(storage, layout);
            String sha = catalog.writeManifest(m);
            TestHooks.pause("backup-before-complete", label);
            catalog.markComplete(label, sha);
        } catch (IOException e) {
            throw repoError(e);
        }
        return m;
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
    private List<BackupManifest.FileEntry> copyFiles(String label, List<DataDirScanner.SourceFile> files, long total) {
        List<DataDirScanner.SourceFile> order = new ArrayList<>(files);
        order.sort(Comparator.comparingLong(DataDirScanner.SourceFile::size).reversed());
        ExecutorService readers = Executors.newFixedThreadPool(opt.jobs(), daemon("backup-read"));
        ExecutorService compressors = Executors.newFixedThreadPool(opt.jobs(), daemon("backup-compress"));
        BlockingQueue<byte[]> buffers = new ArrayBlockingQueue<>(2 * opt.jobs());
        for (int i = 0; i < 2 * opt.jobs(); i++) {
            buffers.add(new byte[CHUNK_SIZE]);
        }
        List<BackupManifest.FileEntry> out = new ArrayList<>();
        try (Progress progress = new Progress("backup " + label, files.size(), total)) {
            List<Future<BackupManifest.FileEntry>> futures = new ArrayList<>();
            for (DataDirScanner.SourceFile f : order) {
                futures.add(readers.submit(() -> copyFile(label, f, buffers, compressors, progress)));
            }
            for (Future<BackupManifest.FileEntry> fu : futures) {
                BackupManifest.FileEntry e = fu.get();
                if (e != null) {
                    out.add(e);
                }
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
        }
        return out;
    }

    private static java.util.concurrent.ThreadFactory daemon(String name) {
        return r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        };
    }

    private RuntimeException failure(String label, Throwable c) {
        while (c instanceof ExecutionException && c.getCause() != null) {
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
        MessageDigest whole = Hashes.sha256();
        List<Future<BackupManifest.Chunk>> parts = new ArrayList<>();
        long offset = 0;
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
                        MessageDigest part = Hashes.sha256();
                        part.update(buf, 0, n);
                        long storedSize = writeChunk(key, buf, n);
                        progress.addBytes(n);
                        return new BackupManifest.Chunk(key, chunkOffset, n, storedSize, Hashes.hex(part.digest()));
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
        for (Future<BackupManifest.Chunk> part : parts) {
            chunks.add(part.get());
        }
        progress.fileDone();
        TestHooks.pause("backup-mid-copy", f.path());
        return new BackupManifest.FileEntry(f.path(), offset, Instant.ofEpochMilli(f.mtimeMillis()).toString(), f.mode(),
                Hashes.hex(whole.digest()), chunks);
    }

    private long writeChunk(String key, byte[] data, int len) throws IOException {
        try (Storage.Writer w = storage.create(key)) {
            CountingOutputStream counter = new CountingOutputStream(w.stream());
            OutputStream z = opt.compression().compress(dev.pgproof.io.Streams.nonClosing(counter), opt.level());
            z.write(data, 0, len);
            z.close();
            w.commit(false);
            return counter.count();
        }
    }

    private BackupManifest.FileEntry storeSmall(String label, String path, byte[] content, Instant mtime) {
        try {
            String key = layout.dataChunk(label, path, 0, opt.compression());
            long stored = writeChunk(key, content, content.length);
            String sha = Hashes.sha256Hex(content);
            return new BackupManifest.FileEntry(path, content.length, mtime.toString(), "0600", sha,
                    List.of(new BackupManifest.Chunk(key, 0, content.length, stored, sha)));
        } catch (IOException e) {
            throw repoError(e);
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
                Thread.sleep(100);
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
        } catch (IOException | RuntimeException e) {
            Log.warn("could not remove the pieces of failed backup %s: %s (they are never used: the backup has no backup.complete)",
                    label, e.getMessage());
        }
    }

    private PgproofException repoError(IOException e) {
        return new PgproofException(ExitCode.BACKUP_FAILED, "could not write to repository \"" + storage.describe() + "\": " + e.getMessage(),
                "check free space and permissions of the repository; the backup was not marked complete");
    }
}
