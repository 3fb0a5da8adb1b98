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
                expected = Files.readString(ok, StandardCharsets.US_ASCII).strip();
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
        int tli = WalFileName.timeline(name);
        long seg = WalFileName.segmentNumber(name, segSize);
        List<String> next = new ArrayList<>();
        for (int i = 1; i <= count; i++) {
            next.add(WalFileName.segmentName(tli, seg + i, segSize));
        }
        try {
            Files.createDirectories(dir);
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
        Files.writeString(tmp, f.stored().sha256() + "\n", StandardCharsets.US_ASCII);
        Files.move(tmp, ok, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        return true;
    }
}
