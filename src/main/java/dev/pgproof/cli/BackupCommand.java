package dev.pgproof.cli;

import dev.pgproof.backup.Backup;
import dev.pgproof.cluster.LiveCluster;
import dev.pgproof.cluster.Owner;
import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.expire.Retention;
import dev.pgproof.io.Compression;
import dev.pgproof.lock.RepoLock;
import dev.pgproof.repo.BackupCatalog;
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
        description = {"Take a base backup of a running cluster: full, or block-level incremental or differential.",
            "Finds the server from the data directory's postmaster.pid and checks, before copying anything, that it is that data "
                + "directory's server and the cluster pinned in the repository. Copies files in parallel (--jobs), writes backup_label "
                + "and a PostgreSQL backup_manifest into the backup, waits until the WAL it needs is archived, and only then marks it complete.",
            "With data checksums on, verifies the checksum of every relation page as it copies it (pages written during the backup are "
                + "left to WAL replay); a page that keeps failing is named on stderr and recorded for info, and the backup completes with "
                + "exit code 17."})
final class BackupCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Option(names = "--type", paramLabel = "TYPE", defaultValue = "full", description = "full (default), incr (blocks changed since the newest "
            + "backup) or diff (blocks changed since the newest full backup); without a usable prior backup it takes a full and says so")
    String type;

    @Option(names = "--start-fast", description = "request an immediate checkpoint instead of a spread one")
    boolean startFast;

    @Option(names = "--from-standby", description = "back up a standby (the --pgdata given is a standby's); the primary (--primary-pgdata) "
            + "is used only to switch WAL so that the backup's last segment is archived")
    boolean fromStandby;

    @Option(names = "--no-resume", description = "start afresh instead of resuming the newest interrupted backup (whose stored chunks are "
            + "reused after checking their checksums)")
    boolean noResume;

    /**
     * A backup holds about three chunk buffers per job (two read buffers, one compressed), and an
     * incremental or differential one a fourth (the earlier version changed blocks are XOR-stored
     * against): refuse up front, with the fix, rather than run out of heap half-way (the launcher caps
     * the heap).
     */
    static void checkHeap(String cluster, int jobs, boolean incremental, long max) {
        long need = Backup.manifestHeap(0, jobs, incremental);   // the manifests are counted once the data directory is listed
        if (need > max) {
            throw new PgproofException(ExitCode.CONFIG, "backup of cluster \"" + cluster + "\": " + jobs + " jobs need about " + (need >> 20)
                    + " MiB of Java heap, but this JVM may use " + (max >> 20) + " MiB",
                    "lower --jobs (or jobs in the configuration file), or raise the heap: PGPROOF_JAVA_OPTS=-Xmx" + ((need >> 20) + 128) + "m");
        }
    }

    /** Checks that --from-standby matches what the server is; connects to the primary when one is configured. */
    private LiveCluster standby(LiveCluster lc, Settings s, ClusterIdentity pinned, Storage storage) {
        boolean inRecovery;
        try {
            inRecovery = "t".equals(lc.query("SELECT pg_is_in_recovery()"));
        } catch (java.sql.SQLException e) {
            throw new PgproofException(ExitCode.CONNECT, "cluster \"" + lc.name() + "\": could not query the server: " + e.getMessage());
        }
        if (inRecovery && !fromStandby) {
            throw new PgproofException(ExitCode.USAGE, "cluster \"" + lc.name() + "\": the server at " + lc.endpoint().describe()
                    + " (data directory \"" + lc.pgdata() + "\") is a standby",
                    "to back up the standby, add --from-standby (and --primary-pgdata to let pgproof switch WAL on the primary)",
                    "or back up the primary: --pgdata <the primary's data directory>");
        }
        if (!inRecovery && fromStandby) {
            throw new PgproofException(ExitCode.USAGE, "cluster \"" + lc.name() + "\": --from-standby, but the server at "
                    + lc.endpoint().describe() + " is not in recovery (not a standby)", "drop --from-standby to back up this primary");
        }
        if (!fromStandby || s.get(Setting.PRIMARY_PGDATA) == null) {
            return null;
        }
        LiveCluster primary = LiveCluster.connect(lc.name(), s.path(Setting.PRIMARY_PGDATA), null, null, InitCommand.user(s),
                s.intValue(Setting.CONNECT_TIMEOUT, 10), pinned, storage.describe());
        try {
            if ("t".equals(primary.query("SELECT pg_is_in_recovery()"))) {
                primary.close();
                throw new PgproofException(ExitCode.USAGE, "cluster \"" + lc.name() + "\": --primary-pgdata \"" + primary.pgdata()
                        + "\" is a standby too", "give the data directory of the primary");
            }
        } catch (java.sql.SQLException e) {
            primary.close();
            throw new PgproofException(ExitCode.CONNECT, "cluster \"" + lc.name() + "\": could not query the primary: " + e.getMessage());
        }
        Log.info("backing up standby \"%s\" (%s); primary \"%s\" (%s) is used only to switch WAL", lc.pgdata(), lc.endpoint().describe(),
                primary.pgdata(), primary.endpoint().describe());
        return primary;
    }

    @Override
    public Integer call() {
        if (!type.equals("full") && !type.equals("incr") && !type.equals("diff")) {
            throw new PgproofException(ExitCode.USAGE, "invalid backup type \"" + type + "\"", "use --type full, incr or diff");
        }
        Log.timing("command line parsed");
        Settings s = common.settings();
        String cluster = s.cluster();
        Path pgdata = s.path(Setting.PGDATA);
        Owner.becomeOwnerOf(LiveCluster.realDataDir(cluster, pgdata), "data directory");
        Log.timing("settings read, running as the data directory's owner");
        Context ctx = new Context(s);
        Storage storage = ctx.storage();
        ClusterIdentity pinned = ctx.pinned(storage);
        Log.timing("repository opened, cluster pin read");
        Compression c = Compression.byName(s.get(Setting.COMPRESS));
        checkHeap(cluster, s.jobs(), !type.equals("full"), Runtime.getRuntime().maxMemory());
        Retention.Policy policy = ExpireCommand.policy(s);
        boolean expireAfter = ExpireCommand.afterBackup(s);
        Instant t0 = Instant.now();
        try (RepoLock lock = RepoLock.exclusive(storage, ctx.layout(), "backup", "backup");
                LiveCluster lc = ctx.connect(pinned, storage.describe())) {
            Log.timing("repository locked, connected");
            Backup backup = new Backup(lc, storage, ctx.layout(), new Backup.Options(startFast, s.jobs(), c,
                    s.intValue(Setting.COMPRESS_LEVEL, c.defaultLevel), s.intValue(Setting.ARCHIVE_TIMEOUT, 60), !noResume, type));
            LiveCluster primary = standby(lc, s, pinned, storage);
            if (primary != null || fromStandby) {
                backup.fromStandby(primary);
            }
            BackupCatalog.Entry done;
            try {
                done = backup.run();
            } finally {
                if (primary != null) {
                    primary.close();
                }
            }
            BackupManifest m = done.manifest();
            long nanos = Duration.between(t0, Instant.now()).toNanos();
            Log.info("backup %s of cluster \"%s\" complete: %s in %d files, %s stored, WAL %s to %s, %s (%s)", m.label(), cluster,
                    Sizes.bytes(m.size()), done.fileCount(), Sizes.bytes(m.storedSize()), m.startWal(), m.stopWal(), Sizes.seconds(nanos),
                    Sizes.rate(m.size(), nanos));
            System.out.println(m.label());
            BackupManifest.PageChecksums pc = m.pageChecksums();
            boolean damaged = pc != null && pc.failed() > 0;
            if (expireAfter && policy.isSet() && damaged) {
                Log.warn("expire after backup skipped: older backups may hold sound copies of the pages that failed their checksums");
            } else if (expireAfter && policy.isSet()) {
                Log.info("expire after backup: %s", policy.describe());
                ExpireCommand.run(storage, ctx, pinned, policy, false);
            }
            if (damaged) {
                throw new PgproofException(ExitCode.PAGE_CHECKSUMS, "backup " + m.label() + " of cluster \"" + cluster + "\" is complete, but "
                        + pc.failed() + " page(s) in " + pc.failedFiles() + " file(s) of the cluster failed their data checksums (named in the "
                        + "warnings above; pgproof info --cluster " + cluster + " lists them)",
                        "the damage is in the cluster's files, not in the repository; the relation of base/DB/N is "
                            + "SELECT pg_filenode_relation(0, N) in database DB (SELECT datname FROM pg_database WHERE oid = DB)",
                        "older backups may hold sound copies of those pages (restore one elsewhere with --set); an index can be rebuilt "
                            + "with REINDEX");
            }
        }
        return 0;
    }
}
