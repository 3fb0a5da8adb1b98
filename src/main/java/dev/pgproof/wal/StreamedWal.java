package dev.pgproof.wal;

import dev.pgproof.io.Compression;
import dev.pgproof.io.Hashes;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.Storage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.FileAlreadyExistsException;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The segment wal-receive is streaming, kept in the repository as partial copies under
 * {@code <cluster>/stream/}: each object holds the first N bytes of the segment and is named
 * {@code <segment>.<N as 8 hex digits>.partial-<sha256 of those bytes>.<ext>}. A newer copy is
 * written before the older ones are deleted, so a reader takes the longest; the name says how long
 * it is, never a file time or listing order. A partial copy never takes a segment's place in
 * {@code wal/}: the complete segment goes there through {@link ArchivePush} when it is complete.
 */
public final class StreamedWal {
    private static final Pattern KEY = Pattern.compile("([0-9A-F]{24})\\.([0-9A-F]{8})\\.partial-([0-9a-f]{64})\\.([a-z0-9]+)");

    private final Storage storage;
    private final RepoLayout layout;

    public StreamedWal(Storage storage, RepoLayout layout) {
        this.storage = storage;
        this.layout = layout;
    }

    /** One stored partial copy. */
    public record Partial(String key, String segment, long length, String sha256, Compression compression) {}

    static Partial parse(String key) {
        Matcher m = KEY.matcher(key.substring(key.lastIndexOf('/') + 1));
        if (!m.matches()) {
            return null;
        }
        Compression c = Compression.byExtension(m.group(4));
        return c == null ? null : new Partial(key, m.group(1), Long.parseLong(m.group(2), 16), m.group(3), c);
    }

    /** Every partial copy of one segment, shortest first. */
    public List<Partial> of(String segment) throws IOException {
        List<Partial> out = new ArrayList<>();
        for (Storage.ObjectInfo o : storage.list(layout.streamSearchPrefix(segment))) {
            Partial p = parse(o.key());
            if (p != null && p.segment().equals(segment)) {
                out.add(p);
            }
        }
        out.sort(Comparator.comparingLong(Partial::length));
        return out;
    }

    /** Every partial copy in the repository, by key. */
    public List<Partial> all() throws IOException {
        List<Partial> out = new ArrayList<>();
        for (Storage.ObjectInfo o : storage.list(layout.streamPrefix())) {
            Partial p = parse(o.key());
            if (p != null) {
                out.add(p);
            }
        }
        return out;
    }

    /** The longest partial copy of a segment, or null. */
    public Partial longest(String segment) throws IOException {
        List<Partial> all = of(segment);
        return all.isEmpty() ? null : all.get(all.size() - 1);
    }

    /**
     * Stores the first {@code length} bytes of {@code buf} as a partial copy of {@code segment}, durable
     * and read back before it returns. The key names length and checksum, so a second store of the
     * same bytes is the same object.
     */
    public Partial store(String segment, byte[] buf, int length, Compression c, int level) throws IOException {
        MessageDigest md = Hashes.sha256();
        md.update(buf, 0, length);
        String sha = Hashes.hex(md.digest());
        String key = layout.streamKey(segment, length, sha, c);
        try (Storage.Writer w = storage.create(key)) {
            try (OutputStream z = c.compress(dev.pgproof.io.Streams.nonClosing(w.stream()), level)) {
                z.write(buf, 0, length);
            }
            dev.pgproof.util.TestHooks.pause("wal-receive-before-partial-commit", key);
            try {
                w.commit(true);
            } catch (FileAlreadyExistsException e) {
                // the same bytes were stored before (a restart re-streamed them)
            }
        }
        Partial p = new Partial(key, segment, length, sha, c);
        if (readVerified(p).length != length) {
            throw new IOException("stored partial copy \"" + key + "\" has the wrong size after decompression");
        }
        return p;
    }

    /** Reads a partial copy, refusing it unless its size and SHA-256 match its name. */
    public byte[] readVerified(Partial p) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream((int) Math.max(1024, p.length()));
        MessageDigest md = Hashes.sha256();
        try (InputStream raw = storage.open(p.key())) {
            try {
                InputStream in = p.compression().decompress(raw);
                byte[] b = new byte[1 << 16];
                int n;
                while ((n = in.read(b)) > 0) {
                    md.update(b, 0, n);
                    buf.write(b, 0, n);
                }
            } catch (IOException | RuntimeException e) {
                if (e instanceof java.nio.file.NoSuchFileException) {
                    throw (IOException) e;
                }
                throw new WalArchive.CorruptWalException("streamed partial copy \"" + p.key() + "\" cannot be decompressed: " + e.getMessage());
            }
        }
        if (buf.size() != p.length() || !Hashes.hex(md.digest()).equals(p.sha256())) {
            throw new WalArchive.CorruptWalException("streamed partial copy \"" + p.key() + "\" is corrupt: its content does not match its name");
        }
        return buf.toByteArray();
    }

    public void delete(Partial p) throws IOException {
        storage.delete(p.key());
    }
}
