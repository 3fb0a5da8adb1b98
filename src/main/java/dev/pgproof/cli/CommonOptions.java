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

    @Option(names = "--repo", paramLabel = "PATH|URL", description = "repository: a directory, or s3://BUCKET[/PREFIX] ($PGPROOF_REPO)")
    String repo;

    @Option(names = "--pgdata", paramLabel = "DIR", description = "the cluster's data directory ($PGPROOF_PGDATA)")
    String pgdata;

    @Option(names = "--primary-pgdata", paramLabel = "DIR", description = "backup --from-standby: the primary's data directory, used only to switch WAL ($PGPROOF_PRIMARY_PGDATA)")
    String primaryPgdata;

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

    @Option(names = "--jobs", paramLabel = "N", description = "parallel work in backup, restore, verify and prove (default: number of cores) ($PGPROOF_JOBS)")
    String jobs;

    @Option(names = "--archive-timeout", paramLabel = "SECONDS", description = "how long backup and check wait for WAL to be archived (default 60) ($PGPROOF_ARCHIVE_TIMEOUT)")
    String archiveTimeout;

    @Option(names = "--connect-timeout", paramLabel = "SECONDS", description = "PostgreSQL connection timeout (default 10) ($PGPROOF_CONNECT_TIMEOUT)")
    String connectTimeout;

    @Option(names = "--spool-path", paramLabel = "DIR", description = "local spool for archive-push acknowledgements (push-ahead, agent, fast answers) ($PGPROOF_SPOOL_PATH)")
    String spoolPath;

    @Option(names = "--push-ahead", paramLabel = "N", description = "archive-push also pushes up to N more ready WAL files (default 4; needs --spool-path) ($PGPROOF_PUSH_AHEAD)")
    String pushAhead;

    @Option(names = "--prefetch", paramLabel = "N", description = "archive-get fetches up to N following segments ahead into --spool-path (default 8) ($PGPROOF_PREFETCH)")
    String prefetch;

    @Option(names = "--cipher-key-file", paramLabel = "FILE", description = "encrypted repository: file with the key, 64 hex digits, mode 0600 ($PGPROOF_CIPHER_KEY_FILE)")
    String cipherKeyFile;

    @Option(names = "--cipher-pass-file", paramLabel = "FILE", description = "encrypted repository: file with the passphrase, mode 0600 ($PGPROOF_CIPHER_PASS_FILE; or the passphrase itself in $PGPROOF_CIPHER_PASS)")
    String cipherPassFile;

    @Option(names = "--retention-full", paramLabel = "N", description = "expire: keep the newest N full backups ($PGPROOF_RETENTION_FULL)")
    String retentionFull;

    @Option(names = "--retention-diff", paramLabel = "N", description = "expire: keep only the newest N differential backups ($PGPROOF_RETENTION_DIFF)")
    String retentionDiff;

    @Option(names = "--retention-days", paramLabel = "DAYS", description = "expire: keep a recovery window of DAYS days ($PGPROOF_RETENTION_DAYS)")
    String retentionDays;

    @Option(names = "--expire-after-backup", paramLabel = "on|off", description = "run expire after each successful backup when a retention is set (default on) ($PGPROOF_EXPIRE_AFTER_BACKUP)")
    String expireAfterBackup;
    @Option(names = "--s3-endpoint", paramLabel = "URL", description = "S3 endpoint of an S3-compatible store (default: AWS) ($PGPROOF_S3_ENDPOINT)")
    String s3Endpoint;

    @Option(names = "--s3-region", paramLabel = "REGION", description = "S3 region (default: $AWS_REGION, else us-east-1) ($PGPROOF_S3_REGION)")
    String s3Region;

    @Option(names = "--s3-path-style", paramLabel = "BOOL", description = "true for path-style requests, as most S3-compatible stores need (default false) ($PGPROOF_S3_PATH_STYLE)")
    String s3PathStyle;

    @Option(names = "--s3-storage-class", paramLabel = "CLASS", description = "storage class of new objects, e.g. STANDARD_IA ($PGPROOF_S3_STORAGE_CLASS)")
    String s3StorageClass;

    @Option(names = "--s3-sse", paramLabel = "TYPE", description = "server-side encryption: AES256 or aws:kms ($PGPROOF_S3_SSE)")
    String s3Sse;

    @Option(names = "--s3-sse-kms-key-id", paramLabel = "KEY", description = "KMS key id or ARN for --s3-sse aws:kms ($PGPROOF_S3_SSE_KMS_KEY_ID)")
    String s3SseKmsKeyId;

    @Option(names = "--s3-checksum", paramLabel = "MODE", description = "when-supported (default) or when-required: request checksums, for stores that reject the SDK's ($PGPROOF_S3_CHECKSUM)")
    String s3Checksum;

    @Option(names = "--s3-request-timeout", paramLabel = "SECONDS", description = "one S3 request attempt (default 30) ($PGPROOF_S3_REQUEST_TIMEOUT)")
    String s3RequestTimeout;

    @Option(names = "--s3-timeout", paramLabel = "SECONDS", description = "one S3 operation with its retries (default 120) ($PGPROOF_S3_TIMEOUT)")
    String s3Timeout;

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
        put(m, Setting.PRIMARY_PGDATA, primaryPgdata);
        put(m, Setting.HOST, host);
        put(m, Setting.PORT, port);
        put(m, Setting.USER, user);
        put(m, Setting.COMPRESS, compress);
        put(m, Setting.COMPRESS_LEVEL, compressLevel);
        put(m, Setting.JOBS, jobs);
        put(m, Setting.ARCHIVE_TIMEOUT, archiveTimeout);
        put(m, Setting.CONNECT_TIMEOUT, connectTimeout);
        put(m, Setting.SPOOL_PATH, spoolPath);
        put(m, Setting.PUSH_AHEAD, pushAhead);
        put(m, Setting.PREFETCH, prefetch);
        put(m, Setting.CIPHER_KEY_FILE, cipherKeyFile);
        put(m, Setting.CIPHER_PASS_FILE, cipherPassFile);
        put(m, Setting.RETENTION_FULL, retentionFull);
        put(m, Setting.RETENTION_DAYS, retentionDays);
        put(m, Setting.RETENTION_DIFF, retentionDiff);
        put(m, Setting.EXPIRE_AFTER_BACKUP, expireAfterBackup);
        put(m, Setting.S3_ENDPOINT, s3Endpoint);
        put(m, Setting.S3_REGION, s3Region);
        put(m, Setting.S3_PATH_STYLE, s3PathStyle);
        put(m, Setting.S3_STORAGE_CLASS, s3StorageClass);
        put(m, Setting.S3_SSE, s3Sse);
        put(m, Setting.S3_SSE_KMS_KEY_ID, s3SseKmsKeyId);
        put(m, Setting.S3_CHECKSUM, s3Checksum);
        put(m, Setting.S3_REQUEST_TIMEOUT, s3RequestTimeout);
        put(m, Setting.S3_TIMEOUT, s3Timeout);
        return Settings.load(config, m, System.getenv());
    }

    private static void put(Map<Setting, String> m, Setting s, String v) {
        if (v != null) {
            m.put(s, v);
        }
    }
}
