package dev.pgproof.it;

import dev.pgproof.storage.PosixStorage;
import dev.pgproof.storage.S3Storage;
import dev.pgproof.storage.Storage;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A repository for integration tests, on one backend: a directory owned by the cluster OS user, or
 * a prefix of a bucket on the shared s3proxy with a 0600 configuration file (owned by that user,
 * since archive_command and restore_command run as it) that holds the endpoint and keys. Tests
 * pass {@link #args()} to pgproof and inspect the repository through {@link #storage()}.
 */
public abstract class TestRepo {
    private static final AtomicInteger NEXT = new AtomicInteger();

    /** The options naming the repository on a pgproof command line (--repo, and --config for S3). */
    public abstract List<String> args();

    /** What --repo says: a directory or s3://bucket/prefix. */
    public abstract String location();

    /** How pgproof names the repository in messages and in info's "repository". */
    public abstract String describe();

    /** The repository as pgproof's own storage layer sees it, for inspection. */
    public abstract Storage storage();

    /** "posix" or "s3", for names and messages. */
    public abstract String kind();

    /** A pgproof command line: the command, then the repository options, then the rest. */
    public String[] command(String command, String... rest) {
        List<String> a = new ArrayList<>();
        a.add(command);
        a.addAll(args());
        a.addAll(Arrays.asList(rest));
        return a.toArray(new String[0]);
    }

    /** archive_command for a test cluster archiving into this repository. */
    public String archiveCommand(String cluster) {
        return Pgproof.LAUNCHER + " archive-push --cluster " + cluster + " " + String.join(" ", args()) + " %p";
    }

    /** Every object under a prefix, key to size. */
    public Map<String, Long> listing(String prefix) {
        Map<String, Long> out = new TreeMap<>();
        try {
            for (Storage.ObjectInfo o : storage().list(prefix)) {
                out.put(o.key(), o.size());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    public byte[] read(String key) {
        try (InputStream in = storage().open(key)) {
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Replaces an object (for corruption tests). */
    public void write(String key, byte[] content) {
        try (Storage.Writer w = storage().create(key)) {
            w.stream().write(content);
            w.commit(false);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A directory repository {@code <parent>/pgproof}; the parent is handed to the cluster OS user. */
    public static TestRepo posix(Path parent) {
        try {
            Files.createDirectories(parent);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        PgCluster.chownToOwner(parent, false);
        Path dir = parent.resolve("pgproof");
        return new TestRepo() {
            @Override
            public List<String> args() {
                return List.of("--repo", dir.toString());
            }

            @Override
            public String location() {
                return dir.toString();
            }

            @Override
            public String describe() {
                return dir.toString();
            }

            @Override
            public Storage storage() {
                return new PosixStorage(dir);
            }

            @Override
            public String kind() {
                return "posix";
            }

            @Override
            public void write(String key, byte[] content) {
                try {
                    Files.write(dir.resolve(key), content); // in place: keeps the cluster OS user as owner
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
        };
    }

    /**
     * A fresh prefix of bucket "pgproof-it" on the shared s3proxy, with its configuration file at
     * {@code configDir/pgproof.conf} (configDir must be reachable by the cluster OS user).
     */
    public static TestRepo s3(Path configDir) {
        S3Server server = S3Server.shared();
        String bucket = "pgproof-it";
        server.createBucket(bucket);
        String prefix = "r" + ProcessHandle.current().pid() + "-" + NEXT.incrementAndGet();
        return s3(server, bucket, prefix, server.writeConfig(configDir.resolve("pgproof.conf"), ""));
    }

    /** A prefix of an existing bucket on the server, named to pgproof with the configuration file {@code conf}. */
    public static TestRepo s3(S3Server server, String bucket, String prefix, Path conf) {
        S3Storage storage = new S3Storage(server.options(bucket, prefix));
        String url = "s3://" + bucket + "/" + prefix;
        return new TestRepo() {
            @Override
            public List<String> args() {
                return List.of("--repo", url, "--config", conf.toString());
            }

            @Override
            public String location() {
                return url;
            }

            @Override
            public String describe() {
                return url + " (endpoint " + server.endpoint() + ")";
            }

            @Override
            public Storage storage() {
                return storage;
            }

            @Override
            public String kind() {
                return "s3";
            }
        };
    }
}
