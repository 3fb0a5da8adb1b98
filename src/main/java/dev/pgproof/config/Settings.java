package dev.pgproof.config;

import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Resolved settings for one command. Precedence, highest first: command-line flag, PGPROOF_*
 * environment variable, the cluster's section of the configuration file, its [global] section,
 * the built-in default.
 */
public final class Settings {
    private static final Pattern CLUSTER_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,62}");
    private final Map<Setting, String> flags;
    private final Map<String, String> env;
    private final ConfigFile config;

    public Settings(Map<Setting, String> flags, Map<String, String> env, ConfigFile config) {
        for (Setting s : Setting.values()) {
            if (s.fileOnly && (flags.get(s) != null || env.get(s.envName()) != null)) {
                throw new PgproofException(ExitCode.CONFIG, "setting \"" + s.key + "\" is a secret and is read only from the configuration file, "
                        + "not from --" + s.key + " or " + s.envName(),
                        "put it in the configuration file (mode 0600, owned by the user pgproof runs as) and pass --config FILE",
                        "or leave the S3 keys unset to use the AWS SDK's credential chain (AWS_ACCESS_KEY_ID, ~/.aws/credentials, instance roles)");
            }
        }
        this.flags = new HashMap<>(flags);
        this.env = env;
        this.config = config;
    }

    /** Where a setting's value comes from. */
    public enum Source { FLAG, ENV, FILE, DEFAULT }

    public Source source(Setting s) {
        if (flags.get(s) != null) {
            return Source.FLAG;
        }
        String v = env.get(s.envName());
        if (v != null && !v.isEmpty()) {
            return Source.ENV;
        }
        if (s != Setting.CLUSTER) {
            String cluster = get(Setting.CLUSTER);
            if (cluster != null && config.get(cluster, s.key) != null || config.get("global", s.key) != null) {
                return Source.FILE;
            }
        }
        return Source.DEFAULT;
    }

    /** Loads the configuration file named by --config, PGPROOF_CONFIG or the default path. */
    public static Settings load(String configFlag, Map<Setting, String> flags, Map<String, String> env) {
        ConfigFile file;
        if (configFlag != null) {
            file = ConfigFile.load(Path.of(configFlag), true);
        } else if (env.get("PGPROOF_CONFIG") != null && !env.get("PGPROOF_CONFIG").isEmpty()) {
            file = ConfigFile.load(Path.of(env.get("PGPROOF_CONFIG")), true);
        } else {
            file = ConfigFile.load(Path.of(ConfigFile.DEFAULT_PATH), false);
        }
        return new Settings(flags, env, file);
    }

    public ConfigFile configFile() {
        return config;
    }

    /** The value of a setting, or null. */
    public String get(Setting s) {
        String v = flags.get(s);
        if (v != null) {
            return v;
        }
        v = env.get(s.envName());
        if (v != null && !v.isEmpty()) {
            return v;
        }
        if (s != Setting.CLUSTER) {
            String cluster = get(Setting.CLUSTER);
            if (cluster != null) {
                v = config.get(cluster, s.key);
                if (v != null) {
                    return v;
                }
            }
            v = config.get("global", s.key);
            if (v != null) {
                return v;
            }
        }
        return s.defaultValue;
    }

    public String require(Setting s) {
        String v = get(s);
        if (v == null || v.isEmpty()) {
            String where = config.path() == null ? "" : " or in \"" + config.path() + "\"";
            throw new PgproofException(ExitCode.CONFIG, "setting \"" + s.key + "\" is required and not set",
                    "give --" + s.key + ", set " + s.envName() + where
                            + (s == Setting.CLUSTER ? "" : " (section [" + (get(Setting.CLUSTER) == null ? "global" : get(Setting.CLUSTER)) + "])"));
        }
        return v;
    }

    public String cluster() {
        String c = require(Setting.CLUSTER);
        if (!CLUSTER_NAME.matcher(c).matches()) {
            throw new PgproofException(ExitCode.USAGE, "invalid cluster name \"" + c + "\"",
                    "a cluster name has 1 to 63 characters: letters, digits, '_', '.' and '-', starting with a letter or digit");
        }
        return c;
    }

    /** Whether the repository is an object store URL (s3://bucket/prefix) rather than a directory. */
    public boolean repoIsS3() {
        String r = get(Setting.REPO);
        return r != null && r.startsWith("s3://");
    }

    public boolean boolValue(Setting s) {
        String v = get(s);
        if (v == null || v.isEmpty()) {
            return false;
        }
        switch (v.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "true": case "on": case "yes": case "1":
                return true;
            case "false": case "off": case "no": case "0":
                return false;
            default:
                throw new PgproofException(ExitCode.CONFIG, "setting \"" + s.key + "\" must be true or false, got \"" + v + "\"",
                        "fix --" + s.key + ", " + s.envName() + " or the configuration file");
        }
    }

    public Path path(Setting s) {
        return Path.of(require(s)).toAbsolutePath().normalize();
    }

    public int intValue(Setting s, int fallback) {
        String v = get(s);
        if (v == null || v.isEmpty()) {
            return fallback;
        }
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new PgproofException(ExitCode.CONFIG, "setting \"" + s.key + "\" must be an integer, got \"" + v + "\"",
                    "fix --" + s.key + ", " + s.envName() + " or the configuration file");
        }
    }

    /** A duration setting ("36h", "7d", "90m", "600s"; a bare number is seconds). */
    public java.time.Duration duration(Setting s) {
        String v = require(s);
        java.time.Duration d = dev.pgproof.util.Durations.parse(v);
        if (d == null || d.isZero()) {
            throw new PgproofException(ExitCode.CONFIG, "setting \"" + s.key + "\" must be a duration such as 36h or 7d, got \"" + v + "\"",
                    "fix --" + s.key + ", " + s.envName() + " or the configuration file; units: s, m, h, d, w");
        }
        return d;
    }

    /**
     * The settings of another cluster (a section of the configuration file), keeping this command's
     * flags and environment except the cluster's name and data directory, which belong to one cluster.
     */
    public Settings forCluster(String cluster) {
        Map<Setting, String> f = new HashMap<>(flags);
        f.put(Setting.CLUSTER, cluster);
        f.remove(Setting.PGDATA);
        Map<String, String> e = new HashMap<>(env);
        e.remove(Setting.PGDATA.envName());
        e.remove(Setting.CLUSTER.envName());
        return new Settings(f, e, config);
    }

    public int jobs() {
        int j = intValue(Setting.JOBS, Runtime.getRuntime().availableProcessors());
        if (j < 1 || j > 256) {
            throw new PgproofException(ExitCode.CONFIG, "setting \"jobs\" must be between 1 and 256, got " + j,
                    "fix --jobs, PGPROOF_JOBS or the configuration file");
        }
        return j;
    }
}
