package dev.pgproof.cli;

import dev.pgproof.cluster.LiveCluster;
import dev.pgproof.cluster.Owner;
import dev.pgproof.cluster.PgControl;
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
import dev.pgproof.wal.ArchivePush;
import dev.pgproof.wal.PushAhead;
import dev.pgproof.wal.WalArchive;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "agent", mixinStandardHelpOptions = true,
        description = {"Push WAL ahead of the archiver: a long-lived process that watches pg_wal/archive_status and stores every file "
                + "PostgreSQL marks ready, in parallel, acknowledging each in the spool once it is durable.",
            "archive_command stays as it is (pgproof archive-push ... %p); with --spool-path in it, the launcher answers for an "
                + "acknowledged file without starting Java. If the agent stops, archive-push simply pushes by itself. "
                + "One agent per cluster (a lock in the spool)."})
final class AgentCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Option(names = "--once", description = "push what is ready now, then exit (non-zero if a push failed)")
    boolean once;

    @Option(names = "--interval", paramLabel = "MS", defaultValue = "200", description = "how often to look for ready WAL files (default 200 ms)")
    long intervalMs;

    @Override
    public Integer call() throws IOException {
        Settings s = common.settings();
        String cluster = s.cluster();
        Path pgdata = LiveCluster.realDataDir(cluster, s.path(Setting.PGDATA));
        Owner.becomeOwnerOf(pgdata, "data directory");
        Context ctx = new Context(s);
        AckSpool spool = ctx.spool();
        if (spool == null) {
            throw new PgproofException(ExitCode.CONFIG, "agent for cluster \"" + cluster + "\" needs spool-path",
                    "set spool-path (a local directory owned by " + Owner.currentUser() + ") in the cluster's section, and put --spool-path "
                            + "in archive_command too (pgproof init --configure does)");
        }
        Storage storage = ctx.storage();
        ClusterIdentity pinned = ctx.pinned(storage);
        PgControl control = PgControl.read(pgdata);
        if (control.systemIdentifier() != pinned.systemIdentifier()) {
            throw new PgproofException(ExitCode.IDENTITY, "data directory \"" + pgdata + "\" has system identifier " + control.systemIdentifierString()
                    + ", but cluster \"" + cluster + "\" in " + storage.describe() + " is pinned to " + pinned.systemIdentifierString(),
                    "give the agent the --pgdata of the cluster initialised as \"" + cluster + "\"");
        }
        Files.createDirectories(spool.dir());
        Path lockFile = spool.dir().getParent().resolve("agent.lock");
        try (FileChannel ch = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.READ);
                FileLock lock = ch.tryLock()) {
            if (lock == null) {
                throw new PgproofException(ExitCode.LOCKED, "an agent for cluster \"" + cluster + "\" is already running (" + lockFile + " is locked)",
                        "stop the other agent first; one agent per cluster");
            }
            ch.truncate(0);
            ch.write(java.nio.ByteBuffer.wrap((ProcessHandle.current().pid() + "\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII)));
            Compression c = Compression.byName(s.get(Setting.COMPRESS));
            ArchivePush push = new ArchivePush(new WalArchive(storage, ctx.layout()), pinned, c, s.intValue(Setting.COMPRESS_LEVEL, c.defaultLevel));
            Path pgWal = pgdata.resolve("pg_wal");
            PushAhead pa = new PushAhead(push, spool, pgWal);
            Log.info("agent: cluster \"%s\" (%s), data directory \"%s\", repository %s, spool %s, %d jobs", cluster, pinned.describe(), pgdata,
                    storage.describe(), spool.dir(), s.jobs());
            return loop(pa, spool, pgWal, s.jobs(), cluster);
        }
    }

    private int loop(PushAhead pa, AckSpool spool, Path pgWal, int jobs, String cluster) throws IOException {
        long lastPrune = 0;
        long lastReport = System.nanoTime();
        long pushedSinceReport = 0;
        long backoffMs = 0;
        while (true) {
            List<Path> ready = pa.ready(null, 64);
            if (!ready.isEmpty()) {
                long t0 = System.nanoTime();
                PushAhead.Round r = pa.pushAll(ready, jobs);
                long ms = (System.nanoTime() - t0) / 1_000_000;
                Log.info("agent: pushed %d WAL file%s for cluster \"%s\" (%s in %d ms, %s)%s", r.pushed(), r.pushed() == 1 ? "" : "s", cluster,
                        Sizes.bytes(r.bytes()), ms, Sizes.rate(r.bytes(), Math.max(1, ms) * 1_000_000L),
                        r.failed() > 0 ? ", " + r.failed() + " failed: retrying" : "");
                pushedSinceReport += r.pushed();
                if (once) {
                    return r.failed() > 0 ? ExitCode.REPOSITORY.code : 0;
                }
                backoffMs = r.failed() > 0 ? Math.min(10_000, Math.max(500, backoffMs * 2)) : 0;
            } else if (once) {
                Log.info("agent: nothing ready for cluster \"%s\"", cluster);
                return 0;
            }
            if (System.nanoTime() - lastPrune > 60_000_000_000L) {
                int removed = spool.prune(pgWal);
                lastPrune = System.nanoTime();
                if (removed > 0) {
                    Log.debug("agent: removed %d acknowledgements of WAL files PostgreSQL has recycled", removed);
                }
            }
            if (System.nanoTime() - lastReport > 60_000_000_000L) {
                Log.info("agent: cluster \"%s\": %d WAL files pushed in the last minute; watching %s", cluster, pushedSinceReport,
                        pgWal.resolve("archive_status"));
                lastReport = System.nanoTime();
                pushedSinceReport = 0;
            }
            try {
                Thread.sleep(Math.max(intervalMs, backoffMs));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return ExitCode.INTERRUPTED.code;
            }
        }
    }
}
