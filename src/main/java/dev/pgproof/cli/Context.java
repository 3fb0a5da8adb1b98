package dev.pgproof.cli;

import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.crypto.Encryption;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.repo.ClusterInfo;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.PosixStorage;
import dev.pgproof.storage.S3Options;
import dev.pgproof.storage.S3Storage;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/** What every command resolves first: settings, the repository and the cluster's place in it. */
final class Context {
    final Settings settings;

    Context(Settings settings) {
        this.settings = settings;
    }

    /**
     * Opens the repository: a directory, which must exist (only init creates it: a missing mount
     * must not be written around), or an S3 bucket, which must exist (pgproof never creates buckets).
     */
    Storage storage() {
        if (settings.repoIsS3()) {
            return Encryption.open(s3Storage(), secret());
        }
        return storageAt(settings.path(Setting.REPO));
    }

    /** Opens a repository root that must exist, with this context's encryption secret. */
    Storage storageAt(Path repo) {
        if (!Files.isDirectory(repo)) {
            throw new PgproofException(ExitCode.REPOSITORY, "repository \"" + repo + "\" does not exist",
                    "check --repo (or PGPROOF_REPO, or repo in the configuration file) and that the file system is mounted",
                    "a new repository is created by: pgproof init --cluster <name> --repo " + repo + " --pgdata <data directory>");
        }
        return Encryption.open(posix(repo), secret());
    }

