package dev.pgproof.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.it.S3Server;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.S3Exception;

/** The storage contract on S3 (s3proxy 4.1.0, filesystem-nio2), each test under its own prefix of one bucket. */
class S3StorageContractIT extends StorageContract {
    private static final String BUCKET = "pgproof-contract";
    private static final AtomicInteger NEXT = new AtomicInteger();
    private static S3Server server;
    private static final List<S3Storage> OPEN = new ArrayList<>();

    @BeforeAll
    static void startServer() {
        server = S3Server.shared();
        server.createBucket(BUCKET);
    }

    @AfterAll
    static void closeClients() {
        OPEN.forEach(S3Storage::close);
    }

    @Override
    protected Storage storage() {
        S3Storage s = new S3Storage(server.options(BUCKET, "t" + ProcessHandle.current().pid() + "-" + NEXT.incrementAndGet() + "/repo"));
        OPEN.add(s);
        return s;
    }

    @Override
    protected void assertNoLeftovers(Storage s) throws Exception {
        S3Storage s3 = (S3Storage) s;
        assertThat(s3.client().listMultipartUploads(r -> r.bucket(BUCKET).prefix(s3.options().prefix() + "/")).uploads())
                .as("open multipart uploads").isEmpty();
        try (Stream<Path> tmp = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
            assertThat(tmp.filter(p -> p.getFileName().toString().startsWith("pgproof-s3-"))).as("spill files").isEmpty();
        }
    }

    @Override
    protected boolean noReplaceIsAtomic() {
        return IF_NONE_MATCH_HONOURED;
    }

    /** What s3proxy 4.1.0 does with If-None-Match: * on a PUT of an existing key (see the test below). */
    static final boolean IF_NONE_MATCH_HONOURED = true;

    @Test
    void conditionalPutOfAnExistingKey() {
        try (S3Client c = server.client()) {
            String key = "cond-" + ProcessHandle.current().pid() + "/k";
            c.putObject(r -> r.bucket(BUCKET).key(key), RequestBody.fromString("first"));
            if (IF_NONE_MATCH_HONOURED) {
                assertThatThrownBy(() -> c.putObject(r -> r.bucket(BUCKET).key(key).ifNoneMatch("*"), RequestBody.fromString("second")))
                        .isInstanceOf(S3Exception.class).extracting(e -> ((S3Exception) e).statusCode()).isEqualTo(412);
                assertThat(c.getObjectAsBytes(r -> r.bucket(BUCKET).key(key)).asUtf8String()).isEqualTo("first");
            } else {
                c.putObject(r -> r.bucket(BUCKET).key(key).ifNoneMatch("*"), RequestBody.fromString("second"));
                assertThat(c.getObjectAsBytes(r -> r.bucket(BUCKET).key(key)).asUtf8String()).isEqualTo("second");
            }
        }
    }

    @Test
    void conditionalMultipartCompletionOverAnExistingKey() {
        try (S3Client c = server.client()) {
            String key = "cond-mpu-" + ProcessHandle.current().pid() + "/k";
            c.putObject(r -> r.bucket(BUCKET).key(key), RequestBody.fromString("first"));
            String id = c.createMultipartUpload(r -> r.bucket(BUCKET).key(key)).uploadId();
            String etag = c.uploadPart(r -> r.bucket(BUCKET).key(key).uploadId(id).partNumber(1), RequestBody.fromString("second")).eTag();
            try {
                assertThatThrownBy(() -> c.completeMultipartUpload(r -> r.bucket(BUCKET).key(key).uploadId(id).ifNoneMatch("*")
                        .multipartUpload(m -> m.parts(p -> p.partNumber(1).eTag(etag)))))
                        .isInstanceOf(S3Exception.class).extracting(e -> ((S3Exception) e).statusCode()).isEqualTo(412);
            } finally {
                c.abortMultipartUpload(r -> r.bucket(BUCKET).key(key).uploadId(id));
            }
            assertThat(c.getObjectAsBytes(r -> r.bucket(BUCKET).key(key)).asUtf8String()).isEqualTo("first");
        }
    }

    @Test
    void aFailedMultipartUploadIsAbortedAndLeavesNothing() throws Exception {
        // Parts of 1 MiB: the store refuses to complete an upload whose parts (but the last) are under 5 MiB.
        S3Storage s = new S3Storage(server.options(BUCKET, "mpu-fail-" + ProcessHandle.current().pid()).withPartSize(1 << 20));
        OPEN.add(s);
        byte[] data = new byte[3 << 20];
        new java.util.Random(5).nextBytes(data);
        try (Storage.Writer w = s.create("k/obj")) {
            w.stream().write(data);
            assertThatThrownBy(() -> w.commit(true)).isInstanceOf(java.io.IOException.class)
                    .hasMessageStartingWith("S3 multipart upload of s3://" + BUCKET + "/" + s.options().prefix() + "/k/obj at endpoint "
                            + server.endpoint() + " failed: ")
                    .hasMessageContaining("EntityTooSmall");
        }
        assertThat(s.exists("k/obj")).isFalse();
        assertNoLeftovers(s);
    }

