package dev.pgproof.wal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.io.Compression;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.PosixStorage;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.PgproofException;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Error paths of archive-push that a real file system does not produce on demand. */
class ArchivePushTest {
    @TempDir
    Path dir;

    /** A storage whose reads return other bytes than were written (a failing disk or a broken mount). */
    private static final class ReadsBack implements Storage {
        private final Storage inner;
        private final boolean corrupt;

        ReadsBack(Storage inner, boolean corrupt) {
            this.inner = inner;
            this.corrupt = corrupt;
        }

        @Override
        public InputStream open(String key) throws IOException {
            if (!corrupt) {
                return inner.open(key);
            }
            byte[] b;
            try (InputStream in = inner.open(key)) {
                b = in.readAllBytes();
            }
            b[b.length / 2] ^= 0x40;
            return new ByteArrayInputStream(b);
        }

        @Override
        public boolean exists(String key) throws IOException {
            return inner.exists(key);
        }

        @Override
        public List<ObjectInfo> list(String prefix) throws IOException {
            return inner.list(prefix);
        }

        @Override
        public List<String> listPrefixes(String prefix) throws IOException {
            return inner.listPrefixes(prefix);
        }

        @Override
        public Writer create(String key) throws IOException {
            return inner.create(key);
        }

        @Override
        public void delete(String key) throws IOException {
            inner.delete(key);
        }

        @Override
        public String describe() {
            return inner.describe();
        }
    }

    private ArchivePush push(Storage s) {
        return new ArchivePush(new WalArchive(s, new RepoLayout("main")), new ClusterIdentity(1, 15, 16 << 20, 8192, 8192, true),
                Compression.ZSTD, 3);
    }

    @Test
    void aStoredCopyThatDoesNotReadBackIsRemovedSoTheRetryStoresItAgain() throws IOException {
        Storage posix = new PosixStorage(dir);
        byte[] history = "1\t0/3000000\tno recovery target specified\n".repeat(200).getBytes(StandardCharsets.UTF_8);
        assertThatThrownBy(() -> push(new ReadsBack(posix, true)).push("00000002.history", history, "test"))
                .isInstanceOf(PgproofException.class)
                .hasMessageContaining("WAL file \"00000002.history\" failed verification after it was stored")
                .hasMessageContaining("the stored copy was removed");
        assertThat(new WalArchive(posix, new RepoLayout("main")).find("00000002.history")).isEmpty();

        ArchivePush.Result r = push(posix).push("00000002.history", history, "test");
        assertThat(r.alreadyStored()).isFalse();
        assertThat(new WalArchive(posix, new RepoLayout("main")).find("00000002.history")).hasSize(1);
        assertThat(push(posix).push("00000002.history", history, "test").alreadyStored()).isTrue();
    }
}
