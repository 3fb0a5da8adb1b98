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

    @Test
    void s3Keys_onlyFromAPrivateConfigurationFile(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("s3.conf");
        Files.writeString(f, "[global]\nrepo = s3://bucket/prefix\ns3-access-key = AK\ns3-secret-key = SK\n");
        Files.setPosixFilePermissions(f, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r-----"));
        assertThatThrownBy(() -> Settings.load(f.toString(), Map.of(), Map.of())).isInstanceOf(PgproofException.class)
                .hasMessage("configuration file \"" + f + "\" holds S3 keys but is accessible by group or others (mode 0640)")
                .satisfies(e -> assertThat(((PgproofException) e).hints()).containsExactly("make it private to its owner: chmod 600 " + f));
        Files.setPosixFilePermissions(f, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        Settings s = Settings.load(f.toString(), Map.of(Setting.CLUSTER, "main"), Map.of());
        assertThat(s.get(Setting.S3_SECRET_KEY)).isEqualTo("SK");
        assertThat(s.repoIsS3()).isTrue();
        assertThat(s.source(Setting.REPO)).isEqualTo(Settings.Source.FILE);
        assertThat(s.source(Setting.S3_CHECKSUM)).isEqualTo(Settings.Source.DEFAULT);

        // Never from a flag or the environment (they would show in ps and in archive_command).
        assertThatThrownBy(() -> Settings.load(f.toString(), Map.of(Setting.S3_SECRET_KEY, "x"), Map.of()))
                .hasMessage("setting \"s3-secret-key\" is a secret and is read only from the configuration file, not from --s3-secret-key "
                        + "or PGPROOF_S3_SECRET_KEY")
                .satisfies(e -> assertThat(((PgproofException) e).exitCode()).isEqualTo(ExitCode.CONFIG));
        assertThatThrownBy(() -> Settings.load(f.toString(), Map.of(), Map.of("PGPROOF_S3_ACCESS_KEY", "x")))
                .hasMessageStartingWith("setting \"s3-access-key\" is a secret");

        // A file without keys may be readable by the group, as before.
        Path g = dir.resolve("plain.conf");
        Files.writeString(g, "[global]\nrepo = s3://bucket/prefix\ns3-endpoint = http://127.0.0.1:9000\n");
        Files.setPosixFilePermissions(g, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r-----"));
        assertThat(Settings.load(g.toString(), Map.of(), Map.of("PGPROOF_S3_REGION", "eu-west-1")).source(Setting.S3_REGION))
                .isEqualTo(Settings.Source.ENV);
    }

    @Test
    void booleans() {
        Settings s = new Settings(Map.of(Setting.S3_PATH_STYLE, "yes"), Map.of(), ConfigFile.empty());
        assertThat(s.boolValue(Setting.S3_PATH_STYLE)).isTrue();
        Settings bad = new Settings(Map.of(Setting.S3_PATH_STYLE, "maybe"), Map.of(), ConfigFile.empty());
        assertThatThrownBy(() -> bad.boolValue(Setting.S3_PATH_STYLE)).hasMessage("setting \"s3-path-style\" must be true or false, got \"maybe\"");
    }
}
