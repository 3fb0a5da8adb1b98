package dev.pgproof.storage;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.List;

/**
 * Where a repository lives. Keys are '/'-separated names relative to the repository root, as in an
 * object store: there are no directories and no rename, only objects listed by prefix.
 *
 * <p>Contract every backend keeps:
 * <ul>
 *   <li>An object becomes visible under its key only when {@link Writer#commit} returns, whole and
 *       durable (fsync'd, or acknowledged by the object store). A writer closed without commit leaves
 *       nothing a reader can see, whatever happened before.</li>
 *   <li>{@link #open} of a missing key throws {@link java.nio.file.NoSuchFileException}; any other
 *       {@link IOException} means "could not tell", never "missing".</li>
 *   <li>{@link #list} returns committed objects only, sorted by key. Callers never take "latest"
 *       from listing order; they read labels and manifests.</li>
 * </ul>
 */
public interface Storage {

    /** One stored object. */
    record ObjectInfo(String key, long size) {}

    /** Opens an object for reading; NoSuchFileException if it does not exist. */
    InputStream open(String key) throws IOException;

    /** Whether a committed object exists under the key. */
    boolean exists(String key) throws IOException;

    /** Every committed object whose key starts with the prefix, sorted by key. */
    List<ObjectInfo> list(String prefix) throws IOException;

    /** The distinct next-level prefixes under a prefix, each ending with '/' (like a listing with delimiter '/'). */
    List<String> listPrefixes(String prefix) throws IOException;

    /** Starts writing an object; nothing is visible until {@link Writer#commit}. */
    Writer create(String key) throws IOException;

    /** Writes a whole object from memory and commits it (see {@link Writer#commit} for noReplace). */
    default void write(String key, byte[] content, boolean noReplace) throws IOException {
        try (Writer w = create(key)) {
            w.stream().write(content);
            w.commit(noReplace);
        }
    }

    /**
     * Starts a {@link Batch}. This default one commits each object on its own, as {@link #create} does: right for a
     * store where that costs no more (an object store, whose every upload is atomic and durable).
     */
    default Batch batch() {
        return new Batch() {
            @Override
            public Writer create(String key) throws IOException {
                return Storage.this.create(key);
            }

            @Override
            public void adopt(String key) {
                // it was durable when the run that wrote it committed it
            }

            @Override
            public void sync() {
                // every object was durable when its commit returned
            }

            @Override
            public void close() {
                // nothing under way
            }
        };
    }

    /** Deletes an object; deleting a missing object is not an error. */
    void delete(String key) throws IOException;

    /** Where this storage is, for messages (a directory, or a URL and its endpoint). */
    String describe();

    /** The repository as given to --repo (a directory or s3://bucket/prefix), for hints that show a command. */
    default String location() {
        return describe();
    }

    /** A temporary object a killed writer left behind (posix: a hidden ".name.tmp.PID.RANDOM" file), never listed by {@link #list}. */
    record Leftover(String key, long size, java.time.Instant modified) {}

    /**
     * Removes the empty directories under a prefix that ends with "/" (and the prefix's own, when it
     * is left empty), as after a failed backup's pieces were deleted. Object stores have none.
     */
    default void removeEmptyDirectories(String prefix) throws IOException {
        // nothing to do where directories do not exist
    }

    /** Leftovers of interrupted writes under a prefix; none on a store without temporary names (S3). */
    default List<Leftover> leftovers(String prefix) throws IOException {
        return List.of();
    }

    /** Removes a leftover that {@link #leftovers} found. */
    default void deleteLeftover(String key) throws IOException {
        throw new UnsupportedOperationException("no leftovers in " + describe());
    }

    /**
     * Objects that no reader takes as whole until an object committed after them says so: a backup's data objects,
     * which nothing reads before its manifest and {@code backup.complete} (docs/repository-format.md, "Read rule").
     * A backend may therefore write them in place, under their final keys, and make them durable together rather than
     * one by one (posix: no temporary file and rename; each file fsync'd while the writers go on, each directory once
     * at {@link #sync}). So a reader must not take any of them as whole before {@link #sync} has returned and the
     * publishing object was committed after it; a killed writer may leave a part of an object under its key. A writer
     * closed without commit still removes what it wrote.
     */
    interface Batch extends Closeable {
        /** Starts an object of the batch; its {@link Writer#commit} takes noReplace false only. */
        Writer create(String key) throws IOException;

        /** Writes a whole object of the batch from memory and commits it. */
        default void write(String key, byte[] content) throws IOException {
            try (Writer w = create(key)) {
                w.stream().write(content);
                w.commit(false);
            }
        }

        /**
         * Takes an object already stored under the key (by an interrupted run of the same work) into the batch as it
         * is: {@link #sync} makes it durable with the others, as that run may have been killed before doing so.
         */
        void adopt(String key) throws IOException;

        /**
         * Returns once every object committed in the batch so far is whole and durable under its key; throws the first
         * failure of any of them (a full repository as {@link RepositoryFullException}). Call it when no write is under way.
         */
        void sync() throws IOException;

        /** Ends the batch after the writes under way; what {@link #sync} did not cover may not be durable. */
        @Override
        void close() throws IOException;
    }

    /** An object being written. */
    interface Writer extends Closeable {
        /** The stream to write the content to; do not close it, call {@link #commit} or {@link #close}. */
        OutputStream stream();

        /**
         * Makes the object durable and visible. With {@code noReplace}, fails with
         * {@link java.nio.file.FileAlreadyExistsException} if the key exists, leaving it untouched.
         */
        void commit(boolean noReplace) throws IOException;

        /** Abandons the write if it was not committed: nothing remains under the key. */
        @Override
        void close() throws IOException;
    }
}
