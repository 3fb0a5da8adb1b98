package dev.pgproof.config;

/**
 * Every setting pgproof reads, declared once. Each can be given as a command-line flag
 * (--name), as an environment variable (PGPROOF_NAME, dashes as underscores), in the cluster's
 * section of the configuration file, or in its [global] section, in that order of precedence.
 */
public enum Setting {
    CLUSTER("cluster", null, "name of the cluster (a section of the configuration file and a directory in the repository)"),
    REPO("repo", null, "repository: a directory (local or NFS-mounted) or s3://BUCKET[/PREFIX]; holds several clusters"),
    PGDATA("pgdata", null, "data directory of the cluster; pgproof finds the port and socket in its postmaster.pid"),
    RECOVERY_IDENTITY("recovery-identity", null, "archive-get: the system identifier being recovered, when restoring a backup made before pg_upgrade (restore sets it)"),
    PRIMARY_PGDATA("primary-pgdata", null, "backup --from-standby: data directory of the primary on this host, used only to switch WAL at the end"),
    HOST("host", null, "override: host name or unix socket directory of the server (the identity check still applies)"),
    PORT("port", null, "override: port of the server (the identity check still applies)"),
    USER("user", null, "database user to connect as (default: the OS user, i.e. the cluster owner)"),
    COMPRESS("compress", "zstd", "compression of stored files: zstd, lz4, gzip or none"),
    COMPRESS_LEVEL("compress-level", null, "compression level (default: zstd 3, gzip 6; lz4 ignores it)"),
    JOBS("jobs", null, "parallel work in backup, restore, verify and prove (default: the number of cores)"),
    ARCHIVE_TIMEOUT("archive-timeout", "60", "seconds backup and check wait for WAL to reach the repository"),
    CONNECT_TIMEOUT("connect-timeout", "10", "seconds to wait when connecting to PostgreSQL"),
    SPOOL_PATH("spool-path", null, "local directory for archive-push acknowledgements (push-ahead, agent, the launcher's fast answer); owned by the cluster owner"),
    PUSH_AHEAD("push-ahead", "4", "archive-push: also push up to N more WAL files PostgreSQL marked ready, in parallel (needs spool-path; 0 = off)"),
    PREFETCH("prefetch", "8", "archive-get: fetch up to N following WAL segments in parallel into spool-path while recovery replays (0 = off)"),
    CIPHER_KEY_FILE("cipher-key-file", null, "encryption: file holding the repository key, 64 hex digits (readable only by its owner)"),
    CIPHER_PASS_FILE("cipher-pass-file", null, "encryption: file holding the repository passphrase (readable only by its owner); or $PGPROOF_CIPHER_PASS"),
    RETENTION_FULL("retention-full", null, "expire: keep the newest N full backups and the backups built on them (with retention-days: keep what either keeps)"),
    RETENTION_DIFF("retention-diff", null, "expire: keep only the newest N differential backups (and the incrementals built on them)"),
    RETENTION_DAYS("retention-days", null, "expire: keep a recovery window of N days (every backup that ended within it, and the newest before it)"),
    EXPIRE_AFTER_BACKUP("expire-after-backup", "on", "run expire after each successful backup when a retention is set: on or off"),
    PROVE_DIR("prove-dir", null, "directory prove restores its throwaway copies under (default: /var/tmp, else the system temp directory)"),
    PROVE_TIMEOUT("prove-timeout", "3600", "seconds prove waits for the throwaway server to recover and promote, and at most for each of its tools and check queries"),

    BACKUP_MAX_AGE("backup-max-age", "26h", "clusters: a newest complete backup older than this is a problem (e.g. 26h, 7d)"),
    PROOF_MAX_AGE("proof-max-age", "8d", "clusters: a newest proof older than this is a problem (e.g. 8d)"),
    S3_ENDPOINT("s3-endpoint", null, "S3 endpoint URL of an S3-compatible store, e.g. https://minio.example:9000 (default: AWS)"),
    S3_REGION("s3-region", null, "S3 region (default: $AWS_REGION, else us-east-1)"),
    S3_PATH_STYLE("s3-path-style", "false", "true: path-style requests (endpoint/bucket/key), needed by most S3-compatible stores"),
    S3_STORAGE_CLASS("s3-storage-class", null, "storage class of stored objects, e.g. STANDARD_IA (default: the bucket's)"),
    S3_SSE("s3-sse", null, "server-side encryption: AES256 (SSE-S3) or aws:kms (SSE-KMS)"),
    S3_SSE_KMS_KEY_ID("s3-sse-kms-key-id", null, "KMS key id or ARN for s3-sse = aws:kms (default: the account's aws/s3 key)"),
    S3_CHECKSUM("s3-checksum", "when-supported", "request checksums: when-supported (SDK default, CRC32) or when-required (for stores that reject them)"),
    S3_REQUEST_TIMEOUT("s3-request-timeout", "30", "seconds one S3 request attempt may take (also the connect and read timeout)"),
    S3_TIMEOUT("s3-timeout", "120", "seconds one S3 operation may take with all its retries; then the command fails"),
    S3_ACCESS_KEY("s3-access-key", null, "S3 access key id (configuration file only; default: the AWS SDK's credential chain)", true),
    S3_SECRET_KEY("s3-secret-key", null, "S3 secret access key (configuration file only, which must then be mode 0600)", true);

    public final String key;
    public final String defaultValue;
    public final String description;
    /** A secret: read only from the configuration file, never from a flag or the environment. */
    public final boolean fileOnly;

    Setting(String key, String defaultValue, String description) {
        this(key, defaultValue, description, false);
    }

    Setting(String key, String defaultValue, String description, boolean fileOnly) {
        this.key = key;
        this.defaultValue = defaultValue;
        this.description = description;
        this.fileOnly = fileOnly;
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
