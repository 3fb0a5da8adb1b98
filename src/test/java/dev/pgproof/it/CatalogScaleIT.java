package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pgproof.repo.BackupCatalog;
import dev.pgproof.repo.BackupManifest;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.repo.ClusterInfo;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.PosixStorage;
import dev.pgproof.storage.Storage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Memory does not grow with the number of backups: a repository holding {@value #BACKUPS} backups whose
 * manifests together would fill several times the heap given here ({@value #PIECES} pieces each, what a
 * 1.3 TB cluster's full backup in 8 MiB chunks records) is listed by {@code info} and planned by
 * {@code expire --dry-run} in a {@value #HEAP} heap, because the catalog reads manifests without their
 * files, and the files of one backup stream past one at a time. The manifests are written as pgproof writes
 * them; their objects are never read by these commands, so they are not stored. Neither is one backup's
 * manifest held whole: a restore in a heap smaller than it streams its files.
 */
class CatalogScaleIT {
    private static final int BACKUPS = 16;
    private static final int FILES = 1_000;
    private static final int CHUNKS_PER_FILE = 160;
    static final int PIECES = FILES * CHUNKS_PER_FILE;
    private static final String HEAP = "-Xmx160m";

    @TempDir
    Path tmp;

    @Test
    void infoAndExpireOfManyLargeBackupsFitASmallHeap() throws IOException {
        LocalRepo local = LocalRepo.in(tmp);
        Storage storage = new PosixStorage(local.repo);
        RepoLayout layout = new RepoLayout("big");
        ClusterIdentity id = new ClusterIdentity(7, 15, 16 << 20, 8192, 8192, true);
        try (Storage.Writer w = storage.create(layout.clusterInfo())) {
            w.stream().write(ClusterInfo.render("big", id, "/srv/big").getBytes(StandardCharsets.UTF_8));
            w.commit(false);
        }
        BackupCatalog catalog = new BackupCatalog(storage, layout);
        SplittableRandom random = new SplittableRandom(5);
        List<String> labels = new ArrayList<>();
        for (int b = 0; b < BACKUPS; b++) {
            String label = String.format("202601%02d-000000F", b + 1);
            labels.add(label);
            catalog.markComplete(label, catalog.writeManifest(manifest(layout, label, b, random)));
        }
        PgCluster.chownToOwner(local.repo, true);
        Map<String, String> env = Map.of("PGPROOF_JAVA_OPTS", HEAP);
        String repo = local.repo.toString();

        PgCluster.ProcessResult info = Pgproof.run(env, "info", "--cluster", "big", "--repo", repo, "--output", "json").assertOk("info");
        JsonNode backups = new ObjectMapper().readTree(info.stdout()).get("clusters").get(0).get("backups");
        assertThat(Pgproof.labels(backups)).containsExactlyElementsOf(labels);
        for (JsonNode b : backups) {
            assertThat(b.get("files").asInt()).isEqualTo(FILES);
            assertThat(b.get("size").asLong()).isEqualTo((long) PIECES * CHUNK);
        }

        PgCluster.ProcessResult expire = Pgproof.run(env, "expire", "--cluster", "big", "--repo", repo, "--retention-full", "2", "--dry-run")
                .assertOk("expire --dry-run");
        for (String label : labels.subList(0, BACKUPS - 2)) {
            assertThat(expire.stderr()).contains("would remove backup " + label);
        }
        assertThat(expire.stderr()).contains("keeping backup " + labels.get(BACKUPS - 1)).contains("keeping backup " + labels.get(BACKUPS - 2))
                .doesNotContain("OutOfMemoryError");

        // One whole manifest of this size (about 37 MB parsed) does not fit a 24 MiB heap, and a restore never holds it
        // whole: its files stream from the manifest into the restore's parts. So the restore gets past the manifest to the
        // data, and stops at the first stored chunk, which this repository does not have (exit 10, naming it), not with
        // exit 18 for the heap. Its WAL is named in the archive, so that the restore's WAL check lets it that far.
        String wal = "000000010000000000000001";
        try (Storage.Writer w = storage.create(layout.walKey(wal, "ab".repeat(32), dev.pgproof.io.Compression.ZSTD))) {
            w.stream().write(new byte[] {1});
            w.commit(false);
        }
        PgCluster.chownToOwner(local.repo, true);
        Path target = local.ownedDir("restore").resolve("data");
        PgCluster.ProcessResult small = Pgproof.run(Map.of("PGPROOF_JAVA_OPTS", "-Xmx24m"), "restore", "--cluster", "big", "--repo", repo,
                "--pgdata", target.toString(), "--set", labels.get(0));
        assertThat(small.exitCode()).as(small.stderr()).isEqualTo(10);
        assertThat(small.stderr()).contains("restore of backup " + labels.get(0) + ": " + FILES + " files")
                .containsPattern("stored chunk \"big/backup/" + labels.get(0) + "/data/base/16384/164\\d\\d\\.\\d+\\.zst\" is missing")
                .doesNotContain("heap").doesNotContain("\tat ").doesNotContain("Exception in thread");
    }

    private static final long CHUNK = 8 << 20;

    /** A full backup of FILES files of CHUNKS_PER_FILE 8 MiB chunks each, with random SHA-256s (they do not compress). */
    private static BackupManifest manifest(RepoLayout layout, String label, int n, SplittableRandom random) {
        HexFormat hex = HexFormat.of();
        byte[] sha = new byte[32];
        List<BackupManifest.FileEntry> files = new ArrayList<>(FILES);
        for (int f = 0; f < FILES; f++) {
            String path = "base/16384/" + (16400 + f);
            List<BackupManifest.Chunk> chunks = new ArrayList<>(CHUNKS_PER_FILE);
            for (int c = 0; c < CHUNKS_PER_FILE; c++) {
                random.nextBytes(sha);
                chunks.add(new BackupManifest.Chunk(layout.backupDir(label) + "data/" + path + "." + c + ".zst", c * CHUNK, CHUNK, CHUNK / 3,
                        hex.formatHex(sha)));
            }
            random.nextBytes(sha);
            files.add(new BackupManifest.FileEntry(path, CHUNKS_PER_FILE * CHUNK, "2026-01-01T00:00:00Z", "0600", hex.formatHex(sha), chunks,
                    null, null, new BackupManifest.StoredRef(layout.backupDir(label) + "data/" + path + ".hashes.raw", 0, hex.formatHex(sha))));
        }
        String time = Instant.parse("2026-01-01T00:00:00Z").plusSeconds(86_400L * n).toString();
        String wal = String.format("0000000100000000%08X", n + 1);
        String lsn = String.format("0/%X", (n + 1) * 0x1000000L + 0x28);
        return new BackupManifest(2, label, "full", "big", "7", 15, 150000, 16 << 20, 1, lsn, lsn, wal, wal, time, time, "UTC", "zstd",
                true, "/srv/big", "postgres", (long) PIECES * CHUNK, (long) PIECES * CHUNK / 3, null, null, null, List.of(), List.of(), files,
                null);
    }
}
