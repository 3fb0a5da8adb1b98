package dev.pgproof.wal;

import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

/**
 * Pushes WAL files that PostgreSQL has marked ready ({@code pg_wal/archive_status/*.ready}) before it
 * asks for them, in parallel, and acknowledges each in the spool once it is durable, so that the
 * archiver's own later {@code archive-push} calls find them stored. PostgreSQL still decides what is
 * archived: a file counts as archived only when its own {@code archive_command} call returns 0.
 */
public final class PushAhead {
    private final ArchivePush push;
    private final AckSpool spool;
    private final Path pgWal;

    public PushAhead(ArchivePush push, AckSpool spool, Path pgWal) {
        this.push = push;
        this.spool = spool;
        this.pgWal = pgWal;
    }

    /** Result of one round: how many files were pushed and how many failed (each failure was logged). */
    public record Round(int pushed, int failed, long bytes) {}

    /** WAL files marked .ready and not yet acknowledged, history files first, then by name; at most {@code max}. */
    public List<Path> ready(String except, int max) throws IOException {
        Path status = pgWal.resolve("archive_status");
        List<String> names = new ArrayList<>();
        try (Stream<Path> s = Files.list(status)) {
            s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".ready")).map(n -> n.substring(0, n.length() - 6))
                    .filter(n -> !n.equals(except) && WalFileName.isWalFileName(n)).forEach(names::add);
        } catch (java.nio.file.NoSuchFileException e) {
            return List.of();
        }
        names.sort(Comparator.comparing((String n) -> !n.endsWith(".history")).thenComparing(n -> n));
        List<Path> out = new ArrayList<>();
        for (String n : names) {
            if (out.size() >= max) {
                break;
            }
            Path f = pgWal.resolve(n);
            if (Files.exists(f) && spool.matches(f).isEmpty()) {
                out.add(f);
            }
        }
        return out;
    }

    /** Pushes and acknowledges the files with {@code jobs} threads; a failure is logged, never fatal (the archiver retries it). */
    public Round pushAll(List<Path> files, int jobs) {
        if (files.isEmpty()) {
            return new Round(0, 0, 0);
        }
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, Math.min(jobs, files.size())), r -> {
            Thread t = new Thread(r, "push-ahead");
            t.setDaemon(true);
            return t;
        });
        try {
            List<Future<ArchivePush.Result>> futures = new ArrayList<>();
            for (Path f : files) {
                futures.add(pool.submit(() -> pushAndAck(push, spool, f)));
            }
            int ok = 0;
            int failed = 0;
            long bytes = 0;
            for (int i = 0; i < files.size(); i++) {
                try {
                    ArchivePush.Result r = futures.get(i).get();
                    ok++;
                    bytes += r.size();
                } catch (java.util.concurrent.ExecutionException e) {
                    failed++;
                    Throwable c = e.getCause();
                    Log.warn("pushing %s ahead failed (its own archive-push will retry): %s", files.get(i).getFileName(),
                            c instanceof PgproofException ? c.getMessage() : String.valueOf(c));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            return new Round(ok, failed, bytes);
        } finally {
            pool.shutdownNow();
        }
    }

    /**
     * Pushes one file and acknowledges it when the file was the same (inode, size, mtime) before and
     * after it was read: the ack then names exactly what was stored.
     */
    public static ArchivePush.Result pushAndAck(ArchivePush push, AckSpool spool, Path file) {
        String before = null;
        try {
            before = AckSpool.identity(file);
        } catch (IOException e) {
            // push() reports a missing or unreadable file
        }
        ArchivePush.Result r = push.push(file);
        try {
            if (before != null && before.equals(AckSpool.identity(file))) {
                WalArchive.StoredWal w = WalArchive.parseKey(r.key(), r.storedSize());
                spool.write(r.name(), before, w == null ? "-" : w.sha256(), r.key());
            }
        } catch (IOException e) {
            // The file is stored; only the shortcut for a later call is missing.
            Log.warn("stored %s, but could not acknowledge it in %s: %s", r.name(), spool.dir(), e.getMessage());
        }
        return r;
    }
}
