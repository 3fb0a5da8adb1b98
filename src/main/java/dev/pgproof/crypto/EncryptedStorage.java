package dev.pgproof.crypto;

import dev.pgproof.storage.Storage;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.List;

/**
 * A storage whose every object is encrypted with {@link ObjectCipher} on the way in and
 * authenticated on the way out. Keys, listings and sizes pass through (sizes are those of the
 * ciphertext); the backend below keeps its own guarantees (atomic commit, no-replace).
 */
public final class EncryptedStorage implements Storage {
    private final Storage inner;
    private final ObjectCipher cipher;

    EncryptedStorage(Storage inner, ObjectCipher cipher) {
        this.inner = inner;
        this.cipher = cipher;
    }

    @Override
    public InputStream open(String key) throws IOException {
        InputStream raw = inner.open(key);
        try {
            return cipher.decrypt(key, raw);
        } catch (IOException | RuntimeException e) {
            raw.close();
            throw e;
        }
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
    public void delete(String key) throws IOException {
        inner.delete(key);
    }

    @Override
    public List<Leftover> leftovers(String prefix) throws IOException {
        return inner.leftovers(prefix);
    }

    @Override
    public void deleteLeftover(String key) throws IOException {
        inner.deleteLeftover(key);
    }

    @Override
    public void removeEmptyDirectories(String prefix) throws IOException {
        inner.removeEmptyDirectories(prefix);
    }

    @Override
    public String describe() {
        return inner.describe() + " (encrypted)";
    }

    @Override
    public String location() {
        return inner.location();
    }

    @Override
    public Writer create(String key) throws IOException {
        return encrypting(key, inner.create(key));
    }

    /** The backend's batch, each object encrypted on its way in. */
    @Override
    public Batch batch() {
        Batch b = inner.batch();
        return new Batch() {
            @Override
            public Writer create(String key) throws IOException {
                return encrypting(key, b.create(key));
            }

            @Override
            public void adopt(String key) throws IOException {
                b.adopt(key);
            }

            @Override
            public void sync() throws IOException {
                b.sync();
            }

            @Override
            public void close() throws IOException {
                b.close();
            }
        };
    }

    private Writer encrypting(String key, Writer w) throws IOException {
        OutputStream enc;
        try {
            enc = cipher.encrypt(key, w.stream());
        } catch (IOException | RuntimeException e) {
            w.close();
            throw e;
        }
        return new Writer() {
            @Override
            public OutputStream stream() {
                return enc;
            }

            @Override
            public void commit(boolean noReplace) throws IOException {
                enc.close(); // the last frame, with its flag; then the backend makes it durable and visible
                w.commit(noReplace);
            }

            @Override
            public void close() throws IOException {
                w.close();
            }
        };
    }
}