    @Test
    void anUnreachableEndpointFailsWithinTheCallTimeout() {
        S3Options o = server.options(BUCKET, "x");
        S3Storage s = new S3Storage(new S3Options(o.bucket(), o.prefix(), "http://127.0.0.1:" + dev.pgproof.it.PgCluster.freePort(),
                o.region(), true, null, null, null, false, o.accessKey(), o.secretKey(), java.time.Duration.ofSeconds(1),
                java.time.Duration.ofSeconds(3), o.partSize(), o.uploadThreads()));
        OPEN.add(s);
        long t0 = System.nanoTime();
        assertThatThrownBy(s::checkBucket).isInstanceOf(S3Storage.BucketException.class)
                .satisfies(e -> assertThat(((S3Storage.BucketException) e).problem()).isEqualTo(S3Storage.Problem.UNREACHABLE));
        assertThatThrownBy(() -> s.list("a/")).isInstanceOf(java.io.IOException.class).hasMessageContaining("127.0.0.1");
        assertThat((System.nanoTime() - t0) / 1_000_000).as("ms for two failed calls").isLessThan(10_000);
    }

    @Test
    void listingsPageBeyondAThousandKeys() throws Exception {
        Storage s = storage();
        int n = 1010; // ListObjectsV2 answers at most 1000 keys a page
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(8);
        try {
            List<java.util.concurrent.Future<?>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                String key = String.format("many/%s/%04d", i % 2 == 0 ? "even" : "odd", i);
                fs.add(pool.submit(() -> {
                    put(s, key, "x", false);
                    return null;
                }));
            }
            for (java.util.concurrent.Future<?> f : fs) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
        List<Storage.ObjectInfo> all = s.list("many/");
        assertThat(all).hasSize(n);
        assertThat(all).extracting(Storage.ObjectInfo::key).isSorted().doesNotHaveDuplicates();
        assertThat(s.list("many/odd/")).hasSize(n / 2);
        assertThat(s.listPrefixes("many/")).containsExactly("many/even/", "many/odd/");
    }

    @Test
    void storageClassIsSetAndServerSideEncryptionIsRequested() throws Exception {
        S3Options o = server.options(BUCKET, "sc-" + ProcessHandle.current().pid());
        S3Storage s = new S3Storage(new S3Options(o.bucket(), o.prefix(), o.endpoint(), o.region(), true, "STANDARD_IA", null, null, false,
                o.accessKey(), o.secretKey(), o.attemptTimeout(), o.callTimeout(), 5 << 20, 2));
        OPEN.add(s);
        put(s, "small", "x", true);
        put(s, "large", new byte[6 << 20], true);
        assertThat(s.client().headObject(r -> r.bucket(BUCKET).key(s.fullKey("small"))).storageClassAsString()).isEqualTo("STANDARD_IA");
        // pgproof sends it with CreateMultipartUpload as well, but s3proxy's filesystem backend keeps STANDARD for multipart objects.
        assertThat(s.client().headObject(r -> r.bucket(BUCKET).key(s.fullKey("large"))).contentLength()).isEqualTo(6L << 20);
        // s3proxy implements no server-side encryption: the header reaches it, and its refusal is a clean error.
        S3Storage sse = new S3Storage(new S3Options(o.bucket(), o.prefix(), o.endpoint(), o.region(), true, null, "AES256", null, false,
                o.accessKey(), o.secretKey(), o.attemptTimeout(), o.callTimeout(), 5 << 20, 2));
        OPEN.add(sse);
        assertThatThrownBy(() -> put(sse, "encrypted", "x", false)).isInstanceOf(java.io.IOException.class)
                .hasMessageContaining("NotImplemented: Server-side encryption is not supported.");
        assertThat(sse.exists("encrypted")).isFalse();
        assertNoLeftovers(sse);
    }

    @Test
    void describeNamesBucketPrefixAndEndpoint() {
        S3Storage s = (S3Storage) storage();
        assertThat(s.describe()).isEqualTo("s3://" + BUCKET + "/" + s.options().prefix() + " (endpoint " + server.endpoint() + ")");
        assertThat(s.location()).isEqualTo("s3://" + BUCKET + "/" + s.options().prefix());
    }
}
