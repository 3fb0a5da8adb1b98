package dev.pgproof.backup;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * PostgreSQL's data page checksum ({@code pd_checksum}), written from the algorithm PostgreSQL
 * documents in {@code src/include/storage/checksum_impl.h}: the page is read as rows of 32
 * little-endian 32-bit words; 32 running sums, each seeded with its own fixed offset, absorb one
 * column each with an FNV-1a step that also folds in the high bits ({@code t = sum ^ word;
 * sum = t * FNV_PRIME ^ (t >>> 17)}); two more rounds with zero words follow; the sums are
 * XORed together, XORed with the block number in the relation, and the result is reduced to
 * 1..65535. The checksum field itself counts as zero. Integers in pages are little-endian here
 * (PgControl refuses a big-endian pg_control).
 *
 * <p>Page header fields used: {@code pd_lsn} (bytes 0 to 7: high 32 bits, then low 32 bits),
 * {@code pd_checksum} (bytes 8 and 9), {@code pd_upper} (bytes 14 and 15; zero on a new page).
 */
public final class PageChecksum {
    /** The number of parallel sums: a fixed part of the algorithm. */
    private static final int N_SUMS = 32;
    /** The 32-bit FNV prime. */
    private static final int FNV_PRIME = 16777619;
    /** The seeds of the 32 sums (values fixed by PostgreSQL's on-disk format). */
    private static final int[] SEEDS = {
        0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A, 0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
        0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA, 0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
        0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE, 0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
        0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E, 0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
    };
    private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle SHORT = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);

    private PageChecksum() {}

    /**
     * The checksum PostgreSQL stores in a page of {@code size} bytes at {@code page[off]} that is
     * block {@code blockNumber} of its relation fork (segment number x blocks per segment + block in
     * the segment file), 1 to 65535. {@code size} is a multiple of 128 (the block size).
     */
    public static int compute(byte[] page, int off, int size, long blockNumber) {
        int[] sums = SEEDS.clone();
        // Row 0 holds the header: its word 2 is pd_checksum (low half) and pd_flags (high half).
        for (int j = 0; j < N_SUMS; j++) {
            int w = (int) INT.get(page, off + 4 * j);
            if (j == 2) {
                w &= 0xFFFF0000;
            }
            int t = sums[j] ^ w;
            sums[j] = t * FNV_PRIME ^ (t >>> 17);
        }
        int rows = size / (4 * N_SUMS);
        for (int i = 1; i < rows; i++) {
            int base = off + i * 4 * N_SUMS;
            for (int j = 0; j < N_SUMS; j++) {
                int t = sums[j] ^ (int) INT.get(page, base + 4 * j);
                sums[j] = t * FNV_PRIME ^ (t >>> 17);
            }
        }
        int result = 0;
        for (int j = 0; j < N_SUMS; j++) {
            int s = sums[j];
            for (int round = 0; round < 2; round++) {
                s = s * FNV_PRIME ^ (s >>> 17); // a round with a zero word: t = s ^ 0
            }
            result ^= s;
        }
        result ^= (int) blockNumber;
        return (int) (Integer.toUnsignedLong(result) % 65535) + 1;
    }

    /** The {@code pd_checksum} stored in the page at {@code page[off]}. */
    public static int stored(byte[] page, int off) {
        return Short.toUnsignedInt((short) SHORT.get(page, off + 8));
    }

    /** The page's {@code pd_lsn}, as a 64-bit LSN. */
    public static long lsn(byte[] page, int off) {
        long hi = Integer.toUnsignedLong((int) INT.get(page, off));
        long lo = Integer.toUnsignedLong((int) INT.get(page, off + 4));
        return hi << 32 | lo;
    }

    /**
     * Whether the page is new and valid: all zeros, as PostgreSQL writes a page when it extends a
     * relation. (A page with {@code pd_upper} zero but other bytes set is not valid; PostgreSQL's own
     * check refuses it too, and its checksum is checked like any other page's.)
     */
    public static boolean isZero(byte[] page, int off, int size) {
        if ((short) SHORT.get(page, off + 14) != 0) {
            return false; // pd_upper set: an initialised page, the common case
        }
        for (int i = 0; i < size; i += 8) {
            if ((long) LONG.get(page, off + i) != 0) {
                return false;
            }
        }
        return true;
    }
}
