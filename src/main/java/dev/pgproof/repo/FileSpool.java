package dev.pgproof.repo;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;

/**
 * Manifest file entries kept on local disk instead of the heap, each found again by its path: a backup's own files as
 * they are copied (written into its manifest in path order at the end), and its prior's files (each read back when the
 * same file is copied). The heap holds one index entry per file, not the file's pieces, so that a backup's memory does
 * not grow with the cluster's size. The spool is a file in {@code java.io.tmpdir} (about 300 bytes per 8 MiB piece),
 * unlinked as soon as it is opened: nothing is left behind, even by a kill.
 */
public final class FileSpool implements Closeable {
    private final String whose;
    private final FileChannel channel;
    private final Map<String, long[]> index = new HashMap<>();   // path: {offset, length}
    private long end;

    private FileSpool(String whose, FileChannel channel) {
        this.whose = whose;
        this.channel = channel;
    }

    /** The local spool failed (its file system is full or unwritable): not the repository's fault. */
    public static final class SpoolException extends IOException {
        SpoolException(String message, IOException cause) {
            super(message, cause);
        }
    }

    private SpoolException failed(String doing, IOException e) {
        return new SpoolException("could not " + doing + " the manifest entries of " + whose + " spooled in "
                + System.getProperty("java.io.tmpdir") + ": " + e.getMessage(), e);
    }

    /** A new, empty spool; whose names the backup whose entries it holds, for messages ("backup L"). */
    public static FileSpool create(String whose) throws IOException {
        try {
            Path file = Files.createTempFile("pgproof-spool-", ".json");
            FileChannel channel = null;
            try {
                channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
                Files.delete(file);
                return new FileSpool(whose, channel);
            } catch (IOException e) {
                if (channel != null) {
                    channel.close();
                }
                Files.deleteIfExists(file);
                throw e;
            }
        } catch (IOException e) {
            throw new SpoolException("could not create a local file for the manifest entries of " + whose + " in "
                + System.getProperty("java.io.tmpdir") + ": " + e.getMessage(), e);
        }
    }

    /** Adds a file's entry (any thread); it is found by its path once written. A path added twice is a bug. */
    public void add(BackupManifest.FileEntry f) throws IOException {
        byte[] json = Json.MAPPER.writeValueAsBytes(f);
        long at;
        synchronized (this) {
            at = end;
            end += json.length;
        }
        ByteBuffer b = ByteBuffer.wrap(json);
        try {
            while (b.hasRemaining()) {
                channel.write(b, at + b.position());
            }
        } catch (IOException e) {
            throw failed("write", e);
        }
        synchronized (this) {
            if (index.putIfAbsent(f.path(), new long[] {at, json.length}) != null) {
                throw new IllegalStateException("file " + f.path() + " spooled twice");
            }
        }
    }

    /** A file's entry, taken out of the spool (a prior's file as the same file is copied); null when it does not hold it. */
    public BackupManifest.FileEntry take(String path) throws IOException {
        BackupManifest.FileEntry f = get(path);
        synchronized (this) {
            index.remove(path);
        }
        return f;
    }

    /** How many files the spool holds. */
    public synchronized int size() {
        return index.size();
    }

    /** Whether the spool holds a file. */
    public synchronized boolean contains(String path) {
        return index.containsKey(path);
    }

    /** A file's entry, or null when the spool does not hold it. */
    public BackupManifest.FileEntry get(String path) throws IOException {
        byte[] json = raw(path);
        return json == null ? null : Json.MAPPER.readValue(json, BackupManifest.FileEntry.class);
    }

    /** A file's entry as it was spooled (its JSON), or null. */
    public byte[] raw(String path) throws IOException {
        long[] at;
        synchronized (this) {
            at = index.get(path);
        }
        if (at == null) {
            return null;
        }
        ByteBuffer b = ByteBuffer.allocate((int) at[1]);
        try {
            while (b.hasRemaining()) {
                if (channel.read(b, at[0] + b.position()) < 0) {
                    throw new IOException("the entry of \"" + path + "\" is cut short");
                }
            }
        } catch (IOException e) {
            throw failed("read", e);
        }
        return b.array();
    }

    /** The files' paths in order (the order of a manifest). */
    public synchronized List<String> paths() {
        List<String> out = new ArrayList<>(index.keySet());
        out.sort(null);
        return out;
    }

    /** The entries as spooled (JSON), in path order; a failure to read is an UncheckedIOException. */
    public Iterator<byte[]> rawInPathOrder() {
        Iterator<String> paths = paths().iterator();
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                return paths.hasNext();
            }

            @Override
            public byte[] next() {
                if (!paths.hasNext()) {
                    throw new NoSuchElementException();
                }
                try {
                    return raw(paths.next());
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }
        };
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
