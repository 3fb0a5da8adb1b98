package dev.pgproof.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.config.ConfigFile;
import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.storage.S3Options;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** How settings become S3 options, and what archive_command / restore_command repeat. */
class ContextTest {
    @Test
    void s3UrlAndOptions() {
        Settings s = new Settings(Map.of(Setting.CLUSTER, "main", Setting.REPO, "s3://my-bucket/some/prefix/", Setting.S3_ENDPOINT,
                "http://127.0.0.1:9000", Setting.S3_PATH_STYLE, "true", Setting.S3_CHECKSUM, "when-required", Setting.S3_TIMEOUT, "9"),
                Map.of(), ConfigFile.empty());
        S3Options o = new Context(s).s3Options();
        assertThat(o.bucket()).isEqualTo("my-bucket");
        assertThat(o.prefix()).isEqualTo("some/prefix");
        assertThat(o.url()).isEqualTo("s3://my-bucket/some/prefix");
        assertThat(o.pathStyle()).isTrue();
        assertThat(o.checksumWhenRequired()).isTrue();
        assertThat(o.callTimeout()).hasSeconds(30); // never shorter than one attempt (s3-request-timeout 30)
        assertThat(o.accessKey()).isNull();
        assertThat(o.toString()).doesNotContain("secret");
        assertThat(S3Options.parseUrl("s3://b")).containsExactly("b", "");
        assertThat(S3Options.parseUrl("/var/backups")).isNull();
    }

    @Test
    void invalidS3SettingsAreConfigurationErrors() {
        assertThatThrownBy(() -> new Context(new Settings(Map.of(Setting.REPO, "s3://b/p", Setting.S3_SSE, "rot13"), Map.of(),
                ConfigFile.empty())).s3Options()).hasMessage("setting \"s3-sse\" must be AES256 or aws:kms, got \"rot13\"");
        assertThatThrownBy(() -> new Context(new Settings(Map.of(Setting.REPO, "s3://b/p", Setting.S3_CHECKSUM, "never"), Map.of(),
                ConfigFile.empty())).s3Options()).hasMessageStartingWith("setting \"s3-checksum\" must be when-supported or when-required");
        assertThatThrownBy(() -> new Context(new Settings(Map.of(Setting.REPO, "s3:///p"), Map.of(), ConfigFile.empty())).s3Options())
                .hasMessage("repository \"s3:///p\" is not a valid S3 URL");
    }

    @Test
    void commandOptionsCarryTheConfigFileAndFlagsButNeverKeys(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("pgproof.conf");
        Files.writeString(f, "[global]\ns3-access-key = AKIDEXAMPLE\ns3-secret-key = VERYSECRET\ns3-region = eu-west-1\n");
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-------"));
        Settings s = Settings.load(f.toString(), Map.of(Setting.CLUSTER, "main", Setting.REPO, "s3://bkt/pg", Setting.S3_ENDPOINT,
                "https://minio.example:9000", Setting.S3_PATH_STYLE, "true"), Map.of("PGPROOF_S3_STORAGE_CLASS", "STANDARD_IA"));
        String opts = new Context(s).commandOptions();
        assertThat(opts).isEqualTo(" --cluster main --repo s3://bkt/pg --config " + f + " --s3-endpoint https://minio.example:9000"
                + " --s3-path-style true --s3-storage-class STANDARD_IA");
        assertThat(opts).doesNotContain("VERYSECRET").doesNotContain("AKIDEXAMPLE").doesNotContain("eu-west-1");
    }
}
