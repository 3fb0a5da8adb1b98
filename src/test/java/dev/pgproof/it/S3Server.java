package dev.pgproof.it;

import dev.pgproof.storage.S3Options;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * Test fixture: a real S3 server, s3proxy 4.1.0 (Maven fetches target/s3proxy/s3proxy.jar in
 * pre-integration-test, or `mvn dependency:copy@copy-s3proxy`), run as a separate {@code java -jar} process on 127.0.0.1 with the
 * filesystem-nio2 backend. {@link #shared()} starts one per JVM, reused by every test class, and a
 * shutdown hook stops it. If it cannot start, the test fails: S3 tests are never skipped.
 * {@link #stop()} and {@link #start()} (same port, same data) let fault tests take it away.
 */
public final class S3Server {
    public static final String IDENTITY = "pgproof-test-identity";
    public static final String CREDENTIAL = "pgproof-test-credential";
    public static final String REGION = "us-east-1";
    private static final Path JAR = Path.of("target/s3proxy/s3proxy.jar").toAbsolutePath();
    private static S3Server shared;

    private final Path dir;
    private final Path data;
    private final Path conf;
    private final Path log;
    private final int port;
    private Process process;

    private S3Server(Path dir, int port) {
        this.dir = dir;
        this.data = dir.resolve("data");
        this.conf = dir.resolve("s3proxy.conf");
        this.log = dir.resolve("s3proxy.log");
        this.port = port;
    }

    /** The server shared by every test class of this JVM, started on first use. */
    public static synchronized S3Server shared() {
        if (shared == null) {
            try {
                Path dir = Files.createDirectories(Path.of("target/s3proxy-run/" + ProcessHandle.current().pid()).toAbsolutePath());
                S3Server s = new S3Server(dir, PgCluster.freePort());
                s.start();
                Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                    s.stop();
                    s.deleteData();
                }, "s3proxy-stop"));
                shared = s;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return shared;
    }

    public String endpoint() {
        return "http://127.0.0.1:" + port;
    }

    public int port() {
        return port;
    }

    /** Starts s3proxy and waits until it answers HTTP; throws (the test fails) if it does not within 90 s. */
    public synchronized void start() {
        if (process != null && process.isAlive()) {
            return;
        }
        if (!Files.isRegularFile(JAR)) {
            throw new AssertionError("s3proxy is missing at " + JAR + ": mvn verify copies it before the integration tests, or run: mvn dependency:copy@copy-s3proxy");
        }
        try {
            Files.createDirectories(data);
            Files.writeString(conf, String.join("\n",
                    "s3proxy.endpoint=" + endpoint(),
                    "s3proxy.authorization=aws-v2-or-v4",
                    "s3proxy.identity=" + IDENTITY,
                    "s3proxy.credential=" + CREDENTIAL,
                    "jclouds.provider=filesystem-nio2",
                    "jclouds.filesystem.basedir=" + data,
                    ""), StandardCharsets.UTF_8);
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            ProcessBuilder pb = new ProcessBuilder(List.of(java, "-Xmx512m", "-XX:+UseSerialGC", "-jar", JAR.toString(), "--properties",
                    conf.toString()));
            pb.redirectErrorStream(true);
            pb.redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
            pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            process = pb.start();
        } catch (IOException e) {
            throw new AssertionError("could not start s3proxy: " + e, e);
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (true) {
            if (!process.isAlive()) {
                throw new AssertionError("s3proxy exited with " + process.exitValue() + "\n--- log ---\n" + logTail());
            }
            if (answers()) {
                return;
            }
            if (System.nanoTime() > deadline) {
                stop();
                throw new AssertionError("s3proxy did not answer on " + endpoint() + " within 90 s\n--- log ---\n" + logTail());
            }
            PgCluster.pause(100);
        }
    }

    /** Whether anything answers HTTP on the port (an unauthenticated GET gets 403: up). */
    private boolean answers() {
        try {
            HttpURLConnection c = (HttpURLConnection) URI.create(endpoint() + "/").toURL().openConnection();
            c.setConnectTimeout(1000);
            c.setReadTimeout(2000);
            try {
                return c.getResponseCode() > 0;
            } finally {
                c.disconnect();
            }
        } catch (IOException e) {
            return false;
        }
    }

    /** Stops the server (SIGTERM, then SIGKILL); the data stays for {@link #start()}. */
    public synchronized void stop() {
        if (process == null) {
            return;
        }
        process.destroy();
        try {
            if (!process.waitFor(15, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(15, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        process = null;
    }

    private void deleteData() {
        try (java.util.stream.Stream<Path> files = Files.walk(data)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // best effort at JVM exit
        }
    }

    public String logTail() {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    /** An SDK client with the server's credentials, for set-up and inspection. */
    public S3Client client() {
        return S3Client.builder()
                .httpClient(UrlConnectionHttpClient.builder().build())
                .endpointOverride(URI.create(endpoint()))
                .forcePathStyle(true)
                .region(Region.of(REGION))
                .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(IDENTITY, CREDENTIAL)))
                .build();
    }

    /** Creates a bucket (3 to 63 characters) unless it exists. */
    public void createBucket(String bucket) {
        try (S3Client c = client()) {
            if (c.listBuckets().buckets().stream().noneMatch(b -> b.name().equals(bucket))) {
                c.createBucket(r -> r.bucket(bucket));
            }
        }
    }

    /** Storage options for a prefix of a bucket on this server, as pgproof builds them from settings. */
    public S3Options options(String bucket, String prefix) {
        return new S3Options(bucket, prefix, endpoint(), REGION, true, null, null, null, false, IDENTITY, CREDENTIAL,
                Duration.ofSeconds(10), Duration.ofSeconds(30), S3Options.DEFAULT_PART_SIZE, S3Options.DEFAULT_UPLOAD_THREADS);
    }

    /**
     * A pgproof configuration file for this server, owned by the cluster OS user and mode 0600
     * (archive_command runs as that user), with the keys and the endpoint in [global].
     */
    public Path writeConfig(Path file, String extra) {
        try {
            Files.writeString(file, String.join("\n",
                    "[global]",
                    "s3-endpoint = " + endpoint(),
                    "s3-region = " + REGION,
                    "s3-path-style = true",
                    "s3-access-key = " + IDENTITY,
                    "s3-secret-key = " + CREDENTIAL,
                    extra,
                    ""), StandardCharsets.UTF_8);
            Files.setPosixFilePermissions(file, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
            PgCluster.chownToOwner(file, false);
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public Path dir() {
        return dir;
    }
}
