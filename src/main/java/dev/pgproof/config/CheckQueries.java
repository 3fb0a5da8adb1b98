package dev.pgproof.config;

import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * The user's own check queries, run by {@code prove} on the restored copy. Each has a name and is
 * given as {@code check-query-<name> = <SQL>}, optionally with {@code check-database-<name> = <db>}
 * (default {@code postgres}). The query must return one row whose first column is true; false,
 * null, no row or an error fails the check.
 *
 * <p>Like every setting, a check can be given four ways; for one name the first that is set wins:
 * the flag {@code --check-query NAME=SQL} (and {@code --check-database NAME=DB}), the environment
 * variable {@code PGPROOF_CHECK_QUERY_<NAME>} (and {@code PGPROOF_CHECK_DATABASE_<NAME>}; the name is
 * lower-cased and underscores become dashes), the cluster's section, the [global] section.
 */
public final class CheckQueries {
    public static final String QUERY_PREFIX = "check-query-";
    public static final String DATABASE_PREFIX = "check-database-";
    private static final String ENV_QUERY = "PGPROOF_CHECK_QUERY_";
    private static final String ENV_DATABASE = "PGPROOF_CHECK_DATABASE_";
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,62}");

    private CheckQueries() {}

    /** One check: a name, the SQL, the database it runs in, and where it was set (for messages). */
    public record CheckQuery(String name, String sql, String database, String source) {}

    /** Whether a configuration file key names a check query or its database. */
    public static boolean isKey(String key) {
        return key.startsWith(QUERY_PREFIX) && NAME.matcher(key.substring(QUERY_PREFIX.length())).matches()
                || key.startsWith(DATABASE_PREFIX) && NAME.matcher(key.substring(DATABASE_PREFIX.length())).matches();
    }

    /**
     * Resolves the checks of {@code cluster}. {@code flagQueries} and {@code flagDatabases} map
     * names to SQL and database from the command line.
     */
    public static List<CheckQuery> resolve(String cluster, Map<String, String> flagQueries, Map<String, String> flagDatabases,
            Map<String, String> env, ConfigFile config) {
        Map<String, String[]> queries = new TreeMap<>(); // name -> {sql, source}
        Map<String, String> databases = new TreeMap<>();
        // Lowest precedence first; later puts win.
        for (String section : new String[] {"global", cluster}) {
            config.withPrefix(section, QUERY_PREFIX).forEach((k, v) -> queries.put(k.substring(QUERY_PREFIX.length()),
                    new String[] {v, "\"" + config.path() + "\" [" + section + "] " + k}));
            config.withPrefix(section, DATABASE_PREFIX).forEach((k, v) -> databases.put(k.substring(DATABASE_PREFIX.length()), v));
        }
        env.forEach((k, v) -> {
            if (k.startsWith(ENV_QUERY) && !v.isEmpty()) {
                queries.put(envName(k.substring(ENV_QUERY.length()), k), new String[] {v, "environment variable " + k});
            } else if (k.startsWith(ENV_DATABASE) && !v.isEmpty()) {
                databases.put(envName(k.substring(ENV_DATABASE.length()), k), v);
            }
        });
        flagQueries.forEach((k, v) -> queries.put(checkName(k, "--check-query"), new String[] {v, "--check-query " + k}));
        flagDatabases.forEach((k, v) -> databases.put(checkName(k, "--check-database"), v));
        for (String db : databases.keySet()) {
            if (!queries.containsKey(db)) {
                throw new PgproofException(ExitCode.CONFIG, "check-database-" + db + " is set but there is no check-query-" + db,
                        "give the query as check-query-" + db + " = <SQL returning one boolean>, or remove check-database-" + db);
            }
        }
        List<CheckQuery> out = new ArrayList<>();
        queries.forEach((name, q) -> {
            if (q[0].isBlank()) {
                throw new PgproofException(ExitCode.CONFIG, "check query \"" + name + "\" (" + q[1] + ") is empty",
                        "give an SQL query returning one boolean, e.g. SELECT max(created) > now() - interval '1 day' FROM orders");
            }
            out.add(new CheckQuery(name, q[0], databases.getOrDefault(name, "postgres"), q[1]));
        });
        return out;
    }

    private static String envName(String raw, String variable) {
        return checkName(raw.toLowerCase(Locale.ROOT).replace('_', '-'), "environment variable " + variable);
    }

    private static String checkName(String name, String where) {
        if (!NAME.matcher(name).matches()) {
            throw new PgproofException(ExitCode.CONFIG, "invalid check name \"" + name + "\" in " + where,
                    "a check name has 1 to 63 characters: letters, digits, '_', '.' and '-'");
        }
        return name;
    }
}
