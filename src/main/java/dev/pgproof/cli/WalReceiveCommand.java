package dev.pgproof.cli;

import dev.pgproof.cluster.LiveCluster;
import dev.pgproof.cluster.Owner;
import dev.pgproof.cluster.PgConnection;
import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.io.Compression;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.Cleanup;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import dev.pgproof.wal.WalArchive;
import dev.pgproof.wal.WalReceiver;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "wal-receive", mixinStandardHelpOptions = true,
        description = {"Stream WAL from the cluster over the replication protocol, so that the repository is seconds behind instead of a "
                + "segment behind: a long-lived process that finds the server from the data directory's postmaster.pid, checks its "
                + "identity, and receives WAL through a physical replication slot.",
            "The segment being received is stored every --partial-interval seconds as a partial copy (under <cluster>/stream/), which "
                + "archive-get serves when the segment itself is not archived; a complete segment is stored like archive-push stores it "
                + "(archiving may run at the same time: one segment is stored once, or found identical). The slot advances only over "
                + "WAL that is durably stored, so a killed receiver loses nothing and the next one resumes from the slot.",
            "After a lost connection or a server restart it reconnects, for up to --retry-for seconds without a working connection, "
                + "then exits 4. SIGTERM stores what was received and exits 12."})
final class WalReceiveCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Option(names = "--slot", paramLabel = "NAME", description = "physical replication slot (default pgproof_<cluster>)")
    String slot;

    @Option(names = "--create-slot", description = "create the slot if it does not exist (physical, reserving WAL at once)")
    boolean createSlot;

    @Option(names = "--partial-interval", paramLabel = "SECONDS", defaultValue = "5",
            description = "store the segment being received at most this often while WAL arrives (default 5)")
    double partialInterval;

    @Option(names = "--status-interval", paramLabel = "SECONDS", defaultValue = "10", description = "status report to the server (default 10)")
    double statusInterval;

    @Option(names = "--report-interval", paramLabel = "SECONDS", defaultValue = "30",
            description = "print received, stored and server positions and the lag (default 30)")
    double reportInterval;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "60",
            description = "a server that answers nothing, not even a reply request, for this long is given up and reconnected (default 60)")
    int timeout;

    @Option(names = "--retry-for", paramLabel = "SECONDS", defaultValue = "300",
            description = "keep reconnecting for this long without a working connection, then exit 4 (default 300)")
    int retryFor;

    @Override
    public Integer call() {
        Settings s = common.settings();
        String cluster = s.cluster();
        if (timeout < 5 || retryFor < 0 || partialInterval <= 0 || statusInterval <= 0 || reportInterval <= 0) {
            throw new PgproofException(ExitCode.USAGE, "wal-receive: --timeout must be at least 5 s and the intervals positive",
                    "see: pgproof wal-receive --help");
        }
        String slotName = slot == null ? WalReceiver.defaultSlot(cluster) : slot;
        if (!slotName.matches("[a-z0-9_]{1,63}")) {
            throw new PgproofException(ExitCode.USAGE, "invalid replication slot name \"" + slotName + "\"",
                    "a slot name has 1 to 63 lower-case letters, digits and underscores");
        }
        Path pgdata = LiveCluster.realDataDir(cluster, s.path(Setting.PGDATA));
        Owner.becomeOwnerOf(pgdata, "data directory");
        Context ctx = new Context(s);
        Storage storage = ctx.storage();
        ClusterIdentity pinned = ctx.pinned(storage);
        LiveCluster.checkPinned(cluster, pgdata, LiveCluster.readIdentity(cluster, pgdata), pinned, storage.describe());
        Compression c = Compression.byName(s.get(Setting.COMPRESS));
        int connectTimeout = s.intValue(Setting.CONNECT_TIMEOUT, 10);
        WalReceiver receiver = new WalReceiver(cluster, pinned, new WalArchive(storage, ctx.layout()), c, s.intValue(Setting.COMPRESS_LEVEL, c.defaultLevel),
                new WalReceiver.Options(slotName, createSlot, (long) (partialInterval * 1000), (long) (statusInterval * 1000),
                        (long) (reportInterval * 1000), timeout, retryFor));
        Log.info("wal-receive: cluster \"%s\" (%s), data directory \"%s\", repository %s, slot \"%s\"", cluster, pinned.describe(), pgdata,
                storage.describe(), slotName);
        Object stopper = Cleanup.register(() -> receiver.requestStop(30_000));
        try {
            receiver.run(new WalReceiver.Connector() {
                @Override
                public Connection connect() {
                    return WalReceiveCommand.this.connect(ctx, pinned, storage, s, connectTimeout);
                }

                @Override
                public Connection connectSql() {
                    try (LiveCluster lc = ctx.connect(pinned, storage.describe())) {
                        return PgConnection.open(lc.endpoint(), InitCommand.user(s), connectTimeout, "postgres");
                    } catch (SQLException e) {
                        throw new PgproofException(ExitCode.CONNECT, "cluster \"" + cluster + "\": could not connect to move replication slot \""
                                + slotName + "\": " + e.getMessage());
                    }
                }
            });
        } finally {
            Cleanup.unregister(stopper);
        }
        return 0;
    }

    /** The identity-checked server of --pgdata, then a replication connection to the same socket or host. */
    private Connection connect(Context ctx, ClusterIdentity pinned, Storage storage, Settings s, int connectTimeout) {
        try (LiveCluster lc = ctx.connect(pinned, storage.describe())) {
            try {
                return PgConnection.openReplication(lc.endpoint(), InitCommand.user(s), connectTimeout, Math.max(timeout, connectTimeout));
            } catch (SQLException e) {
                String m = e.getMessage() == null ? "unknown error" : e.getMessage().split("\n", 2)[0];
                throw new PgproofException(ExitCode.CONNECT, "cluster \"" + lc.name() + "\": could not open a replication connection to "
                        + lc.endpoint().describe() + ": " + m, "the user needs the REPLICATION attribute (or superuser), pg_hba.conf a "
                                + "\"local replication\" (or host replication) line, and the server a free max_wal_senders slot");
            }
        }
    }
}
