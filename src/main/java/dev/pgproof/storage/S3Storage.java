package dev.pgproof.storage;

import dev.pgproof.util.Log;
import dev.pgproof.util.TestHooks;
import java.io.ByteArrayInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.client.config.ClientOverrideConfiguration;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.retries.api.BackoffStrategy;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.model.ChecksumAlgorithm;
import software.amazon.awssdk.services.s3.model.CommonPrefix;
import software.amazon.awssdk.services.s3.model.CompleteMultipartUploadRequest;
import software.amazon.awssdk.services.s3.model.CompletedPart;
import software.amazon.awssdk.services.s3.model.CreateMultipartUploadRequest;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Response;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.S3Object;
import software.amazon.awssdk.services.s3.model.UploadPartRequest;
import software.amazon.awssdk.services.s3.model.UploadPartResponse;

/**
 * A repository in an S3 bucket (AWS or an S3-compatible store), under a key prefix.
 *
 * <p>A write is buffered in memory up to the part size, beyond that in a private temporary file,
 * while its SHA-256 is computed. Nothing is sent before {@link Writer#commit}: an abandoned write
 * leaves nothing in the bucket. Commit sends one PUT (objects up to the part size) or a multipart
 * upload whose parts go up in parallel (aborted on any failure), with the SHA-256 in the object's
 * user metadata ({@value #SHA_META}); then a HEAD confirms size and SHA-256 before the write
 * counts. No-replace writes check with HEAD first and send {@code If-None-Match: *}; a store that
 * ignores it can let a concurrent writer replace an object (see docs/repository-format.md).
 */
public final class S3Storage implements Storage, AutoCloseable {
    /** User metadata key (x-amz-meta-...) holding the SHA-256 of the object's content. */
    public static final String SHA_META = "pgproof-sha256";
    private static final int MAX_ATTEMPTS = 10;

    private final S3Options opt;
    private final S3Client s3;
    private final String root;

    public S3Storage(S3Options opt) {
        this.opt = opt;
        this.root = opt.prefix();
        this.s3 = client(opt);
    }

