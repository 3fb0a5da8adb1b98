package dev.pgproof.storage;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The storage contract on a directory, plus what only posix has (temporary files beside the target). */
class PosixStorageContractTest extends StorageContract {
    @TempDir
    Path root;

    @Override
    protected Storage storage() {
        return new PosixStorage(root);
    }

    @Override
    protected void assertNoLeftovers(Storage s) throws Exception {
        try (Stream<Path> files = Files.walk(root)) {
            assertThat(files.filter(p -> p.getFileName().toString().contains(".tmp."))).isEmpty();
        }
    }

    @Test
    void removeEmptyDirectoriesTakesAFailedBackupsEmptyTreeAndKeepsWhatHoldsFiles() throws Exception {
        Storage s = storage();
        try (Storage.Writer w = s.create("main/backup/B/data/base/1/kept")) {
            w.stream().write(1);
            w.commit(true);
        }
        Files.createDirectories(root.resolve("main/backup/A/data/base/5/sub"));
        Files.createDirectories(root.resolve("main/backup/B/data/base/2"));
        s.removeEmptyDirectories("main/backup/A/");
        s.removeEmptyDirectories("main/backup/B/");
        assertThat(root.resolve("main/backup/A")).doesNotExist();
        assertThat(root.resolve("main/backup/B/data/base/2")).doesNotExist();
        assertThat(root.resolve("main/backup/B/data/base/1/kept")).isRegularFile();
        assertThat(root.resolve("main/backup")).isDirectory();
        s.removeEmptyDirectories("main/backup/none/");
    }

    /**
     * A batch writes in place (no temporary file, no rename): an object is under its final name while it is written,
     * which is why nothing reads a batch's objects before what publishes them (a backup's marker). A no-replace
     * commit is refused there, and a failed object stops the batch.
     */
    @Test
    void aBatchWritesInPlaceAndRefusesNoReplace() throws Exception {
        Storage s = storage();
        try (Storage.Batch b = s.batch()) {
            try (Storage.Writer w = b.create("k/in-place")) {
                w.stream().write(new byte[100_000]);
                w.stream().flush();
                assertThat(root.resolve("k/in-place")).isRegularFile().hasSize(100_000);
                assertNoLeftovers(s);
                org.assertj.core.api.Assertions.assertThatThrownBy(() -> w.commit(true)).isInstanceOf(IllegalArgumentException.class);
            }
            assertThat(root.resolve("k/in-place")).doesNotExist();
            b.sync();
        }
    }

    @Test
    void anUncommittedWriteIsATemporaryFileThatIsNeverListed() throws Exception {
        Storage s = storage();
        try (Storage.Writer w = s.create("k/half")) {
            w.stream().write(new byte[100_000]);
            w.stream().flush();
            try (Stream<Path> files = Files.walk(root)) {
                assertThat(files.filter(p -> p.getFileName().toString().contains(".tmp.")).count()).isEqualTo(1);
            }
            assertThat(s.list("k/")).isEmpty();
        }
        assertNoLeftovers(s);
    }
}
