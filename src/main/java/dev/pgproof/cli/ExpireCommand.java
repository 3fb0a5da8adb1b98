package dev.pgproof.cli;

import dev.pgproof.cluster.Owner;
import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.expire.Expire;
import dev.pgproof.expire.Retention;
import dev.pgproof.lock.RepoLock;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "expire", mixinStandardHelpOptions = true,
        description = {"Remove backups and WAL that the retention policy no longer keeps.",
            "Retention: --retention-full N keeps the newest N full backups and the differential and incremental backups built on them; "
                + "--retention-diff N keeps only the newest N differential backups of those (an older one goes with the incrementals built "
                + "on it); --retention-days D keeps every backup that ended in the last D "
                + "days and the newest one before them; what any rule keeps is kept; with none, no backup expires. "
                + "The newest backup, and backups held by a running restore or prove, are always kept. WAL older than the start of the "
                + "oldest kept backup is removed; backups left incomplete by an interrupted run are removed. Takes the cluster's backup "
                + "lock, so it never runs during a backup. Also runs after each successful backup (expire-after-backup)."})
final class ExpireCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Option(names = "--dry-run", description = "print what would be removed and the restore window that would remain; remove nothing")
    boolean dryRun;

    @Override
    public Integer call() {
        Settings s = common.settings();
        String cluster = s.cluster();
        if (!s.repoIsS3()) {
            Owner.becomeOwnerOf(s.path(Setting.REPO), "repository");
        }
        Context ctx = new Context(s);
        Storage storage = ctx.storage();
        ClusterIdentity pinned = ctx.pinned(storage);
        Retention.Policy policy = policy(s);
        if (!policy.isSet()) {
            Log.warn("cluster \"%s\": no retention is set, so no backup expires (set retention-full, retention-diff or retention-days)", cluster);
        }
        Log.info("expire%s: cluster \"%s\" in %s", dryRun ? " (dry run)" : "", cluster, storage.describe());
        try (RepoLock lock = RepoLock.exclusive(storage, ctx.layout(), "backup", "expire")) {
            run(storage, ctx, pinned, policy, dryRun);
        }
        return 0;
    }

    /** Runs expire under a lock the caller holds (also used by backup). */
    static Expire.Result run(Storage storage, Context ctx, ClusterIdentity pinned, Retention.Policy policy, boolean dryRun) {
        try {
            return new Expire(storage, ctx.layout(), pinned.walSegmentSize()).run(policy, dryRun);
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "expire of cluster \"" + ctx.layout().cluster() + "\" failed in "
                    + storage.describe() + ": " + e.getMessage(),
                    "nothing a kept backup needs was removed; fix the repository and run pgproof expire again");
        }
    }

    static Retention.Policy policy(Settings s) {
        return new Retention.Policy(positive(s, Setting.RETENTION_FULL), positive(s, Setting.RETENTION_DAYS), positive(s, Setting.RETENTION_DIFF));
    }

    private static Integer positive(Settings s, Setting setting) {
        String v = s.get(setting);
        if (v == null || v.isBlank()) {
            return null;
        }
        int n = s.intValue(setting, 0);
        if (n < 1) {
            throw new PgproofException(ExitCode.CONFIG, "setting \"" + setting.key + "\" must be at least 1, got " + n,
                    "fix --" + setting.key + ", " + setting.envName() + " or the configuration file (leave it unset to keep everything)");
        }
        return n;
    }

    static boolean afterBackup(Settings s) {
        String v = s.get(Setting.EXPIRE_AFTER_BACKUP).trim().toLowerCase(java.util.Locale.ROOT);
        switch (v) {
            case "on", "true", "yes", "1":
                return true;
            case "off", "false", "no", "0":
                return false;
            default:
                throw new PgproofException(ExitCode.CONFIG, "setting \"expire-after-backup\" must be on or off, got \"" + v + "\"",
                        "fix --expire-after-backup, PGPROOF_EXPIRE_AFTER_BACKUP or the configuration file");
        }
    }
}
