package dev.pgproof.io;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.Random;
import net.jpountz.lz4.LZ4FrameOutputStream;
import org.junit.jupiter.api.Test;

/** Every compression reads back what it wrote, and lz4 still reads the 4 MiB-block frames of older backups. */
class CompressionTest {
    /** 3 MiB: half random, half repeated text, so that matches cross lz4's 64 KiB blocks. */
    private static byte[] sample() {
        byte[] b = new byte[3 << 20];
        new Random(42).nextBytes(b);
        byte[] text = "pgbench_accounts row 0000000000 abalance 0 filler ".getBytes();
        for (int i = b.length / 2; i < b.length; i++) {
            b[i] = text[i % text.length];
        }
        return b;
    }

    private static byte[] readAll(InputStream in) throws IOException {
        try (in) {
            return in.readAllBytes();
        }
    }

    @Test
    void everyCompressionReadsBackWhatItWrote() throws IOException {
        byte[] data = sample();
        for (Compression c : Compression.values()) {
            ByteArrayOutputStream sink = new ByteArrayOutputStream();
            try (OutputStream out = c.compress(sink, c == Compression.GZIP ? 6 : 3)) {
                out.write(data, 0, 1000);   // in uneven writes
                out.write(data, 1000, data.length - 1000);
            }
            if (c != Compression.NONE) {
                assertThat(sink.size()).as(c + " compresses the repeated half").isLessThan(data.length * 3 / 4);
            }
            assertThat(readAll(c.decompress(new ByteArrayInputStream(sink.toByteArray())))).as(c.toString()).isEqualTo(data);
        }
    }

    /** A chunk compressed whole (zstd's one call) is read by the same reader as a stream's frame, from the offset given. */
    @Test
    void zstdCompressedWholeReadsBackThroughTheStream() throws IOException {
        byte[] data = sample();
        assertThat(Compression.ZSTD.compressesWhole()).isTrue();
        assertThat(Compression.LZ4.compressesWhole()).isFalse();
        for (int len : new int[] {0, 1, 8192, data.length - 5}) {
            byte[] out = new byte[Compression.bound(len)];
            int n = Compression.ZSTD.compressWhole(data, 5, len, out, 3);
            byte[] back = readAll(Compression.ZSTD.decompress(new ByteArrayInputStream(out, 0, n)));
            assertThat(back).as("%d bytes", len).isEqualTo(java.util.Arrays.copyOfRange(data, 5, 5 + len));
        }
        byte[] small = new byte[10];
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Compression.ZSTD.compressWhole(data, 0, data.length, small, 3))
                .isInstanceOf(IOException.class).hasMessageStartingWith("zstd compression failed: ");
    }

    @Test
    void lz4ReadsFramesWithFourMebibyteBlocks() throws IOException {
        byte[] data = sample();
        ByteArrayOutputStream sink = new ByteArrayOutputStream();
        try (OutputStream out = new LZ4FrameOutputStream(sink, LZ4FrameOutputStream.BLOCKSIZE.SIZE_4MB)) {
            out.write(data);
        }
        assertThat(readAll(Compression.LZ4.decompress(new ByteArrayInputStream(sink.toByteArray())))).isEqualTo(data);
    }
}
