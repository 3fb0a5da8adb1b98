package dev.pgproof.wal;

import dev.pgproof.io.Hashes;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * archive-get's prefetch: while PostgreSQL replays one segment, the following ones are fetched,
 * verified and decompressed in parallel into a local spool ({@code <spool-path>/<cluster>/get/}), each
 * with a {@code .ok} file holding its SHA-256 (the one in its repository name, checked after
 * decompression). A later archive-get takes a file from the spool only after hashing it again and
 * comparing with that checksum (the launcher does the same without Java), so a spooled file is
 * checked like any other; anything that does not match is deleted and fetched from the repository.
 */
public final class WalPrefetch {
    private final ArchiveGet get;
    private final Path dir;
    private final int segSize;

    public WalPrefetch(ArchiveGet get, Path spoolPath, String cluster, int segSize) {
        this.get = get;
        this.dir = spoolPath.resolve(cluster).resolve("get");
        this.segSize = segSize;
    }

    public Path dir() {
        return dir;
    }

    /** Moves a spooled file to dest if it is there and its checksum is right; false otherwise (then fetch it). */
    public boolean take(String name, Path dest) {
        Path file = dir.resolve(name);
        Path ok = dir.resolve(name + ".ok");
        try {
            String expected;
            try {
                expected = Files.readString(ok, StandardCharsets.US_ASCII).strip().split(" ")[0];
            } catch (NoSuchFileException e) {
                return false;
            }
            MessageDigest md = Hashes.sha256();
            try (InputStream in = Files.newInputStream(file)) {
                byte[] buf = new byte[1 << 16];
                int n;
                while ((n = in.read(buf)) > 0) {
                    md.update(buf, 0, n);
                }
            }
            if (!Hashes.hex(md.digest()).equals(expected)) {
                Log.warn("archive-get: spooled %s does not match its checksum: discarded, fetching it from the repository", name);
                Files.deleteIfExists(file);
                Files.deleteIfExists(ok);
                return false;
            }
            Files.move(file, dest, StandardCopyOption.REPLACE_EXISTING);
            Files.deleteIfExists(ok);
            return true;
        } catch (IOException e) {
            Log.warn("archive-get: could not take %s from the spool %s (%s); fetching it from the repository", name, dir, e.getMessage());
            return false;
        }
    }

