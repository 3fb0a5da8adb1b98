package dev.pgproof.cli;

import dev.pgproof.backup.Backup;
import dev.pgproof.cluster.LiveCluster;
import dev.pgproof.cluster.Owner;
import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.expire.Retention;
import dev.pgproof.io.Compression;
import dev.pgproof.lock.RepoLock;
import dev.pgproof.repo.BackupManifest;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import dev.pgproof.util.Sizes;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "backup", mixinStandardHelpOptions = true,
        description = {"Take a full base backup of a running cluster.",
            "Finds the server from the data directory's postmaster.pid and checks, before copying anything, that it is that data "
                + "directory's server and the cluster pinned in the repository. Copies files in parallel (--jobs), writes backup_label "
                + "and a PostgreSQL backup_manifest into the backup, waits until the WAL it needs is archived, and only then marks it complete."})
final class BackupCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Option(names = "--type", paramLabel = "TYPE", defaultValue = "full", description = "full (incremental types come later)")
    String type;

    @Option(names = "--start-fast", description = "request an immediate checkpoint instead of a spread one")
    boolean startFast;

    @Override
    public Integer call() {
        if (!type.equals("full")) {
            throw new PgproofException(ExitCode.USAGE, "backup type \"" + type + "\" is not supported yet", "use --type full");
        }
        Settings s = common.settings();
        String cluster = s.cluster();
        Path pgdata = s.path(Setting.PGDATA);
        Owner.becomeOwnerOf(LiveCluster.realDataDir(cluster, pgdata), "data directory");
        Context ctx = new Context(s);
        Storage storage = ctx.storage();
        ClusterIdentity pinned = ctx.pinned(storage);
        Compression c = Compression.byName(s.get(Setting.COMPRESS));
        Retention.Policy policy = ExpireCommand.policy(s);
        boolean expireAfter = ExpireCommand.afterBackup(s);
        Instant t0 = Instant.now();
        try (RepoLock lock = RepoLock.exclusive(storage, ctx.layout(), "backup", "backup");
                LiveCluster lc = LiveCluster.connect(cluster, pgdata, s.get(Setting.HOST), s.get(Setting.PORT), InitCommand.user(s),
                s.intValue(Setting.CONNECT_TIMEOUT, 10), pinned, storage.describe())) {
            Log.info("cluster \"%s\": identity confirmed (%s, data directory \"%s\")", cluster, pinned.describe(), lc.pgdata());
            BackupManifest m = new Backup(lc, storage, ctx.layout(), new Backup.Options(startFast, s.jobs(), c,
                    s.intValue(Setting.COMPRESS_LEVEL, c.defaultLevel), s.intValue(Setting.ARCHIVE_TIMEOUT, 60))).run();
            long nanos = Duration.between(t0, Instant.now()).toNanos();
            Log.info("backup %s of cluster \"%s\" complete: %s in %d files, %s stored, WAL %s to %s, %s (%s)", m.label(), cluster,
                    Sizes.bytes(m.size()), m.files().size(), Sizes.bytes(m.storedSize()), m.startWal(), m.stopWal(), Sizes.seconds(nanos),
                    Sizes.rate(m.size(), nanos));
            System.out.println(m.label());
            if (expireAfter && policy.isSet()) {
                Log.info("expire after backup: %s", policy.describe());
                ExpireCommand.run(storage, ctx, pinned, policy, false);
            }
        }
        return 0;
    }
}
