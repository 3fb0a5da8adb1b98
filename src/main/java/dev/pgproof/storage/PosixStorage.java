package dev.pgproof.storage;

import dev.pgproof.util.TestHooks;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Stream;

/**
 * A repository in a local or NFS-mounted directory. A write goes to a temporary file beside its
 * final name (".name.tmp.PID.RANDOM", never listed), is fsync'd, then renamed (or hard-linked, for
 * no-replace) into place, and the directory is fsync'd. A {@link Batch} writes in place instead and
 * makes its objects durable together.
 */
public final class PosixStorage implements Storage {
    private static final String TMP_MARK = ".tmp.";
    private final Path root;
    private final String fileMode;
    private final String dirMode;

    public PosixStorage(Path root) {
        this(root, false);
    }

    /** With {@code ownerOnly}, files are created 0600 and directories 0700 (an encrypted repository); else 0640 and 0750. */
    public PosixStorage(Path root, boolean ownerOnly) {
        this.root = root.toAbsolutePath().normalize();
        this.fileMode = ownerOnly ? "rw-------" : "rw-r-----";
        this.dirMode = ownerOnly ? "rwx------" : "rwxr-x---";
    }

    public Path root() {
        return root;
    }

    @Override
    public String describe() {
        return root.toString();
    }

    Path pathOf(String key) {
        if (key.isEmpty() || key.startsWith("/") || key.contains("..") || key.contains("//")) {
            throw new IllegalArgumentException("invalid storage key: " + key);
        }
        return root.resolve(key);
    }

    @Override
    public InputStream open(String key) throws IOException {
        return Files.newInputStream(pathOf(key));
    }

    @Override
    public boolean exists(String key) {
        return Files.isRegularFile(pathOf(key));
    }