    /**
     * Fetches up to {@code count} segments following {@code name} on its timeline into the spool, with
     * {@code jobs} threads, stopping at the first one the repository does not hold; removes every other
     * spooled file. Best effort: a failure is logged, and the segment is fetched when asked for.
     */
    public int after(String name, int count, int jobs) {
        if (count <= 0 || WalFileName.kindOf(name) != WalFileName.Kind.SEGMENT) {
            return 0;
        }
        List<String> next = window(name, count);
        if (!Files.isDirectory(dir)) {
            return 0; // made by archive-get; never re-created behind someone removing the spool
        }
        try {
            Set<String> keep = new HashSet<>();
            for (String n : next) {
                keep.add(n);
                keep.add(n + ".ok");
            }
            try (var s = Files.list(dir)) {
                for (Path p : (Iterable<Path>) s::iterator) {
                    if (!keep.contains(p.getFileName().toString())) {
                        Files.deleteIfExists(p);
                    }
                }
            }
        } catch (IOException e) {
            Log.warn("archive-get: prefetch skipped, spool %s unusable: %s", dir, e.getMessage());
            return 0;
        }
        List<String> missing = new ArrayList<>();
        for (String n : next) {
            if (!Files.exists(dir.resolve(n + ".ok"))) {
                missing.add(n);
            }
        }
        if (missing.isEmpty()) {
            return 0;
        }
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, Math.min(jobs, missing.size())), r -> {
            Thread t = new Thread(r, "prefetch");
            t.setDaemon(true);
            return t;
        });
        int fetched = 0;
        try {
            List<Future<Boolean>> futures = new ArrayList<>();
            for (String n : missing) {
                futures.add(pool.submit(() -> fetchOne(n)));
            }
            for (int i = 0; i < futures.size(); i++) {
                try {
                    if (!futures.get(i).get()) {
                        break; // the end of the archive: later ones are not there either
                    }
                    fetched++;
                } catch (java.util.concurrent.ExecutionException e) {
                    Throwable c = e.getCause();
                    Log.warn("archive-get: prefetch of %s failed (it is fetched when asked for): %s", missing.get(i),
                            c instanceof PgproofException ? c.getMessage() : String.valueOf(c));
                    break;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            pool.shutdownNow();
        }
        return fetched;
    }

    /**
     * The background prefetcher ({@code archive-get} starts one, detached, when none runs): keeps the
     * {@code count} segments after the newest one recovery has taken from the spool fetched, so that
     * replay rarely waits for a fetch, and returns once recovery has taken nothing for {@code idle}.
     * One per spool: returns at once when another holds {@code <spool>/<cluster>/get.lock}.
     */
    public void follow(String name, int count, int jobs, java.time.Duration idle) {
        Path lockFile = dir.resolveSibling("get.lock");
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            Log.warn("prefetch: spool %s unusable: %s", dir, e.getMessage());
            return;
        }
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(lockFile, java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.WRITE); java.nio.channels.FileLock lock = ch.tryLock()) {
            if (lock == null) {
                Log.info("prefetch: another prefetcher holds %s; leaving it the work", lockFile);
                return;
            }
            String base = name;
            Set<String> spooled = new HashSet<>();
            long lastProgress = System.nanoTime();
            long pause = 50;
            Log.info("prefetch: keeping %d segments after %s fetched in %s", count, name, dir);
            while (System.nanoTime() - lastProgress < idle.toNanos()) {
                if (!Files.isDirectory(dir)) {
                    Log.info("prefetch: the spool %s is gone; stopping", dir);
                    return;
                }
                // First see what recovery took (or the launcher discarded): never fetch that again.
                String taken = null;
                for (String n : window(base, count)) {
                    if (spooled.contains(n) && !Files.exists(dir.resolve(n))) {
                        taken = n; // the newest one taken: the window moves past it
                    }
                }
                if (taken != null) {
                    String past = taken;
                    spooled.removeIf(n -> n.compareTo(past) <= 0);
                    base = taken;
                    lastProgress = System.nanoTime();
                    pause = 50;
                }
                int fetched = after(base, count, jobs);
                for (String n : window(base, count)) {
                    if (Files.exists(dir.resolve(n + ".ok"))) {
                        spooled.add(n);
                    }
                }
                if (fetched > 0) {
                    Log.info("prefetch: fetched %d segment%s after %s", fetched, fetched == 1 ? "" : "s", base);
                    lastProgress = System.nanoTime();
                }
                if (taken != null) {
                    continue;
                }
                Thread.sleep(pause);
                // Quick while recovery is taking files; slower at the end of the archive (fewer listings).
                pause = fetched > 0 ? 50 : Math.min(1000, pause * 2);
            }
            Log.info("prefetch: recovery took nothing from the spool for %d s; stopping", idle.toSeconds());
        } catch (IOException e) {
            Log.warn("prefetch: stopped, lock %s unusable: %s", lockFile, e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private List<String> window(String base, int count) {
        int tli = WalFileName.timeline(base);
        long seg = WalFileName.segmentNumber(base, segSize);
        List<String> next = new ArrayList<>();
        for (int i = 1; i <= count; i++) {
            next.add(WalFileName.segmentName(tli, seg + i, segSize));
        }
        return next;
    }

    private boolean fetchOne(String name) throws IOException {
        ArchiveGet.Fetched f;
        try {
            f = get.fetch(name);
        } catch (PgproofException e) {
            if (e.exitCode() == ExitCode.NOT_FOUND) {
                return false;
            }
            throw e;
        }
        ArchiveGet.write(f.data(), dir.resolve(name));
        Path ok = dir.resolve(name + ".ok");
        Path tmp = dir.resolve(name + ".ok.tmp");
        // The SHA-256 was checked against the repository name on decompression; the POSIX cksum of
        // the same bytes lets the launcher re-check the spooled file in a few milliseconds.
        Files.writeString(tmp, f.stored().sha256() + " " + Cksum.of(f.data()) + " " + f.data().length + "\n", StandardCharsets.US_ASCII);
        Files.move(tmp, ok, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        return true;
    }
}
