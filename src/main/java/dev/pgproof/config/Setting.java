package dev.pgproof.config;

/**
 * Every setting pgproof reads, declared once. Each can be given as a command-line flag
 * (--name), as an environment variable (PGPROOF_NAME, dashes as underscores), in the cluster's
 * section of the configuration file, or in its [global] section, in that order of precedence.
 */
public enum Setting {
    CLUSTER("cluster", null, "name of the cluster (a section of the configuration file and a directory in the repository)"),
    REPO("repo", null, "repository root directory (local or NFS-mounted); holds several clusters"),
    PGDATA("pgdata", null, "data directory of the cluster; pgproof finds the port and socket in its postmaster.pid"),
    RECOVERY_IDENTITY("recovery-identity", null, "archive-get: the system identifier being recovered, when restoring a backup made before pg_upgrade (restore sets it)"),
    PRIMARY_PGDATA("primary-pgdata", null, "backup --from-standby: data directory of the primary on this host, used only to switch WAL at the end"),
    HOST("host", null, "override: host name or unix socket directory of the server (the identity check still applies)"),
    PORT("port", null, "override: port of the server (the identity check still applies)"),
    USER("user", null, "database user to connect as (default: the OS user, i.e. the cluster owner)"),
    COMPRESS("compress", "zstd", "compression of stored files: zstd, lz4, gzip or none"),
    COMPRESS_LEVEL("compress-level", null, "compression level (default: zstd 3, gzip 6; lz4 ignores it)"),
    JOBS("jobs", null, "parallel file copies for backup and restore (default: the number of cores)"),
    ARCHIVE_TIMEOUT("archive-timeout", "60", "seconds backup and check wait for WAL to reach the repository"),
    CONNECT_TIMEOUT("connect-timeout", "10", "seconds to wait when connecting to PostgreSQL"),
    SPOOL_PATH("spool-path", null, "local directory for archive-push acknowledgements (push-ahead, agent, the launcher's fast answer); owned by the cluster owner"),
    PUSH_AHEAD("push-ahead", "4", "archive-push: also push up to N more WAL files PostgreSQL marked ready, in parallel (needs spool-path; 0 = off)"),
    PREFETCH("prefetch", "8", "archive-get: fetch up to N following WAL segments in parallel into spool-path while recovery replays (0 = off)"),
    CIPHER_KEY_FILE("cipher-key-file", null, "encryption: file holding the repository key, 64 hex digits (readable only by its owner)"),
    CIPHER_PASS_FILE("cipher-pass-file", null, "encryption: file holding the repository passphrase (readable only by its owner); or $PGPROOF_CIPHER_PASS"),
    RETENTION_FULL("retention-full", null, "expire: keep the newest N full backups (with retention-days: keep what either keeps)"),
    RETENTION_DAYS("retention-days", null, "expire: keep a recovery window of N days (every backup that ended within it, and the newest before it)"),
    EXPIRE_AFTER_BACKUP("expire-after-backup", "on", "run expire after each successful backup when a retention is set: on or off"),
    BACKUP_MAX_AGE("backup-max-age", "26h", "clusters: a newest complete backup older than this is a problem (e.g. 26h, 7d)"),
    PROOF_MAX_AGE("proof-max-age", "8d", "clusters: a newest proof older than this is a problem (e.g. 8d)");

    public final String key;
    public final String defaultValue;
    public final String description;

    Setting(String key, String defaultValue, String description) {
        this.key = key;
        this.defaultValue = defaultValue;
        this.description = description;
    }

    public String envName() {
        return "PGPROOF_" + key.toUpperCase(java.util.Locale.ROOT).replace('-', '_');
    }

    public static Setting byKey(String key) {
        for (Setting s : values()) {
            if (s.key.equals(key)) {
                return s;
            }
        }
        return null;
    }
}
