package dev.pgproof.cli;

import dev.pgproof.cluster.LiveCluster;
import dev.pgproof.cluster.Owner;
import dev.pgproof.config.Setting;
import dev.pgproof.crypto.Encryption;
import dev.pgproof.config.Settings;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.repo.ClusterInfo;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.PosixStorage;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "init", mixinStandardHelpOptions = true,
        description = {"Create the repository area of a cluster and pin its identity there.",
            "Reads the system identifier, major version, WAL segment size, block size and data checksums from the data directory, "
                + "confirms them over a connection to its server, and records them in <repo>/<cluster>/cluster.info. Prints the "
                + "archive_command and restore_command to use; --configure sets archive_mode and archive_command with ALTER SYSTEM. "
                + "Running it again for the same cluster is harmless; for a different cluster under an existing name it fails."})
final class InitCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Option(names = "--configure", description = "set archive_mode = on and archive_command with ALTER SYSTEM, and reload")
    boolean configure;

    @Option(names = "--upgrade", description = "after pg_upgrade: pin the cluster's new identity (system identifier, major version) under the "
            + "same name; the old identity is kept, and its backups stay restorable with the old major version")
    boolean upgrade;

    @Override
    public Integer call() {
        Settings s = common.settings();
        String cluster = s.cluster();
        Path pgdata = s.path(Setting.PGDATA);
        Owner.becomeOwnerOf(LiveCluster.realDataDir(cluster, pgdata), "data directory");
        Context ctx = new Context(s);
        String repo = ctx.repoName();
        try (LiveCluster lc = ctx.connect(null, repo)) {
            ClusterIdentity id = lc.identity();
            Storage storage;
            if (s.repoIsS3()) {
                storage = encryptIfNew(ctx.s3Raw(), null, ctx.secret()); // the bucket must exist: init never creates buckets
            } else {
                Path dir = s.path(Setting.REPO);
                try {
                    Files.createDirectories(dir);
                } catch (IOException e) {
                    throw new PgproofException(ExitCode.REPOSITORY, "could not create repository \"" + dir + "\": " + e.getMessage(),
                            "create it owned by the cluster owner: install -d -o " + Owner.currentUser() + " -m 750 " + dir);
                }
                storage = encryptIfNew(Context.posix(dir), dir, ctx.secret());
            }
            RepoLayout layout = new RepoLayout(cluster);
            if (upgrade) {
                upgrade(storage, layout, lc, id);
            }
            boolean existed = pin(storage, layout, lc, id);
            Log.info("cluster \"%s\" %s in repository \"%s\": %s, WAL segment size %d, block size %d, data checksums %s", cluster,
                    existed ? "was already initialised" : "initialised", repo, id.describe(), id.walSegmentSize(), id.blockSize(),
                    id.dataChecksums() ? "on" : "off");
            String archiveCommand = Context.launcher() + " archive-push" + ctx.commandOptions() + " %p";
            String restoreCommand = Context.launcher() + " archive-get" + ctx.commandOptions() + " %f \"%p\"";
            System.out.println("archive_mode = on");
            System.out.println("archive_command = '" + archiveCommand.replace("'", "''") + "'");
            System.out.println("restore_command = '" + restoreCommand.replace("'", "''") + "'");
            if (configure) {
                configure(lc, archiveCommand);
            }
        }
        return 0;
    }

    /** A new (empty) repository with a key or passphrase set becomes encrypted; then the repository is opened as any command does. */
    private static Storage encryptIfNew(Storage raw, Path posixDir, Encryption.Secret secret) {
        try {
            if (secret.given() && !Encryption.isEncrypted(raw) && raw.listPrefixes("").isEmpty() && raw.list("").isEmpty()) {
                Encryption.initialise(posixDir != null ? new PosixStorage(posixDir, true) : raw, secret);
                Log.info("repository \"%s\" is encrypted (AES-256-GCM); keep the %s safe: without it no backup can be restored",
                        raw.describe(), secret.keyFile() != null ? "key file" : "passphrase");
                if (secret.keyFile() == null && secret.passFile() == null) {
                    Log.warn("the passphrase came from %s: archive_command and restore_command do not see this variable; "
                            + "put cipher-pass-file in the configuration file", Encryption.PASS_ENV);
                }
            }
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not read repository \"" + raw.describe() + "\": " + e.getMessage(),
                    "check that it is mounted and writable by the cluster owner");
        }
        return Encryption.open(posixDir != null ? Context.posix(posixDir) : raw, secret);
    }

    /** Re-pins an initialised cluster name to the identity pg_upgrade gave it. */
    private static void upgrade(Storage storage, RepoLayout layout, LiveCluster lc, ClusterIdentity now) {
        String cluster = layout.cluster();
        try {
            if (!storage.exists(layout.clusterInfo())) {
                throw new PgproofException(ExitCode.USAGE, "--upgrade: cluster \"" + cluster + "\" is not initialised in repository \""
                        + storage.describe() + "\"", "initialise it without --upgrade");
            }
            ClusterIdentity old = ClusterInfo.read(storage, layout);
            if (old.systemIdentifier() == now.systemIdentifier()) {
                Log.info("cluster \"%s\": identity unchanged (%s); nothing to upgrade", cluster, now.describe());
                return;
            }
            if (now.pgVersion() < old.pgVersion()) {
                throw new PgproofException(ExitCode.IDENTITY, "--upgrade: data directory \"" + lc.pgdata() + "\" runs PostgreSQL " + now.pgVersion()
                        + ", older than the PostgreSQL " + old.pgVersion() + " pinned for cluster \"" + cluster + "\"",
                        "pg_upgrade only goes to a newer major version: is --pgdata the upgraded cluster?");
            }
            // pg_upgrade starts the new cluster's WAL after the old one's: a cluster whose WAL is behind the old
            // identity's archive is not its upgrade, and re-pinning the name to it would repeat wal-e's mistake.
            String newest = null;
            for (String name : new dev.pgproof.wal.WalArchive(storage, layout).listAll().keySet()) {
                if (dev.pgproof.wal.WalFileName.kindOf(name) == dev.pgproof.wal.WalFileName.Kind.SEGMENT) {
                    newest = name;
                }
            }
            String current = lc.query("SELECT pg_walfile_name(pg_current_wal_lsn())");
            if (newest != null && current.substring(8).compareTo(newest.substring(8)) <= 0) {
                throw new PgproofException(ExitCode.IDENTITY, "--upgrade: data directory \"" + lc.pgdata() + "\" writes WAL " + current
                        + ", not after " + newest + ", the newest WAL archived for cluster \"" + cluster + "\": it is not the pinned cluster "
                        + "upgraded by pg_upgrade", "give --pgdata of the cluster pg_upgrade created from " + old.describe(),
                        "a different cluster needs its own name: pgproof init --cluster <new name> --pgdata " + lc.pgdata());
            }
            String oldText = ClusterInfo.text(storage, layout);
            ClusterInfo.upgrade(storage, layout, old, oldText, now, lc.pgdata().toString(), newest);
            Log.info("cluster \"%s\": upgraded from %s to %s; backups of the old identity stay restorable with PostgreSQL %d; take a "
                    + "full backup now (an incremental cannot span the upgrade)", cluster, old.describe(), now.describe(), old.pgVersion());
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not write to repository \"" + storage.describe() + "\": " + e.getMessage(),
                    "the repository must be writable by the cluster owner (" + Owner.currentUser() + ")");
        } catch (java.sql.SQLException e) {
            throw new PgproofException(ExitCode.CONNECT, "cluster \"" + cluster + "\": could not read the WAL position: " + e.getMessage());
        }
    }

    static String user(Settings s) {
        String u = s.get(Setting.USER);
        return u == null ? Owner.currentUser() : u;
    }

    /** Writes cluster.info unless it exists; an existing pin must be this cluster's. Returns whether it existed. */
    private static boolean pin(Storage storage, RepoLayout layout, LiveCluster lc, ClusterIdentity id) {
        String cluster = layout.cluster();
        try {
            if (storage.exists(layout.clusterInfo())) {
                ClusterIdentity pinned = ClusterInfo.read(storage, layout);
                if (pinned.systemIdentifier() != id.systemIdentifier() || pinned.pgVersion() != id.pgVersion()) {
                    throw new PgproofException(ExitCode.IDENTITY, "cluster \"" + cluster + "\" in repository \"" + storage.describe()
                            + "\" is pinned to " + pinned.describe() + ", but data directory \"" + lc.pgdata() + "\" has " + id.describe(),
                            "this name belongs to another cluster: choose a new --cluster name for \"" + lc.pgdata() + "\""
                                    + (id.pgVersion() > pinned.pgVersion() ? "; or, if pg_upgrade made it from the pinned cluster: pgproof init "
                                    + "--upgrade --cluster " + cluster + " --pgdata " + lc.pgdata() : ""));
                }
                return true;
            }
            try {
                storage.write(layout.clusterInfo(), ClusterInfo.render(cluster, id, lc.pgdata().toString()).getBytes(StandardCharsets.UTF_8), true);
            } catch (FileAlreadyExistsException e) {
                return pin(storage, layout, lc, id); // initialised concurrently: judge what is there
            }
            return false;
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not write to repository \"" + storage.describe() + "\": " + e.getMessage(),
                    "the repository must be writable by the cluster owner (" + Owner.currentUser() + ")");
        }
    }

    private static void configure(LiveCluster lc, String archiveCommand) {
        try (Statement st = lc.connection().createStatement()) {
            String before = lc.query("SHOW archive_mode");
            st.execute("ALTER SYSTEM SET archive_mode = 'on'");
            st.execute("ALTER SYSTEM SET archive_command = '" + archiveCommand.replace("'", "''") + "'");
            st.execute("SELECT pg_reload_conf()");
            Log.info("cluster \"%s\": set archive_mode = on and archive_command with ALTER SYSTEM, and reloaded", lc.name());
            if ("off".equals(before)) {
                Log.warn("cluster \"%s\": archive_mode was off; restart PostgreSQL for archiving to start (e.g. pg_ctlcluster %d <name> restart)",
                        lc.name(), lc.majorVersion());
            }
        } catch (SQLException e) {
            throw new PgproofException(ExitCode.CONNECT, "cluster \"" + lc.name() + "\": could not set archive settings: " + e.getMessage(),
                    "ALTER SYSTEM needs a superuser; or set archive_mode and archive_command in postgresql.conf by hand");
        }
    }
}
