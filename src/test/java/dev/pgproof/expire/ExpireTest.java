package dev.pgproof.expire;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pgproof.repo.BackupCatalog;
import dev.pgproof.repo.BackupManifest;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.PosixStorage;
import dev.pgproof.storage.Storage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Expire on a real local repository of synthetic backups: what a kept incremental references stays. */
class ExpireTest {
    private static final int SEG = 16 * 1024 * 1024;

    @TempDir
    Path dir;

    private Storage storage;
    private final RepoLayout layout = new RepoLayout("main");

    private void put(String key, String content) throws IOException {
        try (Storage.Writer w = storage.create(key)) {
            w.stream().write(content.getBytes(StandardCharsets.UTF_8));
            w.commit(false);
        }
    }

    /** A complete backup that ended daysAgo, whose one file is made of the given pieces. */
    private void backup(String label, String type, double daysAgo, long startSeg, List<BackupManifest.Chunk> pieces, String prior)
            throws IOException {
        Instant stop = Instant.now().minus((long) (daysAgo * 24 * 60), ChronoUnit.MINUTES);
        String lsn = String.format("%X/%X", (startSeg * SEG) >>> 32, (startSeg * SEG) & 0xffffffffL);
        String wal = dev.pgproof.wal.WalFileName.segmentName(1, startSeg, SEG);
        BackupManifest m = new BackupManifest(1, label, type, "main", "1", 15, 150000, SEG, 1, lsn, lsn, wal, wal, stop.toString(),
                stop.toString(), "UTC", "zstd", false, "/x", "postgres", 16, 8, null, null, null, List.of(), List.of(),
                List.of(new BackupManifest.FileEntry("base/1/1", 16, stop.toString(), "0600", "x", pieces, "")), prior);
        BackupCatalog c = new BackupCatalog(storage, layout);
        c.markComplete(label, c.writeManifest(m));
    }

    @Test
    void aBackupOfAnOlderPgproofWithAPlainManifestIsVerifiedAndExpiredLikeAnyOther() throws IOException {
        storage = new PosixStorage(dir);
        put(layout.clusterInfo(), dev.pgproof.repo.ClusterInfo.render("main", new dev.pgproof.repo.ClusterIdentity(1, 15, SEG, 8192, 8192, true), "/x"));
        BackupCatalog catalog = new BackupCatalog(storage, layout);
        for (String label : List.of("F1", "F2")) {
            Instant stop = Instant.now().minus(label.equals("F1") ? 10 : 1, ChronoUnit.DAYS);
            String wal = dev.pgproof.wal.WalFileName.segmentName(1, 1, SEG);
            BackupManifest m = new BackupManifest(1, label, "full", "main", "1", 15, 150000, SEG, 1, "0/1000000", "0/1000000", wal, wal,
                    stop.toString(), stop.toString(), "UTC", "zstd", false, "/x", "postgres", 0, 0, null, null, null, List.of(), List.of(),
                    List.of(), null);
            if (label.equals("F1")) {
                // As an older pgproof stored it: plain JSON in manifest.json, the marker naming the SHA-256 of those bytes.
                byte[] json = dev.pgproof.repo.Json.MAPPER.writeValueAsBytes(m);
                put(layout.legacyManifest(label), new String(json, StandardCharsets.UTF_8));
                catalog.markComplete(label, dev.pgproof.io.Hashes.sha256Hex(json));
            } else {
                catalog.markComplete(label, catalog.writeManifest(m));
            }
        }
        assertThat(storage.exists(layout.manifest("F1"))).isFalse();
        assertThat(catalog.complete()).extracting(BackupManifest::label).containsExactly("F1", "F2");
        // Neither manifest object is taken for an object its backup does not reference.
        assertThat(new dev.pgproof.verify.Verifier(storage, layout, 1, null).run().problems())
                .noneMatch(p -> p.key().startsWith(layout.backupPrefix()));

        Expire.Result r = new Expire(storage, layout, SEG).run(new Retention.Policy(1, null), false);
        assertThat(r.expiredBackups()).containsExactly("F1");
        assertThat(storage.list(layout.backupDir("F1"))).isEmpty();
        assertThat(storage.exists(layout.manifest("F2"))).isTrue();
    }

