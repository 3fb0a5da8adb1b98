package dev.pgproof.cli;

import dev.pgproof.cluster.Owner;
import dev.pgproof.config.CheckQueries;
import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.prove.Prover;
import dev.pgproof.repo.BackupCatalog;
import dev.pgproof.repo.BackupManifest;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.repo.ProofRecord;
import dev.pgproof.restore.RecoveryTarget;
import dev.pgproof.restore.Restore;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneId;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "prove", mixinStandardHelpOptions = true,
        description = {"Prove a backup by restoring it and running it on a throwaway PostgreSQL server.",
            "Restores the backup (default: the newest complete one) into a scratch directory under prove-dir (free space checked first), "
                + "runs pg_verifybackup, starts a throwaway server that cannot harm anything (unix socket only in a private directory, no TCP, "
                + "archive_mode off, no preloaded libraries, no WAL senders or logical replication workers, its own minimal configuration, "
                + "tablespaces remapped into the scratch directory), recovers from the archive to the target or the end of the archive and "
                + "promotes, checks the system identifier, runs amcheck on every B-tree index and reads every table of every database in full, "
                + "runs the check queries (check-query-<name> = <SQL returning one boolean>, check-database-<name> = <db>), stops it cleanly "
                + "and runs pg_checksums --check. Records the proof in the repository (also when it fails), removes the scratch copy, and "
                + "exits 13 if any check failed."})
