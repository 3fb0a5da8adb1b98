package dev.pgproof.wal;

import dev.pgproof.io.Compression;
import dev.pgproof.io.Hashes;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.Storage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

/**
 * The WAL archive of one cluster in a repository. Each stored WAL file is named
 * "&lt;wal name&gt;-&lt;sha256 of its uncompressed content&gt;.&lt;compression extension&gt;", so a
 * reader finds every copy of a name with one listing and can verify what it reads.
 */
public final class WalArchive {
    private final Storage storage;
    private final RepoLayout layout;

    public WalArchive(Storage storage, RepoLayout layout) {
        this.storage = storage;
        this.layout = layout;
    }

    /** One stored copy of a WAL file. */
    public record StoredWal(String key, String name, String sha256, Compression compression, long storedSize) {}

    /** Signals a stored WAL file whose content does not match its checksum or cannot be decompressed. */
    public static final class CorruptWalException extends IOException {
        private static final long serialVersionUID = 1L;

        public CorruptWalException(String message) {
            super(message);
        }
    }

    /** Every stored copy of one WAL file name (normally zero or one). */
    public List<StoredWal> find(String walFileName) throws IOException {
        List<StoredWal> out = new ArrayList<>();
        for (Storage.ObjectInfo o : storage.list(layout.walSearchPrefix(walFileName))) {
            StoredWal w = parseKey(o.key(), o.size());
            if (w != null && w.name().equals(walFileName)) {
                out.add(w);
            }
        }
        return out;
    }

    /** Every stored WAL file, keyed by WAL file name (a name with two different copies keeps both). */
    public TreeMap<String, List<StoredWal>> listAll() throws IOException {
        TreeMap<String, List<StoredWal>> all = new TreeMap<>();
        for (Storage.ObjectInfo o : storage.list(layout.walPrefix())) {
            StoredWal w = parseKey(o.key(), o.size());
            if (w != null) {
                all.computeIfAbsent(w.name(), k -> new ArrayList<>()).add(w);
            }
        }
        return all;
    }

    static StoredWal parseKey(String key, long size) {
        String file = key.substring(key.lastIndexOf('/') + 1);
        int dot = file.lastIndexOf('.');
        int dash = file.lastIndexOf('-');
        if (dot < 0 || dash < 0 || dot - dash != 65) {
            return null;
        }
        Compression c = Compression.byExtension(file.substring(dot + 1));
        if (c == null) {
            return null;
        }
        return new StoredWal(key, file.substring(0, dash), file.substring(dash + 1, dot), c, size);
    }

    /** Reads and decompresses a stored WAL file, refusing it unless its SHA-256 matches its name. */
    public byte[] readVerified(StoredWal w) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream(1 << 24);
        copyVerified(w, buf);
        return buf.toByteArray();
    }

    /**
     * Decompresses a stored WAL file into {@code sink} and returns its size; throws
     * {@link CorruptWalException} (after writing) unless its SHA-256 matches its name, so a sink
     * must not be trusted before this returns.
     */
    public long copyVerified(StoredWal w, OutputStream sink) throws IOException {
        MessageDigest md = Hashes.sha256();
        long size = 0;
        try (InputStream raw = storage.open(w.key())) {
            try {
                InputStream in = w.compression().decompress(raw);
                byte[] b = new byte[1 << 16];
                int n;
                while ((n = in.read(b)) > 0) {
                    md.update(b, 0, n);
                    sink.write(b, 0, n);
                    size += n;
                }
            } catch (IOException | RuntimeException e) {
                if (e instanceof java.nio.file.NoSuchFileException) {
                    throw (IOException) e;
                }
                throw new CorruptWalException("stored WAL file \"" + w.key() + "\" cannot be decompressed: " + e.getMessage());
            }
        }
        String actual = Hashes.hex(md.digest());
        if (!actual.equals(w.sha256())) {
            throw new CorruptWalException("stored WAL file \"" + w.key() + "\" is corrupt: its content has SHA-256 " + actual);
        }
        return size;
    }

    public Storage storage() {
        return storage;
    }

    public RepoLayout layout() {
        return layout;
    }
}
