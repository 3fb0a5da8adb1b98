package dev.pgproof.cli;

import dev.pgproof.cluster.Owner;
import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.lock.RepoLock;
import dev.pgproof.repo.BackupCatalog;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.repo.BackupManifest;
import dev.pgproof.restore.RecoveryTarget;
import dev.pgproof.restore.Restore;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import dev.pgproof.util.TestHooks;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneId;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "restore", mixinStandardHelpOptions = true,
        description = {"Restore a backup into a new or empty directory (or, with --delta, over a stopped copy of the same cluster), "
                + "ready to recover to a target.",
            "Checks every piece of every file against the manifest, writes backup_manifest (for pg_verifybackup), recovery.signal, "
                + "restore_command and the recovery target, fsyncs every file and directory, then writes backup_label and global/pg_control "
                + "last (a restore cut short leaves a directory PostgreSQL "
                + "refuses to start, and that a new restore refuses to reuse, except restore --delta). Start PostgreSQL on the directory afterwards to recover. Without --set, "
                + "a time target picks the newest backup that finished before it; otherwise the newest backup is used. A backup of a "
                + "system identifier the cluster is not pinned to, and did not have before an upgrade, is refused (exit 5).",
            "--delta reads every existing file and compares it with the backup by checksum (never by size or time), fetches and writes "
                + "only the parts that differ, and removes what the backup does not have (pg_wal's contents included): the result is "
                + "what a restore into an empty directory gives. Refused for a running server's directory, for another cluster's "
                + "(pg_control's system identifier differs: exit 5), and while pg_wal holds WAL never archived."})