    /** The client: URL-connection HTTP, explicit timeouts, the SDK's standard retries with backoff bounded by the call timeout. */
    static S3Client client(S3Options opt) {
        UrlConnectionHttpClient.Builder http = UrlConnectionHttpClient.builder()
                .connectionTimeout(min(opt.attemptTimeout(), Duration.ofSeconds(10)))
                .socketTimeout(opt.attemptTimeout());
        AwsCredentialsProvider creds = opt.accessKey() != null
                ? StaticCredentialsProvider.create(AwsBasicCredentials.create(opt.accessKey(), opt.secretKey()))
                : DefaultCredentialsProvider.builder().build();
        S3ClientBuilder b = S3Client.builder()
                .httpClient(http.build())
                .region(Region.of(opt.region()))
                .credentialsProvider(creds)
                .forcePathStyle(opt.pathStyle())
                .overrideConfiguration(ClientOverrideConfiguration.builder()
                        .apiCallTimeout(opt.callTimeout())
                        .apiCallAttemptTimeout(opt.attemptTimeout())
                        .retryStrategy(AwsRetryStrategy.standardRetryStrategy().toBuilder()
                                .maxAttempts(MAX_ATTEMPTS)
                                .backoffStrategy(BackoffStrategy.exponentialDelay(Duration.ofMillis(100), Duration.ofSeconds(5)))
                                .throttlingBackoffStrategy(BackoffStrategy.exponentialDelay(Duration.ofSeconds(1), Duration.ofSeconds(20)))
                                .circuitBreakerEnabled(false)
                                .build())
                        .build());
        if (opt.endpoint() != null) {
            b.endpointOverride(URI.create(opt.endpoint()));
        }
        if (opt.checksumWhenRequired()) {
            b.requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                    .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED);
        }
        return b.build();
    }

    private static Duration min(Duration a, Duration b) {
        return a.compareTo(b) < 0 ? a : b;
    }

    public S3Options options() {
        return opt;
    }

    /** The raw client, for tests (e.g. listing multipart uploads). */
    public S3Client client() {
        return s3;
    }

    @Override
    public void close() {
        s3.close();
    }

    @Override
    public String describe() {
        return opt.url() + " (" + where() + ")";
    }

    @Override
    public String location() {
        return opt.url();
    }

    private String where() {
        return opt.endpoint() != null ? "endpoint " + opt.endpoint() : "AWS region " + opt.region();
    }

    /** The object key in the bucket for a storage key. */
    public String fullKey(String key) {
        if (key.isEmpty() || key.startsWith("/") || key.contains("..") || key.contains("//")) {
            throw new IllegalArgumentException("invalid storage key: " + key);
        }
        return root.isEmpty() ? key : root + "/" + key;
    }

    private String fullPrefix(String prefix) {
        if (prefix.startsWith("/") || prefix.contains("..")) {
            throw new IllegalArgumentException("invalid storage prefix: " + prefix);
        }
        return root.isEmpty() ? prefix : root + "/" + prefix;
    }

    private String relative(String fullKey) {
        return root.isEmpty() ? fullKey : fullKey.substring(root.length() + 1);
    }

    /** One line naming the operation, the object and the endpoint, with the SDK's reason. */
    private IOException failure(String op, String fullKey, SdkException e) {
        return new IOException("S3 " + op + " of s3://" + opt.bucket() + "/" + fullKey + " at " + where() + " failed: " + reason(e), e);
    }

    /** The SDK's message on one line (service errors carry code and status). */
    public static String reason(SdkException e) {
        String m = e.getMessage();
        if (e instanceof AwsServiceException) {
            AwsServiceException a = (AwsServiceException) e;
            String code = a.awsErrorDetails() == null ? null : a.awsErrorDetails().errorCode();
            m = (code != null && (m == null || !m.contains(code)) ? code + ": " : "") + m;
        }
        if (m == null) {
            m = e.getClass().getSimpleName();
        }
        return m.replaceAll("\\s*\\R\\s*", " ").strip();
    }

    private static boolean notFound(SdkException e) {
        return e instanceof AwsServiceException && ((AwsServiceException) e).statusCode() == 404;
    }

    /** Why a repository bucket cannot be used. */
    public enum Problem { NO_BUCKET, DENIED, UNREACHABLE, OTHER }

    /** A failed {@link #checkBucket}: {@link #problem()} says which kind. */
    public static final class BucketException extends IOException {
        private static final long serialVersionUID = 1L;
        private final Problem problem;

        BucketException(Problem problem, String message, Throwable cause) {
            super(message, cause);
            this.problem = problem;
        }

        public Problem problem() {
            return problem;
        }
    }

    /** Confirms the bucket exists and the credentials may use it (HEAD bucket). Never creates it. */
    public void checkBucket() throws BucketException {
        try {
            s3.headBucket(r -> r.bucket(opt.bucket()));
        } catch (SdkException e) {
            Problem p;
            if (e instanceof AwsServiceException) {
                int status = ((AwsServiceException) e).statusCode();
                p = status == 404 ? Problem.NO_BUCKET : status == 403 || status == 401 ? Problem.DENIED : Problem.OTHER;
            } else {
                String m = String.valueOf(e.getMessage()).toLowerCase(java.util.Locale.ROOT);
                p = m.contains("credential") ? Problem.DENIED : Problem.UNREACHABLE;
            }
            String what = switch (p) {
                case NO_BUCKET -> "bucket \"" + opt.bucket() + "\" does not exist at " + where();
                case DENIED -> "access to bucket \"" + opt.bucket() + "\" at " + where() + " was denied: " + reason(e);
                case UNREACHABLE -> "could not reach " + where() + " for bucket \"" + opt.bucket() + "\": " + reason(e);
                default -> "bucket \"" + opt.bucket() + "\" at " + where() + " could not be checked: " + reason(e);
            };
            throw new BucketException(p, what, e);
        }
    }

    @Override
    public InputStream open(String key) throws IOException {
        String fk = fullKey(key);
        InputStream in;
        try {
            in = s3.getObject(r -> r.bucket(opt.bucket()).key(fk));
        } catch (SdkException e) {
            if (notFound(e)) {
                throw new NoSuchFileException(key);
            }
            throw failure("GetObject", fk, e);
        }
        return new FilterInputStream(in) {
            @Override
            public int read() throws IOException {
                try {
                    return super.read();
                } catch (SdkException e) {
                    throw failure("GetObject (reading)", fk, e);
                }
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                try {
                    return super.read(b, off, len);
                } catch (SdkException e) {
                    throw failure("GetObject (reading)", fk, e);
                }
            }
        };
    }

    @Override
    public boolean exists(String key) throws IOException {
        return head(fullKey(key)) != null;
    }

    /** HEAD of an object; null if it does not exist. */
    private HeadObjectResponse head(String fk) throws IOException {
        try {
            return s3.headObject(r -> r.bucket(opt.bucket()).key(fk));
        } catch (SdkException e) {
            if (notFound(e)) {
                return null;
            }
            throw failure("HeadObject", fk, e);
        }
    }

    @Override
    public List<ObjectInfo> list(String prefix) throws IOException {
        String fp = fullPrefix(prefix);
        List<ObjectInfo> out = new ArrayList<>();
        try {
            for (ListObjectsV2Response page : s3.listObjectsV2Paginator(ListObjectsV2Request.builder().bucket(opt.bucket()).prefix(fp).build())) {
                for (S3Object o : page.contents()) {
                    out.add(new ObjectInfo(relative(o.key()), o.size()));
                }
            }
        } catch (SdkException e) {
            throw failure("ListObjectsV2", fp, e);
        }
        out.sort(Comparator.comparing(ObjectInfo::key));
        return out;
    }

    @Override
    public List<String> listPrefixes(String prefix) throws IOException {
        String fp = fullPrefix(prefix);
        List<String> out = new ArrayList<>();
        try {
            for (ListObjectsV2Response page : s3.listObjectsV2Paginator(
                    ListObjectsV2Request.builder().bucket(opt.bucket()).prefix(fp).delimiter("/").build())) {
                for (CommonPrefix p : page.commonPrefixes()) {
                    out.add(relative(p.prefix()));
                }
            }
        } catch (SdkException e) {
            throw failure("ListObjectsV2", fp, e);
        }
        out.sort(null);
        return out;
    }

    @Override
    public Writer create(String key) {
        return new S3Writer(key, fullKey(key));
    }

    @Override
    public void delete(String key) throws IOException {
        String fk = fullKey(key);
        try {
            s3.deleteObject(r -> r.bucket(opt.bucket()).key(fk));
        } catch (SdkException e) {
            if (!notFound(e)) {
                throw failure("DeleteObject", fk, e);
            }
        }
    }

    static MessageDigest digest(String algorithm) {
        try {
            return MessageDigest.getInstance(algorithm);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Buffers (memory, then a temporary file) while hashing; uploads and confirms at commit. */
    private final class S3Writer implements Writer {
        private final String key;
        private final String fk;
        private final MessageDigest sha = digest("SHA-256");
        private byte[] buf = new byte[1 << 16];
        private int len;
        private Path spill;
        private FileChannel spillChannel;
        private long size;
        private boolean done;
        private final OutputStream stream = new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int n) throws IOException {
                if (done) {
                    throw new IOException("writer of " + key + " already finished");
                }
                sha.update(b, off, n);
                size += n;
                if (spillChannel == null && len + (long) n <= opt.partSize()) {
                    if (len + n > buf.length) {
                        buf = java.util.Arrays.copyOf(buf, (int) Math.min(opt.partSize(), Math.max(2L * buf.length, len + (long) n)));
                    }
                    System.arraycopy(b, off, buf, len, n);
                    len += n;
                    return;
                }
                if (spillChannel == null) {
                    spill = Files.createTempFile("pgproof-s3-", ".part", PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
                    spillChannel = FileChannel.open(spill, StandardOpenOption.WRITE);
                    writeFully(ByteBuffer.wrap(buf, 0, len));
                    buf = null;
                    len = 0;
                }
                writeFully(ByteBuffer.wrap(b, off, n));
            }
        };

        S3Writer(String key, String fk) {
            this.key = key;
            this.fk = fk;
        }

        private void writeFully(ByteBuffer bb) throws IOException {
            while (bb.hasRemaining()) {
                spillChannel.write(bb);
            }
        }

        @Override
        public OutputStream stream() {
            return stream;
        }

        @Override
        public void commit(boolean noReplace) throws IOException {
            if (done) {
                throw new IllegalStateException("writer already finished: " + key);
            }
            done = true;
            String hex = HexFormat.of().formatHex(sha.digest());
            try {
                if (noReplace && head(fk) != null) {
                    throw new FileAlreadyExistsException(key, null, "already stored in " + opt.url());
                }
                TestHooks.pause("storage-before-rename", key);
                Map<String, String> meta = Map.of(SHA_META, hex);
                try {
                    if (spillChannel == null) {
                        putSingle(meta, noReplace);
                    } else {
                        putMultipart(meta, noReplace);
                    }
                } catch (SdkException e) {
                    // The SDK retries a request whose answer was lost (a reset connection, a timeout): the retry of a PUT
                    // with If-None-Match then gets 412, that of a completed CompleteMultipartUpload NoSuchUpload, though
                    // the first attempt stored the object. What is stored decides: our size and SHA-256, or not.
                    if (storedIsMine(hex)) {
                        return;
                    }
                    if (noReplace && e instanceof AwsServiceException && ((AwsServiceException) e).statusCode() == 412) {
                        throw new FileAlreadyExistsException(key, null, "already stored in " + opt.url() + " (If-None-Match)");
                    }
                    throw failure(spillChannel == null ? "PutObject" : "multipart upload", fk, e);
                }
                confirm(hex, noReplace);
            } finally {
                release();
            }
        }

        /** Whether the key holds an object of our size and SHA-256 (false also when the HEAD fails). */
        private boolean storedIsMine(String hex) {
            try {
                HeadObjectResponse h = head(fk);
                return h != null && h.contentLength() != null && h.contentLength() == size && hex.equals(h.metadata().get(SHA_META));
            } catch (IOException e) {
                return false;
            }
        }

        /** HEAD: the stored object must have our size and our SHA-256. */
        private void confirm(String hex, boolean noReplace) throws IOException {
            HeadObjectResponse h = head(fk);
            if (h == null) {
                throw new IOException("S3 object s3://" + opt.bucket() + "/" + fk + " at " + where() + " is missing right after its upload");
            }
            String stored = h.metadata().get(SHA_META);
            if (noReplace && stored != null && !stored.equals(hex)) {
                throw new FileAlreadyExistsException(key, null, "stored concurrently with other content in " + opt.url());
            }
            if (h.contentLength() == null || h.contentLength() != size || !hex.equals(stored)) {
                throw new IOException("S3 object s3://" + opt.bucket() + "/" + fk + " at " + where() + " does not match what was uploaded: "
                        + h.contentLength() + " bytes, " + SHA_META + " " + stored + "; expected " + size + " bytes, " + hex);
            }
        }

        private void putSingle(Map<String, String> meta, boolean noReplace) {
            PutObjectRequest.Builder r = PutObjectRequest.builder().bucket(opt.bucket()).key(fk).metadata(meta).contentLength(size);
            if (noReplace) {
                r.ifNoneMatch("*");
            }
            if (opt.storageClass() != null) {
                r.storageClass(opt.storageClass());
            }
            if (opt.sse() != null) {
                r.serverSideEncryption(opt.sse());
                if (opt.kmsKeyId() != null) {
                    r.ssekmsKeyId(opt.kmsKeyId());
                }
            }
            if (opt.checksumWhenRequired()) {
                r.contentMD5(md5(buf, 0, len));
            }
            byte[] data = buf;
            int n = len;
            s3.putObject(r.build(), RequestBody.fromContentProvider(() -> new ByteArrayInputStream(data, 0, n), n, "application/octet-stream"));
        }

        private void putMultipart(Map<String, String> meta, boolean noReplace) throws IOException {
            CreateMultipartUploadRequest.Builder c = CreateMultipartUploadRequest.builder().bucket(opt.bucket()).key(fk).metadata(meta);
            if (opt.storageClass() != null) {
                c.storageClass(opt.storageClass());
            }
            if (opt.sse() != null) {
                c.serverSideEncryption(opt.sse());
                if (opt.kmsKeyId() != null) {
                    c.ssekmsKeyId(opt.kmsKeyId());
                }
            }
            boolean crc = !opt.checksumWhenRequired();
            if (crc) {
                c.checksumAlgorithm(ChecksumAlgorithm.CRC32);
            }
            String uploadId = s3.createMultipartUpload(c.build()).uploadId();
            boolean completed = false;
            int parts = (int) ((size + opt.partSize() - 1) / opt.partSize());
            ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, Math.min(opt.uploadThreads(), parts)), r -> {
                Thread t = new Thread(r, "s3-upload");
                t.setDaemon(true);
                return t;
            });
            try {
                List<Future<CompletedPart>> futures = new ArrayList<>();
                for (int i = 0; i < parts; i++) {
                    int number = i + 1;
                    long offset = (long) i * opt.partSize();
                    int partLen = (int) Math.min(opt.partSize(), size - offset);
                    futures.add(pool.submit(() -> uploadPart(uploadId, number, offset, partLen, crc)));
                }
                List<CompletedPart> done = new ArrayList<>();
                for (Future<CompletedPart> f : futures) {
                    done.add(f.get());
                }
                CompleteMultipartUploadRequest.Builder r = CompleteMultipartUploadRequest.builder().bucket(opt.bucket()).key(fk)
                        .uploadId(uploadId).multipartUpload(m -> m.parts(done));
                if (noReplace) {
                    r.ifNoneMatch("*");
                }
                // An error in the body of a 200 answer is raised by the SDK as an S3Exception; the HEAD in confirm() checks again.
                s3.completeMultipartUpload(r.build());
                completed = true;
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                if (cause instanceof SdkException) {
                    throw (SdkException) cause;
                }
                if (cause instanceof IOException) {
                    throw (IOException) cause;
                }
                throw new IOException("uploading a part of " + fk + " failed: " + cause, cause);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted while uploading " + fk);
            } finally {
                pool.shutdownNow();
                if (!completed) {
                    try {
                        pool.awaitTermination(opt.attemptTimeout().toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    abort(uploadId);
                }
            }
        }

        private CompletedPart uploadPart(String uploadId, int number, long offset, int partLen, boolean crc) throws IOException {
            byte[] part = new byte[partLen];
            ByteBuffer bb = ByteBuffer.wrap(part);
            try (FileChannel ch = FileChannel.open(spill, StandardOpenOption.READ)) {
                while (bb.hasRemaining()) {
                    if (ch.read(bb, offset + bb.position()) < 0) {
                        throw new IOException("temporary file " + spill + " is shorter than expected");
                    }
                }
            }
            UploadPartRequest.Builder r = UploadPartRequest.builder().bucket(opt.bucket()).key(fk).uploadId(uploadId).partNumber(number)
                    .contentLength((long) partLen);
            if (crc) {
                r.checksumAlgorithm(ChecksumAlgorithm.CRC32);
            } else {
                r.contentMD5(md5(part, 0, partLen));
            }
            UploadPartResponse resp = s3.uploadPart(r.build(),
                    RequestBody.fromContentProvider(() -> new ByteArrayInputStream(part), partLen, "application/octet-stream"));
            CompletedPart.Builder p = CompletedPart.builder().partNumber(number).eTag(resp.eTag());
            if (crc) {
                p.checksumCRC32(resp.checksumCRC32());
            }
            return p.build();
        }

        private void abort(String uploadId) {
            try {
                s3.abortMultipartUpload(r -> r.bucket(opt.bucket()).key(fk).uploadId(uploadId));
            } catch (SdkException e) {
                if (notFound(e)) {
                    return; // NoSuchUpload: completed after all (a lost answer), or aborted already
                }
                Log.warn("could not abort the multipart upload of s3://%s/%s (%s); it stays invisible, and the bucket's lifecycle rule "
                        + "for incomplete multipart uploads removes it", opt.bucket(), fk, reason(e));
            }
        }

        private void release() throws IOException {
            buf = null;
            if (spillChannel != null) {
                try {
                    spillChannel.close();
                } finally {
                    Files.deleteIfExists(spill);
                    spillChannel = null;
                }
            }
        }

        @Override
        public void close() throws IOException {
            if (done) {
                return;
            }
            done = true;
            release();
        }
    }

    static String md5(byte[] b, int off, int n) {
        MessageDigest md = digest("MD5");
        md.update(b, off, n);
        return Base64.getEncoder().encodeToString(md.digest());
    }
}
