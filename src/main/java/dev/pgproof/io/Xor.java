package dev.pgproof.io;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/** XOR of byte ranges, eight bytes at a time: how a block is stored as its difference from an earlier version. */
public final class Xor {
    private static final VarHandle LONGS = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    private Xor() {}

    /** into[0, into.length) ^= from[fromOffset, fromOffset + into.length). */
    public static void apply(byte[] into, byte[] from, int fromOffset) {
        apply(into, 0, from, fromOffset, into.length);
    }

    /** into[at, at + len) ^= from[fromOffset, fromOffset + len). */
    public static void apply(byte[] into, int at, byte[] from, int fromOffset, int len) {
        int i = 0;
        for (; i + 8 <= len; i += 8) {
            LONGS.set(into, at + i, (long) LONGS.get(into, at + i) ^ (long) LONGS.get(from, fromOffset + i));
        }
        for (; i < len; i++) {
            into[at + i] ^= from[fromOffset + i];
        }
    }
}
