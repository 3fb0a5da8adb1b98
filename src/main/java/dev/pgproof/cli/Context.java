package dev.pgproof.cli;

import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.crypto.Encryption;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.repo.ClusterInfo;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.PosixStorage;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.nio.file.Files;
import java.nio.file.Path;

/** What every command resolves first: settings, the repository and the cluster's place in it. */
final class Context {
    final Settings settings;

    Context(Settings settings) {
        this.settings = settings;
    }

    /** Opens the repository root, which must exist (only init creates it: a missing mount must not be written around). */
    Storage storage() {
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
        sb.append(" --repo ").append(shellQuote(settings.path(Setting.REPO).toString()));
        for (Setting file : new Setting[] {Setting.SPOOL_PATH, Setting.CIPHER_KEY_FILE, Setting.CIPHER_PASS_FILE}) {
            String v = settings.get(file);
            if (v != null) {
                sb.append(" --").append(file.key).append(' ').append(shellQuote(Path.of(v).toAbsolutePath().toString()));
            }
        }
        if (settings.configFile().path() != null && !settings.configFile().path().toString().equals(dev.pgproof.config.ConfigFile.DEFAULT_PATH)) {
            sb.append(" --config ").append(shellQuote(settings.configFile().path().toString()));
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
