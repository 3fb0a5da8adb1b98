package dev.pgproof.it;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs the real pgproof launcher (./pgproof at the project root) as a separate process, as a user
 * or PostgreSQL would. Integration tests run after `mvn package`, so the jar exists.
 */
public final class Pgproof {
    /** The launcher; archive_command and restore_command of test clusters call it too. */
    public static final Path LAUNCHER = Path.of("pgproof").toAbsolutePath();

    private Pgproof() {}

    /** Runs pgproof as the test JVM's user (root in CI: pgproof switches to the cluster owner itself). */
    public static PgCluster.ProcessResult run(Map<String, String> env, String... args) {
        return PgCluster.run(command(args), withDefaults(env), LAUNCHER.getParent(), Duration.ofMinutes(5));
    }

    public static PgCluster.ProcessResult run(String... args) {
        return run(Map.of(), args);
    }

    /** Runs pgproof as the unprivileged cluster owner in a working directory (e.g. the data directory, like archive_command). */
    public static PgCluster.ProcessResult runAsOwner(Path cwd, Map<String, String> env, String... args) {
        return PgCluster.runAsOwner(command(args), withDefaults(env), cwd, Duration.ofMinutes(5));
    }

    public static List<String> command(String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(LAUNCHER.toString());
        cmd.addAll(Arrays.asList(args));
        return cmd;
    }

    /** archive_command for a test cluster. */
    /** The environment that makes a pgproof process stop at a test hook until the file release exists. */
    public static Map<String, String> hook(String point, Path release) {
        return Map.of("PGPROOF_TEST_HOOK", point, "PGPROOF_TEST_HOOK_RELEASE", release.toString());
    }

    /** The pgproof manifest of the backup in a posix repository's backup directory (its manifest.json.zst, decompressed). */
    public static com.fasterxml.jackson.databind.JsonNode readManifest(Path backupDir) throws IOException {
        try (InputStream in = new com.github.luben.zstd.ZstdInputStream(Files.newInputStream(backupDir.resolve("manifest.json.zst")))) {
            return new com.fasterxml.jackson.databind.ObjectMapper().readTree(in);
        }
    }

    /**
     * The data chunks stored under a posix repository's backup data directory (not temporary files, not
     * block hash objects), while a backup may still be writing there: a temporary file renamed while the
     * tree is walked makes it look again.
     */
    public static List<Path> storedChunks(Path dataDir) throws IOException {
        for (int attempt = 0;; attempt++) {
            if (!Files.isDirectory(dataDir)) {
                return List.of();
            }
            try (java.util.stream.Stream<Path> s = Files.walk(dataDir)) {
                return s.filter(Files::isRegularFile).filter(f -> !f.getFileName().toString().startsWith("."))
                        .filter(f -> !f.getFileName().toString().contains(".hashes.")).toList();
            } catch (java.io.UncheckedIOException e) {
                if (!(e.getCause() instanceof java.nio.file.NoSuchFileException) || attempt >= 50) {
                    throw e;
                }
            }
        }
    }

    /** The labels of info's JSON backups array, in its order. */
    public static List<String> labels(com.fasterxml.jackson.databind.JsonNode backups) {
        List<String> out = new ArrayList<>();
        backups.forEach(b -> out.add(b.get("label").asText()));
        return out;
    }

    public static String archiveCommand(String cluster, Path repo) {
        return LAUNCHER + " archive-push --cluster " + cluster + " --repo " + repo + " %p";
    }

    private static Map<String, String> withDefaults(Map<String, String> env) {
        return new HashMap<>(env); // PgCluster.run drops inherited PG* (and PGPROOF_*) variables first
    }
}