    @Override
    public List<ObjectInfo> list(String prefix) throws IOException {
        int slash = prefix.lastIndexOf('/');
        Path dir = slash < 0 ? root : root.resolve(prefix.substring(0, slash));
        List<ObjectInfo> out = new ArrayList<>();
        if (!isDirectory(dir)) {
            return out;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) walk::iterator) {
                String name = p.getFileName().toString();
                if (name.startsWith(".") && name.contains(TMP_MARK)) {
                    continue;
                }
                String key = root.relativize(p).toString();
                if (key.startsWith(prefix) && Files.isRegularFile(p)) {
                    out.add(new ObjectInfo(key, Files.size(p)));
                }
            }
        } catch (java.io.UncheckedIOException e) {
            if (e.getCause() instanceof NoSuchFileException) {
                return list(prefix); // a directory vanished while walking: look again
            }
            throw e.getCause();
        }
        out.sort(java.util.Comparator.comparing(ObjectInfo::key));
        return out;
    }

    @Override
    public List<String> listPrefixes(String prefix) throws IOException {
        Path dir = prefix.isEmpty() ? root : pathOf(prefix.endsWith("/") ? prefix.substring(0, prefix.length() - 1) : prefix);
        List<String> out = new ArrayList<>();
        if (!isDirectory(dir)) {
            return out;
        }
        try (Stream<Path> s = Files.list(dir)) {
            s.filter(Files::isDirectory).forEach(p -> out.add(prefix + p.getFileName() + "/"));
        }
        out.sort(null);
        return out;
    }

    /**
     * Whether {@code dir} is a directory: false only when it does not exist. A directory that
     * cannot be examined (e.g. a parent without search permission) is an error, never "empty":
     * archive-get must not answer "not found" for an unreadable repository.
     */
    private static boolean isDirectory(Path dir) throws IOException {
        try {
            return Files.readAttributes(dir, java.nio.file.attribute.BasicFileAttributes.class).isDirectory();
        } catch (NoSuchFileException e) {
            return false;
        }
    }

    @Override
    public Writer create(String key) throws IOException {
        Path target = pathOf(key);
        Path tmp = target.resolveSibling("." + target.getFileName() + TMP_MARK + ProcessHandle.current().pid() + "."
                + Long.toHexString(ThreadLocalRandom.current().nextLong()));
        return new PosixWriter(key, target, tmp, openForWrite(key, tmp, StandardOpenOption.CREATE_NEW), null);
    }

    /** Opens a file to write an object of {@code key} into, creating its directories (again, if pruned meanwhile). */
    private FileChannel openForWrite(String key, Path file, StandardOpenOption... how) throws IOException {
        java.util.Set<java.nio.file.OpenOption> options = new java.util.HashSet<>(List.of(how));
        options.add(StandardOpenOption.WRITE);
        try {
            for (int attempt = 0; ; attempt++) {
                mkdirs(file.getParent(), dirMode);
                try {
                    return FileChannel.open(file, options, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString(fileMode)));
                } catch (NoSuchFileException e) {
                    if (attempt >= 2) {
                        throw e;
                    }
                    // the directory was pruned meanwhile (an abandoned write, or expire): create it again
                }
            }
        } catch (IOException e) {
            throw RepositoryFullException.translate(key, e);
        }
    }

    /**
     * A batch written in place: each object straight under its final name (replacing what an interrupted run left
     * there), its file fsync'd by a syncer thread after its commit so that the writer goes on; {@link Batch#sync}
     * waits for those and then fsyncs each directory that received an object, once.
     */
    @Override
    public Batch batch() {
        return new PosixBatch();
    }

    private final class PosixBatch implements Batch {
        /** Files committed but not yet fsync'd, at most (each holds a file descriptor until then). */
        private static final int MAX_PENDING = 64;
        private static final int SYNCERS = 4;
        private final java.util.concurrent.ExecutorService syncers = java.util.concurrent.Executors.newFixedThreadPool(SYNCERS, r -> {
            Thread t = new Thread(r, "repo-fsync");
            t.setDaemon(true);
            return t;
        });
        private final java.util.concurrent.Semaphore pending = new java.util.concurrent.Semaphore(MAX_PENDING);
        private final java.util.Set<Path> dirs = java.util.concurrent.ConcurrentHashMap.newKeySet();
        private final java.util.concurrent.atomic.AtomicReference<IOException> failure = new java.util.concurrent.atomic.AtomicReference<>();

        @Override
        public Writer create(String key) throws IOException {
            IOException failed = failure.get();
            if (failed != null) {
                throw failed; // an earlier object of the batch could not be made durable: stop writing more
            }
            Path target = pathOf(key);
            return new PosixWriter(key, target, target,
                    openForWrite(key, target, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING), this);
        }

        @Override
        public void adopt(String key) throws IOException {
            Path file = pathOf(key);
            syncLater(key, file, FileChannel.open(file, StandardOpenOption.READ));
        }

        /** Hands a committed object's file to a syncer: fsync'd, then closed. */
        void syncLater(String key, Path file, FileChannel channel) {
            pending.acquireUninterruptibly();
            dirs.add(file.getParent());
            try {
                syncers.execute(() -> {
                    try {
                        channel.force(true);
                    } catch (IOException e) {
                        failure.compareAndSet(null, RepositoryFullException.translate(key, e));
                    } finally {
                        try {
                            channel.close();
                        } catch (IOException e) {
                            failure.compareAndSet(null, e);
                        }
                        pending.release();
                    }
                });
            } catch (java.util.concurrent.RejectedExecutionException e) {
                pending.release();
                failure.compareAndSet(null, new IOException("repository batch closed before " + key + " was committed"));
            }
        }

        /** Waits until no fsync is under way. */
        private void drain() {
            pending.acquireUninterruptibly(MAX_PENDING);
            pending.release(MAX_PENDING);
        }

        @Override
        public void sync() throws IOException {
            drain();
            IOException failed = failure.get();
            if (failed != null) {
                throw failed;
            }
            List<Path> todo = new ArrayList<>(dirs);
            todo.sort(null);
            for (Path d : todo) {
                fsyncDir(d);
                dirs.remove(d);
            }
        }

        @Override
        public void close() {
            drain();
            syncers.shutdown();
        }
    }

    /** Hidden temporary files ({@code .name.tmp.PID.RANDOM}) under a prefix: writes that a kill interrupted, or that run now. */
    @Override
    public List<Leftover> leftovers(String prefix) throws IOException {
        int slash = prefix.lastIndexOf('/');
        Path dir = slash < 0 ? root : root.resolve(prefix.substring(0, slash));
        List<Leftover> out = new ArrayList<>();
        if (!isDirectory(dir)) {
            return out;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) walk::iterator) {
                String name = p.getFileName().toString();
                String key = root.relativize(p).toString();
                if (name.startsWith(".") && name.contains(TMP_MARK) && key.startsWith(prefix)) {
                    try {
                        var a = Files.readAttributes(p, java.nio.file.attribute.BasicFileAttributes.class);
                        if (a.isRegularFile()) {
                            out.add(new Leftover(key, a.size(), a.lastModifiedTime().toInstant()));
                        }
                    } catch (NoSuchFileException e) {
                        // committed or abandoned meanwhile
                    }
                }
            }
        } catch (java.io.UncheckedIOException e) {
            if (e.getCause() instanceof NoSuchFileException) {
                return leftovers(prefix);
            }
            throw e.getCause();
        }
        out.sort(java.util.Comparator.comparing(Leftover::key));
        return out;
    }

    @Override
    public void removeEmptyDirectories(String prefix) throws IOException {
        Path top = pathOf(prefix);
        if (!isDirectory(top)) {
            return;
        }
        List<Path> dirs = new ArrayList<>();
        try (Stream<Path> walk = Files.walk(top)) {
            walk.filter(Files::isDirectory).forEach(dirs::add);
        }
        dirs.sort(java.util.Comparator.comparingInt(Path::getNameCount).reversed()); // the deepest first
        for (Path d : dirs) {
            try {
                Files.delete(d);
                fsyncDir(d.getParent());
            } catch (java.nio.file.DirectoryNotEmptyException | NoSuchFileException e) {
                // holds something, or already gone
            }
        }
        pruneEmptyParents(top.getParent());
    }

    @Override
    public void deleteLeftover(String key) throws IOException {
        Path p = pathOf(key);
        String name = p.getFileName().toString();
        if (!name.startsWith(".") || !name.contains(TMP_MARK)) {
            throw new IllegalArgumentException("not a temporary file: " + key);
        }
        if (Files.deleteIfExists(p)) {
            fsyncDir(p.getParent());
        }
    }

    @Override
    public void delete(String key) throws IOException {
        Path p = pathOf(key);
        if (Files.deleteIfExists(p)) {
            fsyncDir(p.getParent());
            pruneEmptyParents(p.getParent());
        }
    }

    /**
     * Removes directories a delete left empty (an expired backup's tree, an old WAL directory), up to
     * but not including {@code <root>/<cluster>/<area>}. A directory that is not empty stays.
     */
    private void pruneEmptyParents(Path dir) throws IOException {
        while (dir != null && dir.startsWith(root) && root.relativize(dir).getNameCount() > 2) {
            try {
                Files.delete(dir);
            } catch (java.nio.file.DirectoryNotEmptyException | java.nio.file.NoSuchFileException e) {
                return;
            }
            dir = dir.getParent();
            fsyncDir(dir);
        }
    }

    /** Creates directories, fsyncing each new one's parent so the entry survives a crash. */
    static void mkdirs(Path dir, String mode) throws IOException {
        if (Files.isDirectory(dir)) {
            return;
        }
        mkdirs(dir.getParent(), mode);
        try {
            Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString(mode)));
        } catch (FileAlreadyExistsException e) {
            return;
        }
        fsyncDir(dir.getParent());
    }

    /** fsync a directory so that a rename or a new entry in it is durable. */
    public static void fsyncDir(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    private final class PosixWriter implements Writer {
        private final String key;
        private final Path target;
        private final Path tmp;
        private final FileChannel channel;
        private final OutputStream stream;
        /** The batch this object is written in place for (tmp is target), or null: a temporary file renamed at commit. */
        private final PosixBatch batch;
        private boolean done;

        PosixWriter(String key, Path target, Path tmp, FileChannel channel, PosixBatch batch) {
            this.key = key;
            this.target = target;
            this.tmp = tmp;
            this.channel = channel;
            this.batch = batch;
            // A full file system (ENOSPC, EDQUOT) shows as RepositoryFullException naming the key.
            this.stream = new java.io.BufferedOutputStream(Channels.newOutputStream(channel), 1 << 16) {
                @Override
                public synchronized void write(int b) throws IOException {
                    try {
                        super.write(b);
                    } catch (IOException e) {
                        throw RepositoryFullException.translate(key, e);
                    }
                }

                @Override
                public synchronized void write(byte[] b, int off, int len) throws IOException {
                    try {
                        super.write(b, off, len);
                    } catch (IOException e) {
                        throw RepositoryFullException.translate(key, e);
                    }
                }

                @Override
                public synchronized void flush() throws IOException {
                    try {
                        super.flush();
                    } catch (IOException e) {
                        throw RepositoryFullException.translate(key, e);
                    }
                }

                @Override
                public void close() {
                    // the writer owns the channel; commit() or close() ends it
                }
            };
        }

        @Override
        public OutputStream stream() {
            return stream;
        }

        @Override
        public void commit(boolean noReplace) throws IOException {
            if (done) {
                throw new IllegalStateException("writer already finished: " + target);
            }
            if (batch != null) {
                if (noReplace) {
                    throw new IllegalArgumentException("a batch writes in place and never checks for an existing object: " + key);
                }
                try {
                    stream.flush();
                } catch (IOException e) {
                    close();
                    throw RepositoryFullException.translate(key, e);
                }
                done = true;
                batch.syncLater(key, target, channel);
                return;
            }
            try {
                stream.flush();
                channel.force(true);
                channel.close();
            } catch (IOException e) {
                close();
                throw RepositoryFullException.translate(key, e);
            }
            TestHooks.pause("storage-before-rename", tmp);
            try {
                if (noReplace) {
                    Files.createLink(target, tmp); // fails if target exists: never replaces a stored object
                    Files.delete(tmp);
                } else {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                }
            } catch (IOException e) {
                Files.deleteIfExists(tmp);
                done = true;
                throw RepositoryFullException.translate(key, e);
            }
            done = true;
            fsyncDir(target.getParent());
        }

        @Override
        public void close() throws IOException {
            if (done) {
                return;
            }
            done = true;
            try {
                channel.close();
            } finally {
                Files.deleteIfExists(tmp);
                try {
                    pruneEmptyParents(target.getParent()); // directories made for this write only (a failed backup leaves none)
                } catch (IOException e) {
                    // best effort: an empty directory is never read as anything
                }
            }
        }
    }
}
