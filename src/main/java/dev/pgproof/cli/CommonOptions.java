package dev.pgproof.cli;

import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import java.util.EnumMap;
import java.util.Map;
import picocli.CommandLine.Option;

/** Options every command accepts; each also has a PGPROOF_* variable and a configuration file key. */
final class CommonOptions {
    @Option(names = "--config", paramLabel = "FILE", description = "configuration file (default: $PGPROOF_CONFIG, else /etc/pgproof/pgproof.conf if it exists)")
    String config;

    @Option(names = "--cluster", paramLabel = "NAME", description = "cluster name: a section of the configuration file and a directory in the repository ($PGPROOF_CLUSTER)")
    String cluster;

    @Option(names = "--repo", paramLabel = "PATH", description = "repository root directory ($PGPROOF_REPO)")
    String repo;

    @Option(names = "--pgdata", paramLabel = "DIR", description = "the cluster's data directory ($PGPROOF_PGDATA)")
    String pgdata;

    @Option(names = "--host", paramLabel = "HOST", description = "override: host name or socket directory; the identity check still applies ($PGPROOF_HOST)")
    String host;

    @Option(names = "--port", paramLabel = "PORT", description = "override: server port; the identity check still applies ($PGPROOF_PORT)")
    String port;

    @Option(names = "--user", paramLabel = "USER", description = "database user (default: the OS user, the cluster owner) ($PGPROOF_USER)")
    String user;

    @Option(names = "--compress", paramLabel = "TYPE", description = "zstd (default), lz4, gzip or none ($PGPROOF_COMPRESS)")
    String compress;

    @Option(names = "--compress-level", paramLabel = "N", description = "compression level (zstd default 3, gzip 6) ($PGPROOF_COMPRESS_LEVEL)")
    String compressLevel;

    @Option(names = "--jobs", paramLabel = "N", description = "parallel copies for backup and restore (default: number of cores) ($PGPROOF_JOBS)")
    String jobs;

    @Option(names = "--archive-timeout", paramLabel = "SECONDS", description = "how long backup and check wait for WAL to be archived (default 60) ($PGPROOF_ARCHIVE_TIMEOUT)")
    String archiveTimeout;

    @Option(names = "--connect-timeout", paramLabel = "SECONDS", description = "PostgreSQL connection timeout (default 10) ($PGPROOF_CONNECT_TIMEOUT)")
    String connectTimeout;

    Settings settings() {
        return settings(Map.of());
    }

    /** The settings, with a command's own setting flags (e.g. clusters' --backup-max-age) added. */
    Settings settings(Map<Setting, String> extra) {
        Map<Setting, String> m = new EnumMap<>(Setting.class);
        extra.forEach((k, v) -> put(m, k, v));
        put(m, Setting.CLUSTER, cluster);
        put(m, Setting.REPO, repo);
        put(m, Setting.PGDATA, pgdata);
        put(m, Setting.HOST, host);
        put(m, Setting.PORT, port);
        put(m, Setting.USER, user);
        put(m, Setting.COMPRESS, compress);
        put(m, Setting.COMPRESS_LEVEL, compressLevel);
        put(m, Setting.JOBS, jobs);
        put(m, Setting.ARCHIVE_TIMEOUT, archiveTimeout);
        put(m, Setting.CONNECT_TIMEOUT, connectTimeout);
        return Settings.load(config, m, System.getenv());
    }

    private static void put(Map<Setting, String> m, Setting s, String v) {
        if (v != null) {
            m.put(s, v);
        }
    }
}
