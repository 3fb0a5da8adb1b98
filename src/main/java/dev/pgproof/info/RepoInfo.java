package dev.pgproof.info;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.pgproof.repo.BackupCatalog;
import dev.pgproof.repo.BackupManifest;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.repo.ClusterInfo;
import dev.pgproof.repo.ProofCatalog;
import dev.pgproof.repo.ProofRecord;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.Storage;
import dev.pgproof.wal.StreamedWal;
import dev.pgproof.wal.WalArchive;
import dev.pgproof.wal.WalFileName;
import dev.pgproof.wal.WalRanges;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/** What `pgproof info` reports about one cluster in a repository (also its JSON form, docs/json-output.md). */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record RepoInfo(String name, Identity identity, List<Backup> backups, List<Incomplete> incompleteBackups, Wal wal,
        Window recoveryWindow, Proof newestProof, Streamed streamed) {

    /** The newest partial copy wal-receive stored: the segment it was receiving and the LSN the copy reaches. */
    public record Streamed(String segment, String toLsn, long bytes) {}

    public record Identity(String systemIdentifier, int pgVersion, int walSegmentSize, int blockSize, boolean dataChecksums) {}

    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Backup(String label, String type, String startTime, String stopTime, int timeline, String startLsn, String stopLsn,
            String startWal, String stopWal, long size, long storedSize, int files, PageChecksums pageChecksums) {}

    /**
     * What the backup found verifying data page checksums (absent when it did not verify them): pages
     * checked, skipped (new, written after the backup started, incomplete), failed, and per file the
     * blocks that failed.
     */
    public record PageChecksums(long checked, long skipped, long failed, List<BadFile> files) {}

    /** A file with pages whose checksum failed: its path in the data directory and the block numbers in that file. */
    public record BadFile(String path, List<Long> blocks) {}

    public record Incomplete(String label, String problem) {}

    public record Segments(String first, String last, long count) {}

    public record Wal(List<Integer> timelines, String first, String last, long segments, List<Segments> ranges, List<Segments> gaps,
            List<String> conflicting) {}

    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Window(String fromBackup, String fromTime, String fromLsn, String toLsn, String toWal, String streamedToLsn) {}

    /** The newest proof of the cluster (by finishedAt), passed or failed, with the names of the checks that failed. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Proof(String label, String backupLabel, String startedAt, String finishedAt, boolean passed, String target,
            String reachedLsn, String reachedTime, int checks, List<String> failedChecks) {}

    public static RepoInfo of(Storage storage, String cluster) throws IOException {
        RepoLayout layout = new RepoLayout(cluster);
        ClusterIdentity id = ClusterInfo.read(storage, layout);
        List<Backup> backups = new ArrayList<>();
        List<Incomplete> incomplete = new ArrayList<>();
        List<BackupManifest> complete = new ArrayList<>();
        Map<String, Integer> fileCounts = new java.util.HashMap<>();
        BackupCatalog catalog = new BackupCatalog(storage, layout);
        for (BackupCatalog.Entry e : catalog.list()) {   // summaries: one backup's files at most are held at a time
            if (e.complete()) {
                complete.add(e.manifest());
                fileCounts.put(e.label(), e.fileCount());
            } else if (!e.expired()) {
                incomplete.add(new Incomplete(e.label(), e.problem()));
            }
        }
        complete.sort(BackupCatalog.BY_STOP_TIME);
        for (BackupManifest m : complete) {
            backups.add(new Backup(m.label(), m.type(), m.startTime(), m.stopTime(), m.timeline(), m.startLsn(), m.stopLsn(), m.startWal(),
                    m.stopWal(), m.size(), m.storedSize(), fileCounts.get(m.label()), pageChecksums(catalog, m)));
        }
        TreeMap<String, List<WalArchive.StoredWal>> all = new WalArchive(storage, layout).listAll();
        int seg = id.walSegmentSize();
        TreeSet<Long> segs = WalRanges.segments(all, seg, 0);
        TreeSet<Integer> tlis = WalRanges.timelines(all);
        List<Segments> ranges = new ArrayList<>();
        List<Segments> gaps = new ArrayList<>();
        List<WalRanges.Range> rs = WalRanges.ranges(segs);
        for (int i = 0; i < rs.size(); i++) {
            WalRanges.Range r = rs.get(i);
            ranges.add(new Segments(name(all, r.first(), seg), name(all, r.last(), seg), r.last() - r.first() + 1));
            if (i > 0) {
                long gFirst = rs.get(i - 1).last() + 1;
                long gLast = r.first() - 1;
                int tli = tlis.isEmpty() ? 1 : tlis.last();
                gaps.add(new Segments(WalFileName.segmentName(tli, gFirst, seg), WalFileName.segmentName(tli, gLast, seg), gLast - gFirst + 1));
            }
        }
        List<String> conflicting = new ArrayList<>();
        for (Map.Entry<String, List<WalArchive.StoredWal>> e : all.entrySet()) {
            if (e.getValue().stream().map(WalArchive.StoredWal::sha256).distinct().count() > 1) {
                conflicting.add(e.getKey());
            }
        }
        Wal wal = new Wal(new ArrayList<>(tlis), segs.isEmpty() ? null : name(all, segs.first(), seg),
                segs.isEmpty() ? null : name(all, segs.last(), seg), segs.size(), ranges, gaps, conflicting);
        Streamed streamed = null;
        StreamedWal.Partial newest = null;
        for (StreamedWal.Partial p : new StreamedWal(storage, layout).all()) {
            if (newest == null || p.segment().compareTo(newest.segment()) > 0
                    || (p.segment().equals(newest.segment()) && p.length() > newest.length())) {
                newest = p;
            }
        }
        if (newest != null && !all.containsKey(newest.segment())) {
            streamed = new Streamed(newest.segment(), WalFileName.formatLsn(WalFileName.segmentStartLsn(newest.segment(), seg) + newest.length()),
                    newest.length());
        }
        Window window = null;
        for (BackupManifest m : complete) {
            long start = WalFileName.segmentNumber(m.startWal(), seg);
            long stop = WalFileName.segmentNumber(m.stopWal(), seg);
            TreeSet<Long> fromTli = WalRanges.segments(all, seg, m.timeline());
            boolean usable = true;
            for (long s = start; s <= stop; s++) {
                usable &= fromTli.contains(s);
            }
            if (usable) {
                long end = stop;
                while (fromTli.contains(end + 1)) {
                    end++;
                }
                // The segment wal-receive is receiving continues the archive: the window reaches as far as its copy.
                boolean continues = streamed != null && WalFileName.segmentNumber(streamed.segment(), seg) == end + 1
                        && Integer.compareUnsigned(WalFileName.timeline(streamed.segment()), m.timeline()) >= 0;
                window = new Window(m.label(), m.stopTime(), m.stopLsn(), WalFileName.formatLsn((end + 1) * seg),
                        name(all, end, seg), continues ? streamed.toLsn() : null);
                break;
            }
        }
        Proof proof = new ProofCatalog(storage, layout).newest().map(p -> new Proof(p.label(), p.backupLabel(), p.startedAt(),
                p.finishedAt(), p.passed(), p.target(), p.reachedLsn(), p.reachedTime(), p.checks().size(),
                p.checks().stream().filter(c -> !c.passed()).map(ProofRecord.Check::name).toList())).orElse(null);
        return new RepoInfo(cluster, new Identity(id.systemIdentifierString(), id.pgVersion(), id.walSegmentSize(), id.blockSize(),
                id.dataChecksums()), backups, incomplete, wal, window, proof, streamed);
    }

    /** What the backup's page checksum verification found; the files with failing pages stream from its manifest. */
    private static PageChecksums pageChecksums(BackupCatalog catalog, BackupManifest m) throws IOException {
        BackupManifest.PageChecksums pc = m.pageChecksums();
        if (pc == null) {
            return null;
        }
        List<BadFile> bad = new ArrayList<>();
        if (pc.failed() > 0) {
            try (BackupCatalog.FileStream files = catalog.files(m.label())) {
                for (BackupManifest.FileEntry f = files.next(); f != null; f = files.next()) {
                    if (f.pageChecksumErrors() != null && !f.pageChecksumErrors().isEmpty()) {
                        bad.add(new BadFile(f.path(), f.pageChecksumErrors().stream().map(BackupManifest.BadPage::block).toList()));
                    }
                }
            }
        }
        return new PageChecksums(pc.checked(), pc.skipped(), pc.failed(), bad);
    }

    /** The stored name of segment number s (on the highest timeline that has it). */
    private static String name(Map<String, List<WalArchive.StoredWal>> all, long s, int seg) {
        String best = null;
        for (String n : all.keySet()) {
            if (WalFileName.kindOf(n) == WalFileName.Kind.SEGMENT && WalFileName.segmentNumber(n, seg) == s) {
                best = n;
            }
        }
        return best;
    }

    /** Cluster names present in a repository: top-level entries holding a cluster.info. */
    public static List<String> clusters(Storage storage) throws IOException {
        List<String> out = new ArrayList<>();
        for (String p : storage.listPrefixes("")) {
            if (storage.exists(p + "cluster.info")) {
                out.add(p.substring(0, p.length() - 1));
            }
        }
        return out;
    }
}
