package dev.pgproof.cli;

import dev.pgproof.cluster.Owner;
import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.io.Compression;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import dev.pgproof.util.Sizes;
import dev.pgproof.wal.AckSpool;
import dev.pgproof.wal.ArchiveGet;
import dev.pgproof.wal.ArchivePush;
import dev.pgproof.wal.PushAhead;
import dev.pgproof.wal.WalArchive;
import dev.pgproof.wal.WalFileName;
import dev.pgproof.wal.WalPrefetch;
import java.nio.file.Path;

/**
 * archive-push and archive-get, shared by the lean path (no picocli, no JSON library: these run
 * once per WAL segment) and the full command line.
 */
final class WalCommands {
    private WalCommands() {}

    static int push(Settings s, String walPath) {
        long t0 = System.nanoTime();
        Path file = Path.of(walPath);
        if (!file.isAbsolute()) {
            // archive_command runs in the data directory; from elsewhere, %p is taken relative to --pgdata.
            String pgdata = s.get(Setting.PGDATA);
            file = java.nio.file.Files.exists(file) || pgdata == null ? file.toAbsolutePath() : Path.of(pgdata).resolve(file).toAbsolutePath();
        }
        Owner.becomeOwnerOf(Path.of("").toAbsolutePath(), "working directory");
        Context ctx = new Context(s);
        AckSpool spool = ctx.spool();
        if (spool != null) {
            try {
                java.util.Optional<String> key = spool.matches(file);
                if (key.isPresent()) {
                    Log.info("archive-push: %s is already durable for cluster \"%s\" as %s (acknowledged in %s, %d ms)", file.getFileName(),
                            ctx.layout().cluster(), key.get(), spool.dir(), (System.nanoTime() - t0) / 1_000_000);
                    return 0;
                }
            } catch (java.io.IOException e) {
                Log.warn("archive-push: could not read the acknowledgement spool %s (%s); pushing", spool.dir(), e.getMessage());
            }
        }
        Storage storage = ctx.storage();
        ClusterIdentity id = ctx.pinned(storage);
        Log.timing("repository opened, cluster pin read");
        Compression c = Compression.byName(s.get(Setting.COMPRESS));
        int level = s.intValue(Setting.COMPRESS_LEVEL, c.defaultLevel);
        ArchivePush push = new ArchivePush(new WalArchive(storage, ctx.layout()), id, c, level);
        ArchivePush.Result r = spool == null ? push.push(file) : PushAhead.pushAndAck(push, spool, file);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        if (r.alreadyStored()) {
            Log.info("archive-push: %s was already stored for cluster \"%s\" with identical content (%d ms)", r.name(), ctx.layout().cluster(), ms);
        } else {
            Log.info("archive-push: stored %s for cluster \"%s\" (%s, %s stored, %d ms)", r.name(), ctx.layout().cluster(),
                    Sizes.bytes(r.size()), Sizes.bytes(r.storedSize()), ms);
        }
        int ahead = s.intValue(Setting.PUSH_AHEAD, 4);
        if (spool != null && ahead > 0 && file.getParent() != null && file.getParent().getFileName().toString().equals("pg_wal")) {
            pushAhead(new PushAhead(push, spool, file.getParent()), r.name(), ahead, s.jobs(), ctx);
        }
        return 0;
    }

    /** Best effort: the file PostgreSQL asked for is already stored, so nothing here can fail the call. */
    private static void pushAhead(PushAhead pa, String except, int max, int jobs, Context ctx) {
        try {
            long t0 = System.nanoTime();
            java.util.List<Path> ready = pa.ready(except, max);
            if (ready.isEmpty()) {
                return;
            }
            PushAhead.Round round = pa.pushAll(ready, jobs);
            Log.info("archive-push: pushed %d more ready WAL file%s ahead for cluster \"%s\" (%s, %d failed, %d ms)", round.pushed(),
                    round.pushed() == 1 ? "" : "s", ctx.layout().cluster(), Sizes.bytes(round.bytes()), round.failed(),
                    (System.nanoTime() - t0) / 1_000_000);
        } catch (java.io.IOException | RuntimeException e) {
            Log.warn("archive-push: pushing ahead skipped: %s", e.getMessage());
        }
    }

