package dev.pgproof.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PosixStorageTest {
    @TempDir
    Path root;

    private void put(Storage s, String key, String content, boolean noReplace) throws Exception {
        try (Storage.Writer w = s.create(key)) {
            w.stream().write(content.getBytes(StandardCharsets.UTF_8));
            w.commit(noReplace);
        }
    }

    private String get(Storage s, String key) throws Exception {
        try (InputStream in = s.open(key)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    @Test
    void writeReadListDelete() throws Exception {
        Storage s = new PosixStorage(root);
        put(s, "c/wal/a-1.zst", "one", false);
        put(s, "c/wal/a-2.zst", "two!", false);
        put(s, "c/backup/x/manifest.json", "{}", false);
        assertThat(get(s, "c/wal/a-2.zst")).isEqualTo("two!");
        assertThat(s.list("c/wal/a-")).extracting(Storage.ObjectInfo::key).containsExactly("c/wal/a-1.zst", "c/wal/a-2.zst");
        assertThat(s.list("c/wal/a-2")).singleElement().extracting(Storage.ObjectInfo::size).isEqualTo(4L);
        assertThat(s.list("c/")).hasSize(3);
        assertThat(s.listPrefixes("")).containsExactly("c/");
        s.delete("c/wal/a-1.zst");
        s.delete("c/wal/a-1.zst");
        assertThat(s.exists("c/wal/a-1.zst")).isFalse();
        assertThatThrownBy(() -> s.open("c/wal/a-1.zst")).isInstanceOf(NoSuchFileException.class);
        assertThat(s.list("nothing/here/")).isEmpty();
    }

    @Test
    void noReplace_keepsTheStoredObject() throws Exception {
        Storage s = new PosixStorage(root);
        put(s, "k/obj", "first", true);
        assertThatThrownBy(() -> put(s, "k/obj", "second", true)).isInstanceOf(FileAlreadyExistsException.class);
        assertThat(get(s, "k/obj")).isEqualTo("first");
        assertNoTemporaryFiles();
    }

    @Test
    void writeWithoutCommit_leavesNothing() throws Exception {
        Storage s = new PosixStorage(root);
        try (Storage.Writer w = s.create("k/half")) {
            w.stream().write(new byte[100_000]);
            w.stream().flush();
            try (Stream<Path> files = Files.walk(root)) {
                assertThat(files.filter(p -> p.getFileName().toString().contains(".tmp.")).count()).isEqualTo(1);
            }
            assertThat(s.list("k/")).isEmpty();
        }
        assertThat(s.exists("k/half")).isFalse();
        assertNoTemporaryFiles();
    }

    @Test
    void keysCannotEscapeTheRoot() {
        Storage s = new PosixStorage(root);
        assertThatThrownBy(() -> s.create("../outside")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> s.open("/etc/passwd")).isInstanceOf(IllegalArgumentException.class);
    }

    private void assertNoTemporaryFiles() throws Exception {
        try (Stream<Path> files = Files.walk(root)) {
            assertThat(files.filter(p -> p.getFileName().toString().contains(".tmp."))).isEmpty();
        }
    }
}
