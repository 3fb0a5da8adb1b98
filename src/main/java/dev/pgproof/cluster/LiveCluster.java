package dev.pgproof.cluster;

import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;

/**
 * A connection to a running cluster that has passed the identity check: the server reached is the
 * one whose data directory was named (same directory, system identifier and major version), and
 * that data directory is the cluster pinned in the repository.
 */
public final class LiveCluster implements AutoCloseable {
    private final String name;
    private final Path pgdata;
    private final PgControl control;
    private final int majorVersion;
    private final Endpoint endpoint;
    private final Connection connection;
    private final int serverVersionNum;

    private LiveCluster(String name, Path pgdata, PgControl control, int majorVersion, Endpoint endpoint, Connection connection,
            int serverVersionNum) {
        this.name = name;
        this.pgdata = pgdata;
        this.control = control;
        this.majorVersion = majorVersion;
        this.endpoint = endpoint;
        this.connection = connection;
        this.serverVersionNum = serverVersionNum;
    }

    /** The identity a data directory carries on disk. */
    public static ClusterIdentity identityOf(PgControl c, int major) {
        return new ClusterIdentity(c.systemIdentifier(), major, c.walSegmentSize(), c.blockSize(), c.walBlockSize(),
                c.dataChecksumVersion() != 0);
    }

    /** Reads a data directory's identity from pg_control and PG_VERSION, with errors that name it. */
    public static ClusterIdentity readIdentity(String cluster, Path pgdata) {
        try {
            return identityOf(PgControl.read(pgdata), PgControl.majorVersion(pgdata));
        } catch (NoSuchFileException e) {
            throw new PgproofException(ExitCode.CONFIG, "cluster \"" + cluster + "\": \"" + pgdata + "\" is not a PostgreSQL data directory (no "
                    + e.getFile() + ")", "set pgdata (--pgdata, PGPROOF_PGDATA or the configuration file) to the cluster's data directory");
        } catch (IOException e) {
            throw new PgproofException(ExitCode.CONFIG, "cluster \"" + cluster + "\": cannot read the identity of data directory \"" + pgdata
                    + "\": " + e.getMessage(), "pgproof must run as the cluster owner (or as root, which switches to it)");
        }
    }

    /** Resolves the data directory's real path, with a clear error when it does not exist. */
    public static Path realDataDir(String cluster, Path pgdata) {
        try {
            return pgdata.toRealPath();
        } catch (NoSuchFileException e) {
            throw new PgproofException(ExitCode.CONFIG, "cluster \"" + cluster + "\": data directory \"" + pgdata + "\" does not exist",
                    "set pgdata (--pgdata, PGPROOF_PGDATA or the configuration file) to the cluster's data directory");
        } catch (IOException e) {
            throw new PgproofException(ExitCode.CONFIG, "cluster \"" + cluster + "\": cannot resolve data directory \"" + pgdata + "\": "
                    + e.getMessage(), "check the path and its permissions");
        }
    }

