package dev.pgproof.wal;

/**
 * The checksum of POSIX {@code cksum} (CRC-32, polynomial 0x04C11DB7, most significant bit first,
 * the length appended, the result inverted), so that a shell can re-check a file with the
 * coreutils command, which is many times faster than {@code sha256sum}.
 */
public final class Cksum {
    private static final int[] TABLE = new int[256];

    static {
        for (int i = 0; i < 256; i++) {
            int c = i << 24;
            for (int k = 0; k < 8; k++) {
                c = (c & 0x80000000) != 0 ? (c << 1) ^ 0x04C11DB7 : c << 1;
            }
            TABLE[i] = c;
        }
    }

    private Cksum() {}

    /** The unsigned checksum, as {@code cksum} prints it. */
    public static long of(byte[] data) {
        int crc = 0;
        for (byte b : data) {
            crc = (crc << 8) ^ TABLE[((crc >>> 24) ^ b) & 0xFF];
        }
        for (long len = data.length; len != 0; len >>>= 8) {
            crc = (crc << 8) ^ TABLE[((crc >>> 24) ^ (int) len) & 0xFF];
        }
        return ~crc & 0xFFFFFFFFL;
    }
}