    /** Failures other than NOT_FOUND become exit codes above 125 in {@link Cli#run}. */
    static int get(Settings s, String name, String dest) {
        Owner.becomeOwnerOf(Path.of("").toAbsolutePath(), "working directory");
        Context ctx = new Context(s);
        long t0 = System.nanoTime();
        Path target = Path.of(dest).toAbsolutePath();
        Storage storage = ctx.storage();
        ClusterIdentity id = ctx.pinned(storage);
        String recovering = s.get(Setting.RECOVERY_IDENTITY);
        ArchiveGet get = new ArchiveGet(new WalArchive(storage, ctx.layout()), id, recovering == null ? null : Long.parseUnsignedLong(recovering));
        Path spool = ctx.spoolPath();
        WalPrefetch prefetch = spool == null ? null : new WalPrefetch(get, spool, ctx.layout().cluster(), id.walSegmentSize());
        if (prefetch != null && prefetch.take(name, target)) {
            Log.info("archive-get: restored %s for cluster \"%s\" from the prefetch spool (checksum verified, %d ms)", name,
                    ctx.layout().cluster(), (System.nanoTime() - t0) / 1_000_000);
        } else {
            long stored;
            try {
                stored = get.get(name, target);
            } catch (PgproofException e) {
                ArchiveGet.Streamed st = e.exitCode() == ExitCode.NOT_FOUND ? get.getStreamed(name, target) : null;
                if (st == null) {
                    throw e;
                }
                // The end of the WAL: the segment wal-receive was still receiving. Nothing is prefetched after it.
                Log.info("archive-get: restored %s for cluster \"%s\" from the streamed partial copy (%s of WAL, to %s, the rest zeros; %d ms)",
                        name, ctx.layout().cluster(), Sizes.bytes(st.walBytes()),
                        dev.pgproof.wal.WalFileName.formatLsn(dev.pgproof.wal.WalFileName.segmentStartLsn(name, id.walSegmentSize()) + st.walBytes()),
                        (System.nanoTime() - t0) / 1_000_000);
                return 0;
            }
            Log.info("archive-get: restored %s for cluster \"%s\" (%s stored, %d ms)", name, ctx.layout().cluster(), Sizes.bytes(stored),
                    (System.nanoTime() - t0) / 1_000_000);
        }
        int ahead = s.intValue(Setting.PREFETCH, 8);
        if (prefetch != null && ahead > 0 && WalFileName.kindOf(name) == WalFileName.Kind.SEGMENT) {
            startPrefetcher(ctx, s, prefetch, name, ahead);
        }
        return 0;
    }

    /**
     * Starts the background prefetcher (the hidden {@code _prefetch} command, detached with setsid,
     * its output appended to {@code <spool>/<cluster>/prefetch.log}) unless one runs: it fetches the
     * following segments while PostgreSQL replays, and this call returns at once. If it cannot be
     * started, the following segments are fetched here, before returning.
     */
    private static void startPrefetcher(Context ctx, Settings s, WalPrefetch prefetch, String name, int ahead) {
        Path lock = prefetch.dir().resolveSibling("get.lock");
        try {
            java.nio.file.Files.createDirectories(prefetch.dir());
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(lock, java.nio.file.StandardOpenOption.CREATE,
                    java.nio.file.StandardOpenOption.WRITE); java.nio.channels.FileLock held = ch.tryLock()) {
                if (held == null) {
                    return; // a prefetcher is running and follows recovery on its own
                }
            }
            Path log = prefetch.dir().resolveSibling("prefetch.log");
            String recovering = s.get(Setting.RECOVERY_IDENTITY);
            String cmd = "exec setsid " + Context.launcher() + " _prefetch" + ctx.commandOptions() + " --prefetch " + ahead + " --jobs " + s.jobs()
                    + (recovering == null ? "" : " --recovery-identity " + recovering) + " " + name + " </dev/null >>" + Context.shellQuote(log.toString())
                    + " 2>&1";
            new ProcessBuilder("/bin/sh", "-c", cmd).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD).start();
            Log.info("archive-get: started the background prefetcher for the %d segments after %s (log: %s)", ahead, name, log);
        } catch (java.io.IOException e) {
            Log.warn("archive-get: could not start the background prefetcher (%s); fetching the following segments now", e.getMessage());
            long t1 = System.nanoTime();
            int n = prefetch.after(name, ahead, s.jobs());
            if (n > 0) {
                Log.info("archive-get: prefetched %d following segment%s into %s (%d ms)", n, n == 1 ? "" : "s", prefetch.dir(),
                        (System.nanoTime() - t1) / 1_000_000);
            }
        }
    }

    /** The hidden {@code _prefetch} command: the background prefetcher started by archive-get. */
    static int prefetchDaemon(Settings s, String name) {
        Owner.becomeOwnerOf(Path.of("").toAbsolutePath(), "working directory");
        Context ctx = new Context(s);
        Storage storage = ctx.storage();
        ClusterIdentity id = ctx.pinned(storage);
        String recovering = s.get(Setting.RECOVERY_IDENTITY);
        ArchiveGet get = new ArchiveGet(new WalArchive(storage, ctx.layout()), id, recovering == null ? null : Long.parseUnsignedLong(recovering));
        Path spool = ctx.spoolPath();
        if (spool == null) {
            throw new PgproofException(ExitCode.CONFIG, "_prefetch needs spool-path", "it is started by archive-get with --spool-path");
        }
        new WalPrefetch(get, spool, ctx.layout().cluster(), id.walSegmentSize()).follow(name, s.intValue(Setting.PREFETCH, 8), s.jobs(),
                java.time.Duration.ofSeconds(20));
        return 0;
    }
}
