package dev.pgproof.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SettingsTest {
    private static final String CONF = "[global]\nrepo = /global/repo\ncompress = lz4\njobs = 3\n\n[main]\npgdata = /data/main\nrepo = /main/repo\n"
            + "# comment\n[other]\npgdata = '/data/other'\n";

    @Test
    void precedence_flagOverEnvOverSectionOverGlobalOverDefault(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("pgproof.conf");
        Files.writeString(f, CONF);
        Settings s = Settings.load(f.toString(), Map.of(Setting.CLUSTER, "main"), Map.of());
        assertThat(s.get(Setting.REPO)).isEqualTo("/main/repo");
        assertThat(s.get(Setting.COMPRESS)).isEqualTo("lz4");
        assertThat(s.get(Setting.ARCHIVE_TIMEOUT)).isEqualTo("60");
        s = Settings.load(f.toString(), Map.of(Setting.CLUSTER, "main"), Map.of("PGPROOF_REPO", "/env/repo", "PGPROOF_COMPRESS", "gzip"));
        assertThat(s.get(Setting.REPO)).isEqualTo("/env/repo");
        assertThat(s.get(Setting.COMPRESS)).isEqualTo("gzip");
        s = Settings.load(f.toString(), Map.of(Setting.CLUSTER, "main", Setting.REPO, "/flag/repo"), Map.of("PGPROOF_REPO", "/env/repo"));
        assertThat(s.get(Setting.REPO)).isEqualTo("/flag/repo");
        s = Settings.load(f.toString(), Map.of(Setting.CLUSTER, "other"), Map.of());
        assertThat(s.get(Setting.REPO)).isEqualTo("/global/repo");
        assertThat(s.get(Setting.PGDATA)).isEqualTo("/data/other");
        assertThat(s.jobs()).isEqualTo(3);
    }

    @Test
    void clusterFromEnvironment_andConfigFromEnvironment(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("c.conf");
        Files.writeString(f, CONF);
        Settings s = Settings.load(null, Map.of(), Map.of("PGPROOF_CONFIG", f.toString(), "PGPROOF_CLUSTER", "main"));
        assertThat(s.cluster()).isEqualTo("main");
        assertThat(s.get(Setting.PGDATA)).isEqualTo("/data/main");
    }

    @Test
    void missingExplicitConfig_isAnError() {
        assertThatThrownBy(() -> Settings.load("/nonexistent/x.conf", Map.of(), Map.of()))
                .isInstanceOf(PgproofException.class)
                .hasMessage("configuration file \"/nonexistent/x.conf\" does not exist")
                .satisfies(e -> assertThat(((PgproofException) e).exitCode()).isEqualTo(ExitCode.CONFIG));
    }

    @Test
    void unknownKey_namesLineAndKey(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("bad.conf");
        Files.writeString(f, "[global]\nrepository = /x\n");
        assertThatThrownBy(() -> Settings.load(f.toString(), Map.of(), Map.of()))
                .hasMessage("configuration file \"" + f + "\" line 2: unknown setting \"repository\"");
    }

    @Test
    void requiredSetting_saysHowToSetIt() {
        Settings s = new Settings(Map.of(Setting.CLUSTER, "main"), Map.of(), ConfigFile.empty());
        assertThatThrownBy(() -> s.require(Setting.REPO)).isInstanceOf(PgproofException.class)
                .hasMessage("setting \"repo\" is required and not set")
                .satisfies(e -> assertThat(((PgproofException) e).hints()).containsExactly("give --repo, set PGPROOF_REPO (section [main])"));
    }

    @Test
    void invalidClusterName_isRefused() {
        Settings s = new Settings(Map.of(Setting.CLUSTER, "../etc"), Map.of(), ConfigFile.empty());
        assertThatThrownBy(s::cluster).hasMessage("invalid cluster name \"../etc\"");
    }
}
