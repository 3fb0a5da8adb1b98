package dev.pgproof.cli;

import dev.pgproof.cluster.LiveCluster;
import dev.pgproof.cluster.Owner;
import dev.pgproof.config.Setting;
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
import java.io.OutputStream;
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

    @Override
    public Integer call() {
        Settings s = common.settings();
        String cluster = s.cluster();
        Path pgdata = s.path(Setting.PGDATA);
        Owner.becomeOwnerOf(LiveCluster.realDataDir(cluster, pgdata), "data directory");
        Context ctx = new Context(s);
        String repo = ctx.repoName();
        try (LiveCluster lc = LiveCluster.connect(cluster, pgdata, s.get(Setting.HOST), s.get(Setting.PORT), user(s),
                s.intValue(Setting.CONNECT_TIMEOUT, 10), null, repo)) {
            ClusterIdentity id = lc.identity();
            Storage storage;
            if (s.repoIsS3()) {
                storage = ctx.storage(); // the bucket must exist: init never creates buckets
            } else {
                Path dir = s.path(Setting.REPO);
                try {
                    Files.createDirectories(dir);
                } catch (IOException e) {
                    throw new PgproofException(ExitCode.REPOSITORY, "could not create repository \"" + dir + "\": " + e.getMessage(),
                            "create it owned by the cluster owner: install -d -o " + Owner.currentUser() + " -m 750 " + dir);
                }
                storage = new PosixStorage(dir);
            }
            RepoLayout layout = new RepoLayout(cluster);
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
                            "this name belongs to another cluster: choose a new --cluster name for \"" + lc.pgdata() + "\"");
                }
                return true;
            }
            try (Storage.Writer w = storage.create(layout.clusterInfo())) {
                OutputStream out = w.stream();
                out.write(ClusterInfo.render(cluster, id, lc.pgdata().toString()).getBytes(StandardCharsets.UTF_8));
                w.commit(true);
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