    /**
     * Finds the server of {@code pgdataArg} from its postmaster.pid (or the host/port overrides),
     * connects, and runs every identity check before returning. {@code pinned} may be null (init).
     */
    public static LiveCluster connect(String cluster, Path pgdataArg, String hostOverride, String portOverride, String user,
            int connectTimeout, ClusterIdentity pinned, String repoDescription) {
        Path pgdata = realDataDir(cluster, pgdataArg);
        ClusterIdentity onDisk = readIdentity(cluster, pgdata);
        if (pinned != null) {
            checkPinned(cluster, pgdata, onDisk, pinned, repoDescription);
        }
        PostmasterPid pid;
        try {
            pid = PostmasterPid.read(pgdata);
        } catch (IOException e) {
            throw new PgproofException(ExitCode.CONNECT, "cluster \"" + cluster + "\": " + e.getMessage(), "wait until the server has started");
        }
        if (pid == null || !pid.processAlive()) {
            throw new PgproofException(ExitCode.CONNECT, "cluster \"" + cluster + "\": no server is running on data directory \"" + pgdata + "\""
                    + (pid == null ? " (no postmaster.pid)" : " (postmaster.pid names process " + pid.pid() + ", which does not exist)"),
                    "start the cluster, e.g. pg_ctlcluster <version> <name> start, or pg_ctl -D " + pgdata + " start");
        }
        Path pidDir = realOrSelf(Path.of(pid.dataDirectory()));
        if (!pidDir.equals(pgdata)) {
            throw new PgproofException(ExitCode.IDENTITY, "cluster \"" + cluster + "\": \"" + pgdata + "/postmaster.pid\" names data directory \""
                    + pid.dataDirectory() + "\"", "the data directory was copied or moved while its server ran; check which server uses it");
        }
        Endpoint fromPid = endpointFromPid(pid);
        Endpoint ep = fromPid;
        boolean overridden = hostOverride != null || portOverride != null;
        if (overridden) {
            int port = fromPid.port();
            if (portOverride != null) {
                try {
                    port = Integer.parseInt(portOverride.trim());
                } catch (NumberFormatException e) {
                    throw new PgproofException(ExitCode.CONFIG, "setting \"port\" must be a number, got \"" + portOverride + "\"", "fix --port or PGPROOF_PORT");
                }
            }
            if (hostOverride == null) {
                ep = new Endpoint(fromPid.socketDirectory(), fromPid.host(), port);
            } else if (hostOverride.startsWith("/")) {
                ep = new Endpoint(hostOverride, null, port);
            } else {
                ep = new Endpoint(null, hostOverride, port);
            }
        }
        Log.info("cluster \"%s\": connecting to %s for data directory \"%s\"", cluster, ep.describe(), pgdata);
        Connection conn;
        try {
            conn = PgConnection.open(ep, user, connectTimeout);
        } catch (SQLException e) {
            throw new PgproofException(ExitCode.CONNECT, "cluster \"" + cluster + "\": could not connect to " + ep.describe() + " as user \"" + user
                    + "\": " + firstLine(e.getMessage()),
                    overridden ? "check --host/--port, or drop them: pgproof finds the server from \"" + pgdata + "/postmaster.pid\" ("
                            + fromPid.describe() + ")"
                            : "run pgproof as the cluster owner (peer authentication), or set --user; check pg_hba.conf for local connections");
        }
        Log.timing("connection open");
        try {
            String dataDirectory = PgConnection.queryString(conn, "SHOW data_directory");
            long sysid = Long.parseLong(PgConnection.queryString(conn, "SELECT system_identifier FROM pg_control_system()"));
            int versionNum = Integer.parseInt(PgConnection.queryString(conn, "SHOW server_version_num"));
            Path serverDir = realOrSelf(Path.of(dataDirectory));
            if (!serverDir.equals(pgdata) || sysid != onDisk.systemIdentifier()) {
                conn.close();
                String fix = overridden
                        ? "remove --host/--port (or host/port in the configuration and PGPROOF_HOST/PGPROOF_PORT): pgproof finds the server of \""
                                + pgdata + "\" from its postmaster.pid (" + fromPid.describe() + ")"
                        : "the server at " + ep.describe() + " is not the one that wrote \"" + pgdata + "/postmaster.pid\"; restart the cluster";
                throw new PgproofException(ExitCode.IDENTITY, "cluster \"" + cluster + "\": the server at " + ep.describe()
                        + " is not the cluster in data directory \"" + pgdata + "\": it runs data directory \"" + dataDirectory
                        + "\" with system identifier " + Long.toUnsignedString(sysid) + ", while \"" + pgdata + "\" has system identifier "
                        + onDisk.systemIdentifierString(), fix);
            }
            if (versionNum / 10000 != onDisk.pgVersion()) {
                conn.close();
                throw new PgproofException(ExitCode.IDENTITY, "cluster \"" + cluster + "\": the server at " + ep.describe() + " is PostgreSQL "
                        + versionNum / 10000 + ", but data directory \"" + pgdata + "\" is PostgreSQL " + onDisk.pgVersion(),
                        "check which server runs on this data directory");
            }
            if (versionNum / 10000 < 15) {
                conn.close();
                throw new PgproofException(ExitCode.CONFIG, "cluster \"" + cluster + "\": PostgreSQL " + versionNum / 10000
                        + " is not supported by this pgproof", "pgproof supports PostgreSQL 15 and later");
            }
            return new LiveCluster(cluster, pgdata, PgControl.read(pgdata), onDisk.pgVersion(), ep, conn, versionNum);
        } catch (SQLException | IOException e) {
            try {
                conn.close();
            } catch (SQLException ignored) {
                // already failing
            }
            throw new PgproofException(ExitCode.CONNECT, "cluster \"" + cluster + "\": identity queries failed on " + ep.describe() + ": "
                    + firstLine(e.getMessage()), "pgproof needs a superuser (or pg_read_all_settings and pg_monitor) to read data_directory and pg_control_system()");
        }
    }

    /** The repository pin must match the data directory's own identity. */
    public static void checkPinned(String cluster, Path pgdata, ClusterIdentity onDisk, ClusterIdentity pinned, String repo) {
        if (onDisk.systemIdentifier() != pinned.systemIdentifier() || onDisk.pgVersion() != pinned.pgVersion()) {
            throw new PgproofException(ExitCode.IDENTITY, "cluster \"" + cluster + "\": data directory \"" + pgdata + "\" has "
                    + onDisk.describe() + ", but repository \"" + repo + "\" pins cluster \"" + cluster + "\" to " + pinned.describe(),
                    "pgdata names another cluster's data directory: fix --pgdata (or pgdata in section [" + cluster
                            + "]); a new cluster (initdb, pg_upgrade) needs its own name: pgproof init --cluster <new name>");
        }
    }

    static Endpoint endpointFromPid(PostmasterPid pid) {
        if (!pid.socketDirectory().isEmpty()) {
            return new Endpoint(pid.socketDirectory(), null, pid.port());
        }
        String listen = pid.listenAddress();
        String host = listen.isEmpty() || listen.equals("*") || listen.equals("0.0.0.0") ? "127.0.0.1" : listen.equals("::") ? "::1" : listen;
        return new Endpoint(null, host, pid.port());
    }

    private static Path realOrSelf(Path p) {
        try {
            return p.toRealPath();
        } catch (IOException e) {
            return p.toAbsolutePath().normalize();
        }
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "unknown error";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    public String name() {
        return name;
    }

    public Path pgdata() {
        return pgdata;
    }

    public PgControl control() {
        return control;
    }

    public int majorVersion() {
        return majorVersion;
    }

    public int serverVersionNum() {
        return serverVersionNum;
    }

    public Endpoint endpoint() {
        return endpoint;
    }

    public Connection connection() {
        return connection;
    }

    public ClusterIdentity identity() {
        return identityOf(control, majorVersion);
    }

    public String query(String sql) throws SQLException {
        return PgConnection.queryString(connection, sql);
    }

    @Override
    public void close() {
        try {
            connection.close();
        } catch (SQLException ignored) {
            // closing
        }
    }

    /** Whether a path exists as a data directory (used by restore's refusal checks). */
    public static boolean looksLikeDataDir(Path p) {
        return Files.exists(p.resolve("PG_VERSION")) || Files.exists(p.resolve("global/pg_control"));
    }
}