final class ProveCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Option(names = "--set", paramLabel = "LABEL", description = "the backup to prove (default: the newest complete one; with --target-time the newest that finished before it)")
    String set;

    @Mixin
    TargetOptions targets;

    @Option(names = {"--prove-dir", "--scratch"}, paramLabel = "DIR",
            description = "directory the scratch copy is made under (default: /var/tmp, else the system temp directory) ($PGPROOF_PROVE_DIR)")
    String proveDir;

    @Option(names = "--prove-timeout", paramLabel = "SECONDS", description = "how long recovery may take, and each pg_verifybackup, pg_checksums or check query (default 3600) ($PGPROOF_PROVE_TIMEOUT)")
    String proveTimeout;

    @Option(names = "--check-query", paramLabel = "NAME=SQL",
            description = "a check query: SQL returning one boolean, true to pass (also check-query-<name> in the configuration file, $PGPROOF_CHECK_QUERY_<NAME>)")
    Map<String, String> checkQueries = new LinkedHashMap<>();

    @Option(names = "--check-database", paramLabel = "NAME=DB", description = "the database check NAME runs in (default postgres; also check-database-<name>)")
    Map<String, String> checkDatabases = new LinkedHashMap<>();

    @Option(names = "--keep", description = "keep the scratch copy (stopped) for a look")
    boolean keep;

    @Option(names = "--keep-on-failure", description = "keep the scratch copy (stopped) when a check fails")
    boolean keepOnFailure;

    @Override
    public Integer call() {
        if (targets.count() > 1) {
            throw new PgproofException(ExitCode.USAGE, "more than one recovery target given",
                    "PostgreSQL accepts one kind of recovery target; keep one of --target-time, --target-lsn, --target-xid, --target-name");
        }
        Map<Setting, String> extra = new LinkedHashMap<>();
        if (proveDir != null) {
            extra.put(Setting.PROVE_DIR, proveDir);
        }
        if (proveTimeout != null) {
            extra.put(Setting.PROVE_TIMEOUT, proveTimeout);
        }
        Settings s = common.settings(extra);
        String cluster = s.cluster();
        Path repo = s.repoIsS3() ? null : s.path(Setting.REPO);
        // Run as the cluster owner: the owner of the live data directory if configured, else of the cluster's repository directory.
        String pgdata = s.get(Setting.PGDATA);
        if (pgdata != null && Files.isDirectory(Path.of(pgdata))) {
            Owner.becomeOwnerOf(Path.of(pgdata), "data directory");
        } else if (repo != null && Files.isDirectory(repo.resolve(cluster))) {
            Owner.becomeOwnerOf(repo.resolve(cluster), "repository directory of cluster \"" + cluster + "\"");
        }
        if (Owner.isRoot()) {
            throw new PgproofException(ExitCode.PERMISSION, "prove of cluster \"" + cluster + "\" would run PostgreSQL as root, which it refuses, "
                    + "and no data directory or local repository directory names the cluster owner",
                    "give the cluster's data directory (--pgdata, PGPROOF_PGDATA or pgdata in section [" + cluster + "]): prove runs as its owner",
                    "or run prove as the cluster owner, e.g. sudo -u postgres pgproof prove --cluster " + cluster);
        }
        Context ctx = new Context(s);
        Storage storage = ctx.storage();
        ClusterIdentity pinned = ctx.pinned(storage);
        List<CheckQueries.CheckQuery> queries = CheckQueries.resolve(cluster, checkQueries, checkDatabases, System.getenv(), s.configFile());
        ZoneId zone = ZoneId.of("UTC");
        try {
            List<BackupManifest> complete = new BackupCatalog(storage, ctx.layout()).complete();
            if (!complete.isEmpty()) {
                zone = Restore.zoneOf(complete.get(complete.size() - 1));
            }
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not read the backups of cluster \"" + cluster + "\": " + e.getMessage(),
                    "check that the repository is mounted and readable");
        }
        boolean targeted = targets.count() > 0;
        RecoveryTarget rt = RecoveryTarget.of(targets.targetTime, targets.targetLsn, targets.targetXid, targets.targetName, null, false, targeted ? "promote" : null,
                targets.targetTimeline, zone);
        if (rt.zoneAssumed()) {
            Log.info("--target-time \"%s\" has no UTC offset: read in the cluster's time zone %s, that is %s", targets.targetTime, zone, rt.time());
        }
        int timeout = s.intValue(Setting.PROVE_TIMEOUT, 3600);
        if (timeout < 1) {
            throw new PgproofException(ExitCode.CONFIG, "setting \"prove-timeout\" must be at least 1 second, got " + timeout,
                    "fix --prove-timeout, PGPROOF_PROVE_TIMEOUT or the configuration file");
        }
        if (!queries.isEmpty()) {
            Log.info("prove: %d check quer%s: %s", queries.size(), queries.size() == 1 ? "y" : "ies",
                    String.join(", ", queries.stream().map(CheckQueries.CheckQuery::name).toList()));
        }
        String restoreCommand = Context.launcher() + " archive-get" + ctx.commandOptions() + " %f \"%p\"";
        Prover.Options o = new Prover.Options(set, rt, proveDir(s), keep, keepOnFailure, s.jobs(), restoreCommand, queries,
                InitCommand.user(s), timeout);
        ProofRecord p = new Prover(storage, ctx.layout(), pinned).run(o);
        for (ProofRecord.Check c : p.checks()) {
            System.out.printf("%s  %-40s %7.1f s  %s%n", c.passed() ? "PASS" : "FAIL", c.name(), c.seconds(), c.detail());
        }
        System.out.printf("proof %s of backup %s (cluster \"%s\", target: %s): %s%n", p.label(), p.backupLabel(), cluster, p.target(),
                p.passed() ? "PASSED" : "FAILED");
        System.out.flush();
        if (!p.passed()) {
            ProofRecord.Check first = p.checks().stream().filter(c -> !c.passed()).findFirst().orElse(null);
            throw new PgproofException(ExitCode.PROOF_FAILED, "proof of backup " + p.backupLabel() + " of cluster \"" + cluster + "\" failed"
                    + (first == null ? "" : ": " + first.name() + ": " + first.detail()),
                    "the failed proof is recorded as " + p.label() + "; rerun with --keep-on-failure to look at the copy and its server log",
                    "prove an older backup with --set, and take a new backup (pgproof backup) if this one is damaged");
        }
        return 0;
    }

    /** prove-dir, else /var/tmp if it is a writable directory, else the system temp directory. */
    private static Path proveDir(Settings s) {
        String v = s.get(Setting.PROVE_DIR);
        if (v != null && !v.isEmpty()) {
            return Path.of(v).toAbsolutePath().normalize();
        }
        Path varTmp = Path.of("/var/tmp");
        if (Files.isDirectory(varTmp) && Files.isWritable(varTmp)) {
            return varTmp;
        }
        return Path.of(System.getProperty("java.io.tmpdir"));
    }
}
