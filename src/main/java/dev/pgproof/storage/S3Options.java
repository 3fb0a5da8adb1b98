package dev.pgproof.storage;

import java.time.Duration;

/**
 * Everything {@link S3Storage} needs, resolved by the caller from pgproof's settings (this package
 * knows nothing of the configuration).
 *
 * @param bucket        the bucket (must exist: pgproof never creates buckets)
 * @param prefix        key prefix of the repository root inside the bucket, without leading or trailing '/' ("" for the bucket root)
 * @param endpoint      endpoint URL of an S3-compatible store, or null for AWS
 * @param region        signing region
 * @param pathStyle     path-style requests instead of virtual-host style
 * @param storageClass  storage class of new objects, or null
 * @param sse           "AES256", "aws:kms" or null
 * @param kmsKeyId      KMS key for aws:kms, or null
 * @param checksumWhenRequired only send/validate request checksums when the operation requires them
 * @param accessKey     static credentials, or null for the SDK's default credential chain
 * @param secretKey     static credentials, or null
 * @param attemptTimeout one request attempt (also the HTTP connect and socket timeout)
 * @param callTimeout   one operation with all its retries
 * @param partSize      multipart part size; objects up to this size are one PUT
 * @param uploadThreads parts of one object uploaded at once
 */
public record S3Options(String bucket, String prefix, String endpoint, String region, boolean pathStyle, String storageClass,
        String sse, String kmsKeyId, boolean checksumWhenRequired, String accessKey, String secretKey, Duration attemptTimeout,
        Duration callTimeout, int partSize, int uploadThreads) {

    public static final int DEFAULT_PART_SIZE = 16 << 20;
    public static final int DEFAULT_UPLOAD_THREADS = 4;

    /** Splits "s3://bucket/some/prefix/" into bucket and prefix; null if it is not such a URL. */
    public static String[] parseUrl(String url) {
        if (url == null || !url.startsWith("s3://")) {
            return null;
        }
        String rest = url.substring("s3://".length());
        int slash = rest.indexOf('/');
        String bucket = slash < 0 ? rest : rest.substring(0, slash);
        String prefix = slash < 0 ? "" : rest.substring(slash + 1);
        while (prefix.endsWith("/")) {
            prefix = prefix.substring(0, prefix.length() - 1);
        }
        while (prefix.startsWith("/")) {
            prefix = prefix.substring(1);
        }
        return new String[] {bucket, prefix};
    }

    /** "s3://bucket/prefix": the repository as the user names it. */
    public String url() {
        return "s3://" + bucket + (prefix.isEmpty() ? "" : "/" + prefix);
    }

    public S3Options withPartSize(int size) {
        return new S3Options(bucket, prefix, endpoint, region, pathStyle, storageClass, sse, kmsKeyId, checksumWhenRequired, accessKey,
                secretKey, attemptTimeout, callTimeout, size, uploadThreads);
    }

    @Override
    public String toString() {
        // never the secret key
        return "S3Options[" + url() + ", endpoint " + endpoint + ", region " + region + "]";
    }
}
