package dev.pgproof.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.nio.file.ExtendedOpenOption;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Direct writes of ranges of one file, as restore's jobs write the parts of a large file: the file
 * read back is byte for byte what was written, whatever the sizes of the writes, once it is cut to
 * its size. Runs under target/ (the checkout's file system), which takes direct I/O on the CI machine.
 */
class RangeWriterTest {
    private Path dir;

    @BeforeEach
    void dir() throws Exception {
        dir = Files.createTempDirectory(Files.createDirectories(Path.of("target")), "range-writer");
    }

    @AfterEach
    void clean() throws Exception {
        try (var s = Files.list(dir)) {
            for (Path p : s.toList()) {
                Files.delete(p);
            }
        }
        Files.delete(dir);
    }

    @Test
    void rangesWrittenDirectInAnyOrderMakeTheFile() throws Exception {
        Path file = dir.resolve("f");
        int alignment = (int) Files.getFileStore(dir).getBlockSize();
        byte[] content = new byte[5 * alignment + 1234];   // the last block is partial
        new Random(7).nextBytes(content);
        int split = 3 * alignment;
        ByteBuffer buffer = RangeWriter.alignedBuffer(2 * alignment, alignment);
        // The second range first, as another job may write it; then the first.
        writeDirect(file, content, split, content.length, buffer, alignment);
        writeDirect(file, content, 0, split, buffer, alignment);
        assertThat(Files.size(file)).isEqualTo(6L * alignment);   // padded to the block
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(content.length);
        }
        assertThat(Files.readAllBytes(file)).isEqualTo(content);
    }

    @Test
    void withoutADirectBufferBytesGoWhereTheyBelong() throws Exception {
        Path file = dir.resolve("g");
        byte[] content = new byte[10_000];
        new Random(8).nextBytes(content);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            RangeWriter second = new RangeWriter(ch, null, 0, 3333);
            second.write(content, 3333, content.length - 3333);
            second.finish();
            RangeWriter first = new RangeWriter(ch, null, 0, 0);
            first.write(content, 0, 3333);
            first.finish();
        }
        assertThat(Files.readAllBytes(file)).isEqualTo(content);
    }

    @Test
    void aDirectRangeMustStartAligned() {
        ByteBuffer buffer = RangeWriter.alignedBuffer(8192, 4096);
        assertThatThrownBy(() -> new RangeWriter(null, buffer, 4096, 100)).isInstanceOf(IllegalArgumentException.class);
    }

    /** Writes content[from, to) at from, in writes of odd sizes that straddle the buffer's blocks. */
    private static void writeDirect(Path file, byte[] content, int from, int to, ByteBuffer buffer, int alignment) throws Exception {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, ExtendedOpenOption.DIRECT)) {
            RangeWriter w = new RangeWriter(ch, buffer, alignment, from);
            for (int at = from; at < to; at += 777) {
                w.write(content, at, Math.min(777, to - at));
            }
            w.finish();
        }
    }
}
