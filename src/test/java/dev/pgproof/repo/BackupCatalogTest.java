package dev.pgproof.repo;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pgproof.storage.PosixStorage;
import dev.pgproof.storage.Storage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The resumable full backup found from the markers alone is the one the whole catalog listing names. */
class BackupCatalogTest {
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

    private void complete(String label, String type) throws IOException {
        String now = Instant.now().toString();
        String wal = "000000010000000000000001";
        BackupManifest m = new BackupManifest(1, label, type, "main", "1", 15, 150000, 16 << 20, 1, "0/1000028", "0/1000100", wal, wal, now,
                now, "UTC", "zstd", false, "/x", "postgres", 16, 8, null, null, null, List.of(), List.of(), List.of(), null);
        put(layout.backupDir(label) + "data/base/1/1.0.zst", "data");
        BackupCatalog c = new BackupCatalog(storage, layout);
        c.markComplete(label, c.writeManifest(m));
    }

    /** What resuming used before: every entry of the full listing, the newest incomplete, unexpired full backup. */
    private String fromListing() throws IOException {
        String found = null;
        for (BackupCatalog.Entry e : new BackupCatalog(storage, layout).list()) {
            if (!e.complete() && !e.expired() && !e.damaged() && e.label().endsWith("F") && (found == null || e.label().compareTo(found) > 0)) {
                found = e.label();
            }
        }
        return found;
    }

    private void check(String expected) throws IOException {
        List<String> damaged = new java.util.ArrayList<>();
        assertThat(new BackupCatalog(storage, layout).newestIncompleteFull(e -> damaged.add(e.label()))).isEqualTo(expected)
                .isEqualTo(fromListing());
        assertThat(damaged).containsExactlyElementsOf(new BackupCatalog(storage, layout).list().stream().filter(BackupCatalog.Entry::damaged)
                .map(BackupCatalog.Entry::label).filter(l -> l.endsWith("F")).sorted(java.util.Comparator.reverseOrder()).toList());
    }

    @Test
    void newestIncompleteFullMatchesTheFullListing() throws IOException {
        storage = new PosixStorage(dir);
        check(null);
        complete("20260101-000000F", "full");
        put(layout.backupDir("20260102-000000I") + "data/base/1/1.0.zst", "an interrupted incremental is never resumed");
        check(null);
        put(layout.backupDir("20260103-000000F") + "data/base/1/1.0.zst", "interrupted full");
        check("20260103-000000F");
        complete("20260104-000000F", "full");
        check("20260103-000000F");
        // Marked complete, but its manifest no longer matches the marker: damaged, never resumed (it would replace objects).
        put(layout.backupDir("20260105-000000F") + "data/x", "x");
        complete("20260105-000000F", "full");
        Files.writeString(dir.resolve(layout.manifest("20260105-000000F")), "{}");
        check("20260103-000000F");
        // Expired remains and an empty directory are never resumed.
        put(layout.expiredMarker("20260106-000000F"), "{}");
        put(layout.backupDir("20260106-000000F") + "data/base/1/1.0.zst", "kept for a reference");
        Files.createDirectories(dir.resolve(layout.backupDir("20260107-000000F")));
        check("20260103-000000F");
        // Marked complete, manifest gone: damaged too.
        complete("20260108-000000F", "full");
        Files.delete(dir.resolve(layout.manifest("20260108-000000F")));
        check("20260103-000000F");
        // A marker that is not JSON.
        complete("20260109-000000F", "full");
        Files.writeString(dir.resolve(layout.completeMarker("20260109-000000F")), "{\"label\": ");
        check("20260103-000000F");
    }
}