final class RestoreCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Option(names = "--set", paramLabel = "LABEL", description = "the backup to restore (as pgproof info lists it)")
    String set;

    @Mixin
    TargetOptions targets;

    @Option(names = "--target", paramLabel = "immediate", description = "immediate: stop as soon as the backup is consistent")
    String target;

    @Option(names = "--target-exclusive", description = "stop just before the target instead of just after it")
    boolean exclusive;

    @Option(names = "--target-action", paramLabel = "ACTION", description = "pause, promote or shutdown once the target is reached (PostgreSQL's default: pause)")
    String action;


    @Option(names = "--archive-mode", paramLabel = "MODE", defaultValue = "preserve", description = "preserve (default) or off: off keeps the restored copy from archiving into the repository")
    String archiveMode;

    @Option(names = "--delta", description = "restore over the existing, stopped data directory of the same cluster: rewrite only what differs "
            + "from the backup (each piece compared by its CRC-32C and XXH64, or for an older backup the SHA-256 of its blocks), remove "
            + "what it does not have; an empty or missing directory gets a normal restore")
    boolean delta;

    @Option(names = "--tablespace-map", paramLabel = "OID=DIR", description = "restore tablespace OID into DIR instead of its original location")
    Map<Integer, String> tablespaceMap = new HashMap<>();

    @Override
    public Integer call() {
        if (!archiveMode.equals("preserve") && !archiveMode.equals("off")) {
            throw new PgproofException(ExitCode.USAGE, "invalid --archive-mode \"" + archiveMode + "\"", "use preserve or off");
        }
        Settings s = common.settings();
        String cluster = s.cluster();
        Path dest = s.path(Setting.PGDATA);
        if (delta) {
            Restore.checkDeltaTarget(dest);
        } else {
            Restore.checkTarget(dest);
        }
        Owner.becomeOwnerOf(Files.exists(dest) ? dest : dest.getParent(), Files.exists(dest) ? "restore target" : "parent directory of the restore target");
        Context ctx = new Context(s);
        Storage storage = ctx.storage();
        ClusterIdentity pinned = ctx.pinned(storage);
        Log.timing("repository opened, cluster pin read");
        Restore restore = new Restore(storage, ctx.layout());
        ZoneId zone = ZoneId.of("UTC");
        List<BackupManifest> complete = new java.util.ArrayList<>();
        // The whole catalog is read to choose a backup, and for the time zone of a --target-time without offset (the newest
        // backup's); with --set alone, the chosen backup's own marker and manifest are all a restore reads.
        if (set == null || targets.targetTime != null) {
            try {
                for (BackupCatalog.Entry e : new BackupCatalog(storage, ctx.layout()).list()) {
                    if (e.complete()) {
                        complete.add(e.manifest());
                    } else if (e.damaged()) {
                        Log.warn("backup %s of cluster \"%s\" is %s: it is never used for a restore", e.label(), cluster, e.problem());
                    }
                }
                complete.sort(BackupCatalog.BY_STOP_TIME);
                Log.timing("catalog read: %d complete backups", complete.size());
                if (!complete.isEmpty()) {
                    zone = Restore.zoneOf(complete.get(complete.size() - 1));
                }
            } catch (IOException e) {
                throw new PgproofException(ExitCode.REPOSITORY, "could not read the backups of cluster \"" + cluster + "\": " + e.getMessage(),
                        "check that the repository is mounted and readable");
            }
        }
        RecoveryTarget rt = RecoveryTarget.of(targets.targetTime, targets.targetLsn, targets.targetXid, targets.targetName, target, exclusive, action, targets.targetTimeline, zone);
        if (rt.zoneAssumed()) {
            Log.info("--target-time \"%s\" has no UTC offset: read in the cluster's time zone %s, that is %s", targets.targetTime, zone, rt.time());
        }
        dev.pgproof.repo.BackupCatalog.Entry chosen = restore.choose(set, rt, complete);
        BackupManifest m = chosen.manifest();
        Log.timing("backup chosen, its manifest read");
        restore.checkIdentity(m, pinned);
        Log.info("restoring backup %s of cluster \"%s\" (finished %s, WAL %s to %s)%s", m.label(), cluster, m.stopTime(), m.startLsn(),
                m.stopLsn(), rt.isSet() ? ", recovery target " + rt.kind() + " " + rt.value() : ", recovering to the end of the archive");
        boolean over = delta && restore.deltaApplies(dest, m);
        if (delta && !over) {
            Log.info("--delta: \"%s\" is %s: a normal restore", dest, Files.exists(dest) ? "empty" : "missing");
        } else if (over) {
            Log.info("--delta: \"%s\" is a stopped data directory of system identifier %s: restoring over it", dest, m.systemIdentifier());
        }
        boolean former = !m.systemIdentifier().equals(pinned.systemIdentifierString());
        restore.checkWal(m, rt, former ? dev.pgproof.repo.ClusterInfo.formerEnd(storage, ctx.layout(), m.systemIdentifier()) : null);
        Map<Integer, Path> ts = new HashMap<>();
        tablespaceMap.forEach((k, v) -> ts.put(k, Path.of(v).toAbsolutePath()));
        Settings.Source prefetchFrom = s.source(Setting.PREFETCH);
        String restoreCommand = Context.launcher() + " archive-get" + ctx.commandOptions()
                + (prefetchFrom == Settings.Source.FLAG || prefetchFrom == Settings.Source.ENV ? " --prefetch " + s.get(Setting.PREFETCH) : "")
                + (m.systemIdentifier().equals(pinned.systemIdentifierString()) ? "" : " --recovery-identity " + m.systemIdentifier())
                + " %f \"%p\"";
        if (!m.systemIdentifier().equals(pinned.systemIdentifierString())) {
            Log.info("backup %s was taken before the cluster's upgrade (system identifier %s, PostgreSQL %d): start the restored copy with "
                    + "PostgreSQL %d's binaries", m.label(), m.systemIdentifier(), m.pgVersion(), m.pgVersion());
        }
        TestHooks.pause("restore-chosen", m.label());
        try (RepoLock hold = holdQuietly(storage, ctx, m.label())) {
            if (hold != null) {
                restore.checkStillComplete(m.label(), "restore");
            }
            TestHooks.pause("restore-held", m.label());
            restore.run(chosen, new Restore.Options(set, dest, rt, restoreCommand, archiveMode.equals("off"), s.jobs(), ts, over));
        }
        Log.info("restored into \"%s\"; start PostgreSQL on it to recover (restore_command = '%s')", dest, restoreCommand);
        return 0;
    }

    /** A hold keeps expire away from the backup while it is copied; a read-only repository only gets a warning. */
    private static RepoLock holdQuietly(Storage storage, Context ctx, String label) {
        try {
            return RepoLock.hold(storage, ctx.layout(), label, "restore");
        } catch (PgproofException e) {
            Log.warn("could not put a hold on backup %s (%s): an expire running meanwhile could remove it", label, e.getMessage());
            return null;
        }
    }
}
