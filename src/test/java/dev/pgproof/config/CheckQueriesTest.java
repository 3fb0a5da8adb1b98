package dev.pgproof.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.util.PgproofException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Check queries: configuration keys, precedence (flag, environment, cluster section, global) and errors. */
class CheckQueriesTest {
    private static final ConfigFile FILE = ConfigFile.parse(Path.of("/etc/pgproof/pgproof.conf"), String.join("\n",
            "[global]",
            "check-query-branches = SELECT count(*) = 1 FROM pgbench_branches",
            "check-query-fresh = SELECT false",
            "[main]",
            "repo = /backup",
            "check-query-fresh = SELECT max(created) > now() - interval '1 day' FROM orders",
            "check-database-fresh = shop",
            ""));

    @Test
    void resolve_clusterSectionOverridesGlobalAndNamesTheDatabase() {
        List<CheckQueries.CheckQuery> q = CheckQueries.resolve("main", Map.of(), Map.of(), Map.of(), FILE);
        assertThat(q).extracting(CheckQueries.CheckQuery::name).containsExactly("branches", "fresh");
        assertThat(q.get(1).sql()).isEqualTo("SELECT max(created) > now() - interval '1 day' FROM orders");
        assertThat(q.get(1).database()).isEqualTo("shop");
        assertThat(q.get(0).database()).isEqualTo("postgres");
        assertThat(q.get(1).source()).isEqualTo("\"/etc/pgproof/pgproof.conf\" [main] check-query-fresh");
        // Another cluster sees only [global].
        assertThat(CheckQueries.resolve("other", Map.of(), Map.of(), Map.of(), FILE).get(1).sql()).isEqualTo("SELECT false");
    }

    @Test
    void resolve_environmentAndFlagWin() {
        List<CheckQueries.CheckQuery> q = CheckQueries.resolve("main", Map.of("branches", "SELECT true"), Map.of(),
                Map.of("PGPROOF_CHECK_QUERY_FRESH", "SELECT 1 = 1", "PGPROOF_CHECK_DATABASE_FRESH", "shop2", "PGPROOF_CHECK_QUERY_NEW_ONE", "SELECT true"),
                FILE);
        assertThat(q).extracting(CheckQueries.CheckQuery::name).containsExactly("branches", "fresh", "new-one");
        assertThat(q.get(0).sql()).isEqualTo("SELECT true");
        assertThat(q.get(0).source()).isEqualTo("--check-query branches");
        assertThat(q.get(1).sql()).isEqualTo("SELECT 1 = 1");
        assertThat(q.get(1).database()).isEqualTo("shop2");
    }

    @Test
    void resolve_refusesADatabaseWithoutQueryAndBadNames() {
        assertThatThrownBy(() -> CheckQueries.resolve("main", Map.of(), Map.of("orphan", "shop"), Map.of(), FILE))
                .isInstanceOf(PgproofException.class).hasMessage("check-database-orphan is set but there is no check-query-orphan");
        assertThatThrownBy(() -> CheckQueries.resolve("main", Map.of("bad name", "SELECT true"), Map.of(), Map.of(), FILE))
                .hasMessage("invalid check name \"bad name\" in --check-query");
        assertThatThrownBy(() -> ConfigFile.parse(Path.of("x.conf"), "[main]\ncheck-querry-x = SELECT true\n"))
                .hasMessageContaining("unknown setting \"check-querry-x\"");
    }
}
