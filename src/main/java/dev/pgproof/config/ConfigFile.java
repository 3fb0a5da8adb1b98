package dev.pgproof.config;

import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The configuration file: INI-style, a [global] section and one section per cluster.
 * Lines are "key = value"; '#' and ';' start comments; keys are the names of {@link Setting}.
 */
public final class ConfigFile {
    public static final String DEFAULT_PATH = "/etc/pgproof/pgproof.conf";
    private final Path path;
    private final Map<String, Map<String, String>> sections;

    private ConfigFile(Path path, Map<String, Map<String, String>> sections) {
        this.path = path;
        this.sections = sections;
    }

    public static ConfigFile empty() {
        return new ConfigFile(null, Map.of());
    }

    /** Reads a file; a missing file is an error only when {@code required}. */
    public static ConfigFile load(Path path, boolean required) {
        String text;
        try {
            text = Files.readString(path, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            if (!required) {
                return empty();
            }
            throw new PgproofException(ExitCode.CONFIG, "configuration file \"" + path + "\" does not exist",
                    "give an existing file with --config or PGPROOF_CONFIG, or leave both unset to use "
                            + DEFAULT_PATH + " when it exists");
        } catch (IOException e) {
            throw new PgproofException(ExitCode.CONFIG, "could not read configuration file \"" + path + "\": " + e.getMessage(),
                    "check that the file is readable by this OS user");
        }
        ConfigFile f = parse(path, text);
        f.checkSecretsPrivate();
        return f;
    }

    /** A file that holds S3 keys must be readable by its owner only. */
    private void checkSecretsPrivate() {
        boolean secrets = false;
        for (Map<String, String> sec : sections.values()) {
            for (String k : sec.keySet()) {
                Setting s = Setting.byKey(k);
                secrets |= s != null && s.fileOnly;
            }
        }
        if (!secrets) {
            return;
        }
        int mode;
        try {
            mode = (Integer) Files.getAttribute(path, "unix:mode");
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return; // not a POSIX file system: nothing to judge
        }
        if ((mode & 0077) != 0) {
            throw new PgproofException(ExitCode.CONFIG, "configuration file \"" + path + "\" holds S3 keys but is accessible by group or others (mode "
                    + String.format("%04o", mode & 07777) + ")",
                    "make it private to its owner: chmod 600 " + path);
        }
    }

    static ConfigFile parse(Path path, String text) {
        Map<String, Map<String, String>> sections = new LinkedHashMap<>();
        String section = null;
        int lineNo = 0;
        for (String raw : text.split("\n", -1)) {
            lineNo++;
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#") || line.startsWith(";")) {
                continue;
            }
            if (line.startsWith("[")) {
                if (!line.endsWith("]") || line.length() < 3) {
                    throw bad(path, lineNo, "malformed section header \"" + line + "\"");
                }
                section = line.substring(1, line.length() - 1).strip();
                sections.computeIfAbsent(section, k -> new LinkedHashMap<>());
                continue;
            }
            int eq = line.indexOf('=');
            if (eq <= 0) {
                throw bad(path, lineNo, "expected \"key = value\", found \"" + line + "\"");
            }
            if (section == null) {
                throw bad(path, lineNo, "setting outside a section; put it under [global] or [<cluster>]");
            }
            String key = line.substring(0, eq).strip();
            String value = unquote(line.substring(eq + 1).strip());
            if ((Setting.byKey(key) == null || Setting.byKey(key) == Setting.CLUSTER) && !CheckQueries.isKey(key)) {
                throw bad(path, lineNo, "unknown setting \"" + key + "\"");
            }
            sections.get(section).put(key, value);
        }
        return new ConfigFile(path, sections);
    }

    private static String unquote(String v) {
        if (v.length() >= 2 && (v.startsWith("\"") && v.endsWith("\"") || v.startsWith("'") && v.endsWith("'"))) {
            return v.substring(1, v.length() - 1);
        }
        return v;
    }

    private static PgproofException bad(Path path, int line, String what) {
        return new PgproofException(ExitCode.CONFIG, "configuration file \"" + path + "\" line " + line + ": " + what,
                "settings are written \"key = value\" under [global] or a [<cluster>] section; keys: "
                        + String.join(", ", keys()));
    }

    private static java.util.List<String> keys() {
        java.util.List<String> k = new java.util.ArrayList<>();
        for (Setting s : Setting.values()) {
            if (s != Setting.CLUSTER) {
                k.add(s.key);
            }
        }
        k.add(CheckQueries.QUERY_PREFIX + "<name>");
        k.add(CheckQueries.DATABASE_PREFIX + "<name>");
        return k;
    }

    /** Every key of a section that starts with {@code prefix}, with its value, in file order. */
    public Map<String, String> withPrefix(String section, String prefix) {
        Map<String, String> out = new LinkedHashMap<>();
        Map<String, String> s = sections.get(section);
        if (s != null) {
            s.forEach((k, v) -> {
                if (k.startsWith(prefix)) {
                    out.put(k, v);
                }
            });
        }
        return out;
    }

    public Path path() {
        return path;
    }

    public String get(String section, String key) {
        Map<String, String> s = sections.get(section);
        return s == null ? null : s.get(key);
    }

    /** Cluster sections (every section but [global]). */
    public java.util.Set<String> clusterNames() {
        java.util.Set<String> names = new java.util.LinkedHashSet<>(sections.keySet());
        names.remove("global");
        return names;
    }
}
