package dev.pgproof.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/**
 * Writes one contiguous range of a file, in order, from a start position. With a direct channel
 * (opened with {@code ExtendedOpenOption.DIRECT}) bytes gather in an aligned buffer and go out in
 * whole aligned blocks, bypassing the page cache: no copy into it, no dirty pages for the kernel
 * to throttle and write back, and a restore does not evict the cache of a cluster running beside
 * it. The start must then be aligned, and so must the range's end unless it is the file's end,
 * where the last block goes out padded with zeros: the caller cuts the file to its size.
 * Without a direct buffer, bytes go straight to the channel at their position.
 */
public final class RangeWriter {
    private final FileChannel ch;
    private final ByteBuffer aligned;
    private final int alignment;
    private long position;

    /** aligned: null for a channel opened without DIRECT; else an aligned direct buffer, a multiple of alignment long. */
    public RangeWriter(FileChannel ch, ByteBuffer aligned, int alignment, long start) {
        if (aligned != null && (start % alignment != 0 || aligned.capacity() % alignment != 0)) {
            throw new IllegalArgumentException("direct write at " + start + " with a buffer of " + aligned.capacity() + " bytes, not aligned to "
                    + alignment);
        }
        this.ch = ch;
        this.aligned = aligned;
        this.alignment = alignment;
        this.position = start;
        if (aligned != null) {
            aligned.clear();
        }
    }

    /** An aligned direct buffer of at least size bytes, for {@link #RangeWriter}. */
    public static ByteBuffer alignedBuffer(int size, int alignment) {
        return ByteBuffer.allocateDirect(size + alignment).alignedSlice(alignment).limit(size).slice();
    }

    public void write(byte[] b, int off, int len) throws IOException {
        if (aligned == null) {
            ByteBuffer src = ByteBuffer.wrap(b, off, len);
            while (src.hasRemaining()) {
                position += ch.write(src, position);
            }
            return;
        }
        while (len > 0) {
            int k = Math.min(len, aligned.remaining());
            aligned.put(b, off, k);
            off += k;
            len -= k;
            if (!aligned.hasRemaining()) {
                flush();
            }
        }
    }

    /**
     * Writes what is gathered. A direct writer pads an incomplete last block with zeros (allowed only at the file's
     * end, which the caller then cuts to the file's size).
     */
    public void finish() throws IOException {
        if (aligned == null || aligned.position() == 0) {
            return;
        }
        int tail = aligned.position() % alignment;
        if (tail != 0) {
            for (int i = tail; i < alignment; i++) {
                aligned.put((byte) 0);
            }
        }
        flush();
    }

    private void flush() throws IOException {
        aligned.flip();
        while (aligned.hasRemaining()) {
            position += ch.write(aligned, position);
        }
        aligned.clear();
    }
}
