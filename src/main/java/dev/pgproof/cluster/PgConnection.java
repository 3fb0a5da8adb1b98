package dev.pgproof.cluster;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

/** Opens pgjdbc connections over a unix socket (junixsocket) or TCP. */
public final class PgConnection {
    private PgConnection() {}

    /**
     * Loads and initialises pgjdbc's and junixsocket's classes (and junixsocket's native library),
     * so that a start-up thread can do this while the command line is parsed. Class initialisation
     * is thread-safe; a failure here is ignored (the real connection reports it).
     */
    public static void preload() {
        for (String c : new String[] {"org.postgresql.Driver", "org.postgresql.core.v3.ConnectionFactoryImpl",
                "org.postgresql.jdbc.PgConnection", "org.postgresql.jdbc.PgStatement", "org.postgresql.jdbc.PgResultSet",
                "org.newsclub.net.unix.AFUNIXSocketFactory$FactoryArg", "org.newsclub.net.unix.AFUNIXSocket"}) {
            try {
                Class.forName(c, true, PgConnection.class.getClassLoader());
            } catch (Throwable ignored) {
                // only a head start; connecting reports any real problem
            }
        }
    }

    public static Connection open(Endpoint ep, String user, int connectTimeoutSeconds) throws SQLException {
        return open(ep, user, connectTimeoutSeconds, "postgres");
    }

    /** Connects to one database (its name may hold any character; it is URL-encoded for pgjdbc). */
    public static Connection open(Endpoint ep, String user, int connectTimeoutSeconds, String database) throws SQLException {
        Properties p = properties(ep, user, "pgproof", connectTimeoutSeconds);
        p.setProperty("socketTimeout", "0");
        p.setProperty("assumeMinServerVersion", "10");
        return DriverManager.getConnection(url(ep, database), p);
    }

    /**
     * A physical replication connection (replication=true, simple query protocol) to the same
     * endpoint; {@code socketTimeoutSeconds} bounds every read of a message once it has begun.
     */
    public static Connection openReplication(Endpoint ep, String user, int connectTimeoutSeconds, int socketTimeoutSeconds) throws SQLException {
        Properties p = properties(ep, user, "pgproof_wal_receive", connectTimeoutSeconds);
        p.setProperty("loginTimeout", Integer.toString(connectTimeoutSeconds));
        p.setProperty("socketTimeout", Integer.toString(socketTimeoutSeconds));
        p.setProperty("replication", "true");
        p.setProperty("preferQueryMode", "simple");
        p.setProperty("assumeMinServerVersion", "9.4");
        return DriverManager.getConnection(url(ep, "postgres"), p);
    }

    /** What every connection sets: user, application name, connect timeout, keep-alives, and the unix socket or TLS preference. */
    private static Properties properties(Endpoint ep, String user, String applicationName, int connectTimeoutSeconds) {
        Properties p = new Properties();
        p.setProperty("user", user);
        p.setProperty("ApplicationName", applicationName);
        p.setProperty("connectTimeout", Integer.toString(connectTimeoutSeconds));
        p.setProperty("tcpKeepAlive", "true");
        if (ep.isSocket()) {
            p.setProperty("socketFactory", "org.newsclub.net.unix.AFUNIXSocketFactory$FactoryArg");
            p.setProperty("socketFactoryArg", ep.socketDirectory() + "/.s.PGSQL." + ep.port());
            p.setProperty("sslmode", "disable");
        } else {
            p.setProperty("sslmode", "prefer");
        }
        return p;
    }

    /** The JDBC URL; for a unix socket the host is a placeholder (the socket factory connects). */
    private static String url(Endpoint ep, String database) {
        String host = ep.isSocket() ? "localhost" : ep.host().contains(":") ? "[" + ep.host() + "]" : ep.host();
        return "jdbc:postgresql://" + host + ":" + ep.port() + "/"
                + java.net.URLEncoder.encode(database, java.nio.charset.StandardCharsets.UTF_8).replace("+", "%20");
    }

    public static String queryString(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            return rs.next() ? rs.getString(1) : null;
        }
    }
}