    @Test
    void anExpiredBackupKeepsWhatAKeptIncrementalReferencesAndIsNeitherIncompleteNorResumable() throws IOException {
        storage = new PosixStorage(dir);
        put(layout.clusterInfo(), dev.pgproof.repo.ClusterInfo.render("main", new dev.pgproof.repo.ClusterIdentity(1, 15, SEG, 8192, 8192, true), "/x"));
        String a = layout.backupDir("F1") + "data/base/1/1.0.zst";
        String b = layout.backupDir("F1") + "data/base/1/1.1.zst";
        String d = layout.backupDir("F1") + "data/base/1/1.2.zst";
        put(a, "block a");
        put(b, "block b");
        put(d, "block d");
        backup("F1", "full", 10, 1, List.of(new BackupManifest.Chunk(a, 0, 8, 4, "x"), new BackupManifest.Chunk(b, 8, 8, 4, "y"),
                new BackupManifest.Chunk(d, 16, 8, 4, "w")), null);
        String c = layout.backupDir("I1") + "data/base/1/1.1.zst";
        put(c, "block c");
        // I1 keeps F1's first piece by reference and stores its own second piece as its XOR with F1's second (its base).
        backup("I1", "incr", 9, 3, List.of(new BackupManifest.Chunk(a, 0, 8, 0, "x", 0L),
                new BackupManifest.Chunk(c, 8, 8, 4, "z", 0L, b, 0L)), "F1");
        backup("F2", "full", 1, 5, List.of(), null);
        for (String seg : List.of("000000010000000000000001", "000000010000000000000002", "000000010000000000000003",
                "000000010000000000000005")) {
            put(layout.walKey(seg, "0".repeat(64), dev.pgproof.io.Compression.ZSTD), "wal");
        }
        // wal-receive's partial copies: older than any kept backup needs, of an archived segment, of the segment being received.
        String oldCopy = layout.streamKey("000000010000000000000002", 100, "1".repeat(64), dev.pgproof.io.Compression.ZSTD);
        String archivedCopy = layout.streamKey("000000010000000000000005", 200, "2".repeat(64), dev.pgproof.io.Compression.ZSTD);
        String liveCopy = layout.streamKey("000000010000000000000006", 300, "3".repeat(64), dev.pgproof.io.Compression.ZSTD);
        for (String k : List.of(oldCopy, archivedCopy, liveCopy)) {
            put(k, "partial");
        }

        // A recovery window of 7 days keeps F2 (in it) and I1 (the newest before it), not F1.
        Expire.Result r = new Expire(storage, layout, SEG).run(new Retention.Policy(null, 7), false);
        assertThat(r.expiredBackups()).containsExactly("F1");
        assertThat(storage.exists(a)).as("F1's piece that I1 references").isTrue();
        assertThat(storage.exists(b)).as("F1's piece I1 XOR-stores against").isTrue();
        assertThat(storage.exists(d)).as("F1's piece nobody references").isFalse();
        assertThat(storage.exists(layout.completeMarker("F1"))).isFalse();
        assertThat(storage.exists(layout.expiredMarker("F1"))).isTrue();
        // WAL from the start of I1 (segment 3) on is kept.
        assertThat(storage.list(layout.walPrefix())).extracting(o -> o.key().substring(o.key().lastIndexOf('/') + 1, o.key().lastIndexOf('/') + 25))
                .containsExactly("000000010000000000000003", "000000010000000000000005");
        assertThat(storage.list(layout.streamPrefix())).extracting(Storage.ObjectInfo::key).containsExactly(liveCopy);

        BackupCatalog.Entry f1 = new BackupCatalog(storage, layout).load("F1");
        assertThat(f1.complete()).isFalse();
        assertThat(f1.expired()).isTrue();
        assertThat(dev.pgproof.info.RepoInfo.of(storage, "main").incompleteBackups()).isEmpty();
        // verify sees F1's remains as an expired backup, not an incomplete one (its synthetic contents are judged elsewhere).
        assertThat(new dev.pgproof.verify.Verifier(storage, layout, 1, null).run().problems())
                .noneMatch(p -> p.key().startsWith(layout.backupDir("F1")) && !p.kind().equals("backup-corrupt"));

        // A second run changes nothing; once I1 goes too, F1's remains go with it.
        new Expire(storage, layout, SEG).run(new Retention.Policy(null, 7), false);
        assertThat(storage.exists(a)).isTrue();
        new Expire(storage, layout, SEG).run(new Retention.Policy(1, null), false);
        assertThat(storage.exists(a)).isFalse();
        assertThat(storage.exists(b)).isFalse();
        assertThat(storage.list(layout.backupDir("F1"))).isEmpty();
        assertThat(storage.list(layout.backupDir("I1"))).isEmpty();
    }
    @Test
    void expireRemovesOldLeftoversKeepsFreshOnesAndNeverTouchesADamagedBackup() throws IOException {
        storage = new PosixStorage(dir);
        put(layout.clusterInfo(), dev.pgproof.repo.ClusterInfo.render("main", new dev.pgproof.repo.ClusterIdentity(1, 15, SEG, 8192, 8192, true), "/x"));
        String chunk = layout.backupDir("F1") + "data/base/1/1.0.zst";
        put(chunk, "block a");
        backup("F1", "full", 3, 1, List.of(new BackupManifest.Chunk(chunk, 0, 8, 4, "x")), null);
        backup("F2", "full", 1, 2, List.of(new BackupManifest.Chunk(chunk, 0, 8, 4, "x")), null);
        // F1's manifest changed after completion: damaged.
        java.nio.file.Files.writeString(dir.resolve(layout.manifest("F1")), "{}");
        Path walDir = java.nio.file.Files.createDirectories(dir.resolve("main/wal/0000000100000000"));
        Path old = walDir.resolve(".000000010000000000000009-abc.zst.tmp.123.ff");
        Path fresh = walDir.resolve(".00000001000000000000000A-abc.zst.tmp.124.ee");
        java.nio.file.Files.write(old, new byte[100]);
        java.nio.file.Files.write(fresh, new byte[100]);
        java.nio.file.Files.setLastModifiedTime(old, java.nio.file.attribute.FileTime.from(Instant.now().minus(2, ChronoUnit.HOURS)));

        BackupCatalog.Entry damaged = new BackupCatalog(storage, layout).load("F1");
        assertThat(damaged.damaged()).isTrue();
        assertThat(damaged.problem()).isEqualTo("damaged: \"main/backup/F1/manifest.json.zst\" does not match the SHA-256 that "
                + "\"main/backup/F1/backup.complete\" records (it was changed or damaged after the backup completed)");

        Expire.Result r = new Expire(storage, layout, SEG).run(new Retention.Policy(1, null), false);
        assertThat(r.leftoversRemoved()).containsExactly("main/wal/0000000100000000/" + old.getFileName());
        assertThat(r.removedIncomplete()).isEmpty();
        assertThat(old).doesNotExist();
        assertThat(fresh).exists();
        assertThat(storage.exists(layout.manifest("F1"))).isTrue();
        assertThat(storage.exists(chunk)).isTrue();
        assertThat(storage.list("main/wal/")).isEmpty();
    }
}