    /** A local repository; owner-only modes (0600 files, 0700 directories) when it is encrypted. */
    static Storage posix(Path repo) {
        Storage raw = new PosixStorage(repo);
        try {
            return Encryption.isEncrypted(raw) ? new PosixStorage(repo, true) : raw;
        } catch (java.io.IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not read repository \"" + repo + "\": " + e.getMessage(),
                    "check that it is mounted and readable by this user");
        }
    }

    /** The acknowledgement spool of this cluster, or null when spool-path is not set. */
    dev.pgproof.wal.AckSpool spool() {
        Path p = spoolPath();
        return p == null ? null : new dev.pgproof.wal.AckSpool(p, settings.cluster());
    }

    /** spool-path, or null when not set. */
    Path spoolPath() {
        String p = settings.get(Setting.SPOOL_PATH);
        return p == null || p.isBlank() ? null : Path.of(p).toAbsolutePath();
    }

    /** The repository key or passphrase source (never the secret itself on the command line). */
    Encryption.Secret secret() {
        String key = settings.get(Setting.CIPHER_KEY_FILE);
        String pass = settings.get(Setting.CIPHER_PASS_FILE);
        return new Encryption.Secret(key == null ? null : Path.of(key).toAbsolutePath(), pass == null ? null : Path.of(pass).toAbsolutePath(),
                key == null && pass == null ? System.getenv(Encryption.PASS_ENV) : null);
    }

    /** The repository as given by the user, for messages and commands: a directory or s3://bucket/prefix. */
    String repoName() {
        return settings.repoIsS3() ? s3Options().url() : settings.path(Setting.REPO).toString();
    }

    /** S3 settings for the storage layer (which knows nothing of settings). */
    S3Options s3Options() {
        String url = settings.require(Setting.REPO);
        String[] bp = S3Options.parseUrl(url);
        if (bp == null || bp[0].isEmpty()) {
            throw new PgproofException(ExitCode.CONFIG, "repository \"" + url + "\" is not a valid S3 URL", "write it as s3://BUCKET or s3://BUCKET/PREFIX");
        }
        String region = settings.get(Setting.S3_REGION);
        if (region == null || region.isEmpty()) {
            region = System.getenv("AWS_REGION");
        }
        if (region == null || region.isEmpty()) {
            region = "us-east-1";
        }
        String checksum = settings.get(Setting.S3_CHECKSUM);
        if (!checksum.equals("when-supported") && !checksum.equals("when-required")) {
            throw new PgproofException(ExitCode.CONFIG, "setting \"s3-checksum\" must be when-supported or when-required, got \"" + checksum + "\"",
                    "fix --s3-checksum, PGPROOF_S3_CHECKSUM or the configuration file");
        }
        String sse = settings.get(Setting.S3_SSE);
        if (sse != null && !sse.equals("AES256") && !sse.equals("aws:kms")) {
            throw new PgproofException(ExitCode.CONFIG, "setting \"s3-sse\" must be AES256 or aws:kms, got \"" + sse + "\"",
                    "fix --s3-sse, PGPROOF_S3_SSE or the configuration file");
        }
        if (settings.get(Setting.S3_SSE_KMS_KEY_ID) != null && !"aws:kms".equals(sse)) {
            throw new PgproofException(ExitCode.CONFIG, "setting \"s3-sse-kms-key-id\" is set but s3-sse is not aws:kms", "set s3-sse = aws:kms");
        }
        String access = settings.get(Setting.S3_ACCESS_KEY);
        String secret = settings.get(Setting.S3_SECRET_KEY);
        if ((access == null) != (secret == null)) {
            throw new PgproofException(ExitCode.CONFIG, "only one of s3-access-key and s3-secret-key is set in \"" + settings.configFile().path() + "\"",
                    "set both, or neither to use the AWS SDK's credential chain (environment, ~/.aws/credentials, instance or container role)");
        }
        String endpoint = settings.get(Setting.S3_ENDPOINT);
        if (endpoint != null && !endpoint.matches("https?://[^/\\s]+/?")) {
            throw new PgproofException(ExitCode.CONFIG, "setting \"s3-endpoint\" must be a URL like https://host[:port], got \"" + endpoint + "\"",
                    "fix --s3-endpoint, PGPROOF_S3_ENDPOINT or the configuration file");
        }
        int attempt = positive(Setting.S3_REQUEST_TIMEOUT);
        int total = positive(Setting.S3_TIMEOUT);
        return new S3Options(bp[0], bp[1], endpoint, region, settings.boolValue(Setting.S3_PATH_STYLE), settings.get(Setting.S3_STORAGE_CLASS),
                sse, settings.get(Setting.S3_SSE_KMS_KEY_ID), checksum.equals("when-required"), access, secret, Duration.ofSeconds(attempt),
                Duration.ofSeconds(Math.max(total, attempt)), S3Options.DEFAULT_PART_SIZE, S3Options.DEFAULT_UPLOAD_THREADS);
    }

    private int positive(Setting s) {
        int v = settings.intValue(s, Integer.parseInt(s.defaultValue));
        if (v < 1) {
            throw new PgproofException(ExitCode.CONFIG, "setting \"" + s.key + "\" must be at least 1 second, got " + v,
                    "fix --" + s.key + ", " + s.envName() + " or the configuration file");
        }
        return v;
    }

    /** The S3 repository, bucket checked, without encryption (init decides that). */
    Storage s3Raw() {
        return s3Storage();
    }

    private Storage s3Storage() {
        S3Options o = s3Options();
        S3Storage st = new S3Storage(o);
        try {
            st.checkBucket();
        } catch (S3Storage.BucketException e) {
            st.close();
            String where = o.endpoint() != null ? "--s3-endpoint " + o.endpoint() : "AWS region " + o.region() + " (--s3-region)";
            switch (e.problem()) {
                case NO_BUCKET:
                    throw new PgproofException(ExitCode.REPOSITORY, "repository \"" + o.url() + "\": " + e.getMessage(),
                            "pgproof never creates buckets: create it (e.g. aws s3 mb s3://" + o.bucket() + "), or fix --repo and " + where);
                case DENIED:
                    throw new PgproofException(ExitCode.REPOSITORY, "repository \"" + o.url() + "\": " + e.getMessage(),
                            "check the credentials: s3-access-key and s3-secret-key in the configuration file, or the AWS SDK's chain "
                                    + "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance or container role)",
                            "they need s3:ListBucket on " + o.bucket() + " and s3:GetObject, s3:PutObject, s3:DeleteObject on its objects (see the README)");
                case UNREACHABLE:
                    throw new PgproofException(ExitCode.REPOSITORY, "repository \"" + o.url() + "\": " + e.getMessage(),
                            "check " + where + ", that the store is running and reachable from this host",
                            "the limits are s3-request-timeout (per request) and s3-timeout (with retries)");
                default:
                    throw new PgproofException(ExitCode.REPOSITORY, "repository \"" + o.url() + "\": " + e.getMessage(),
                            "check --repo, " + where + " and s3-path-style (most S3-compatible stores need s3-path-style = true)");
            }
        }
        return st;
    }

    /**
     * Connects to the cluster of --pgdata (its postmaster.pid, or the host/port overrides) with the
     * identity check; with a pin, also against the repository's pin, and says it is confirmed.
     */
    dev.pgproof.cluster.LiveCluster connect(ClusterIdentity pinned, String repo) {
        String cluster = settings.cluster();
        dev.pgproof.cluster.LiveCluster lc = dev.pgproof.cluster.LiveCluster.connect(cluster, settings.path(Setting.PGDATA),
                settings.get(Setting.HOST), settings.get(Setting.PORT), InitCommand.user(settings), settings.intValue(Setting.CONNECT_TIMEOUT, 10),
                pinned, repo);
        if (pinned != null) {
            dev.pgproof.util.Log.info("cluster \"%s\": identity confirmed (%s, data directory \"%s\")", cluster, pinned.describe(), lc.pgdata());
        }
        return lc;
    }

    RepoLayout layout() {
        return new RepoLayout(settings.cluster());
    }

    ClusterIdentity pinned(Storage storage) {
        return ClusterInfo.read(storage, layout());
    }

    /** The restore_command / archive_command prefix: the launcher's absolute path, or java -jar. */
    static String launcher() {
        String l = System.getenv("PGPROOF_LAUNCHER");
        if (l != null && !l.isEmpty()) {
            return l;
        }
        try {
            Path jar = Path.of(dev.pgproof.Main.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            String java = ProcessHandle.current().info().command().orElse("java");
            return java + " -jar " + jar;
        } catch (Exception e) {
            return "pgproof";
        }
    }

    /** The repository and config options to repeat in archive_command and restore_command. */
    String commandOptions() {
        StringBuilder sb = new StringBuilder(" --cluster ").append(settings.cluster());
        sb.append(" --repo ").append(shellQuote(repoName()));
        for (Setting file : new Setting[] {Setting.SPOOL_PATH, Setting.CIPHER_KEY_FILE, Setting.CIPHER_PASS_FILE}) {
            String v = settings.get(file);
            if (v != null) {
                sb.append(" --").append(file.key).append(' ').append(shellQuote(Path.of(v).toAbsolutePath().toString()));
            }
        }
        if (settings.configFile().path() != null && !settings.configFile().path().toString().equals(dev.pgproof.config.ConfigFile.DEFAULT_PATH)) {
            sb.append(" --config ").append(shellQuote(settings.configFile().path().toString()));
        }
        if (settings.repoIsS3()) {
            // S3 settings given on this command line or in its environment: repeated, since PostgreSQL's archiver
            // has neither. Settings from the configuration file come through --config; keys never appear here.
            for (Setting st : Setting.values()) {
                if (st.key.startsWith("s3-") && !st.fileOnly) {
                    Settings.Source src = settings.source(st);
                    if (src == Settings.Source.FLAG || src == Settings.Source.ENV) {
                        sb.append(" --").append(st.key).append(' ').append(shellQuote(settings.get(st)));
                    }
                }
            }
        }
        return sb.toString();
    }

    static String shellQuote(String s) {
        if (s.matches("[A-Za-z0-9_./:=@%+-]+")) {
            return s;
        }
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("$", "\\$").replace("`", "\\`") + "\"";
    }
}
