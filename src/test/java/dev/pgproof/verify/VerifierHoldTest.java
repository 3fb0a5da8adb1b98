package dev.pgproof.verify;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pgproof.lock.RepoLock;
import dev.pgproof.repo.BackupCatalog;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.repo.ClusterInfo;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.PosixStorage;
import dev.pgproof.storage.Storage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The remains of an expired backup are orphans once no backup references them, unless a reader still holds that backup:
 * an expire that withdrew it while a restore read it keeps its objects until the next expire, and verify must not call
 * that damage.
 */
class VerifierHoldTest {
    @TempDir
    Path dir;

    private final RepoLayout layout = new RepoLayout("main");

    private static void put(Storage storage, String key, String content) throws IOException {
        storage.write(key, content.getBytes(StandardCharsets.UTF_8), false);
    }

    @Test
    void theRemainsOfAnExpiredBackupAReaderHoldsAreNotOrphans() throws IOException {
        Storage storage = new PosixStorage(dir);
        put(storage, layout.clusterInfo(), ClusterInfo.render("main", new ClusterIdentity(7, 15, 16 << 20, 8192, 8192, true), "/srv/main"));
        String label = "20260101-000000F";
        String object = layout.backupDir(label) + "data/base/1/1.0.zst";
        put(storage, object, "a piece");
        new BackupCatalog(storage, layout).markExpired(label);

        assertThat(orphans(storage)).containsExactly(object);
        try (RepoLock hold = RepoLock.hold(storage, layout, label, "restore")) {
            assertThat(orphans(storage)).isEmpty();
        }
        assertThat(orphans(storage)).containsExactly(object);
    }

    private java.util.List<String> orphans(Storage storage) {
        return new Verifier(storage, layout, 1, null).run().problems().stream().filter(p -> p.kind() == Problem.Kind.BACKUP_ORPHAN)
                .map(Problem::key).toList();
    }
}
