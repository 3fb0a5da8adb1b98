package dev.pgproof.io;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** Checksum helpers: SHA-256, pgproof's checksum for every stored file, and XXH64. */
public final class Hashes {
    private Hashes() {}

    public static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    public static String hex(byte[] digest) {
        return HexFormat.of().formatHex(digest);
    }

    public static String sha256Hex(byte[] data) {
        return hex(sha256().digest(data));
    }

    /** XXH64 (seed 0; lz4-java's native build where it loads, else its Java one): the fast 64-bit hash of a piece. */
    private static final net.jpountz.xxhash.XXHashFactory XXHASH = net.jpountz.xxhash.XXHashFactory.fastestInstance();

    /** The XXH64 of b[off, off + len). */
    public static long xxh64(byte[] b, int off, int len) {
        return XXHASH.hash64().hash(b, off, len, 0);
    }

    /** A running XXH64 (seed 0); close it when done. */
    public static net.jpountz.xxhash.StreamingXXHash64 xxh64() {
        return XXHASH.newStreamingHash64(0);
    }
}
