package dev.pgproof.wal;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import org.junit.jupiter.api.Test;

class CksumTest {
    @Test
    void matchesThePosixCheckValue() {
        assertThat(Cksum.of("123456789".getBytes(StandardCharsets.US_ASCII))).isEqualTo(930766865L);
        assertThat(Cksum.of(new byte[0])).isEqualTo(4294967295L);
    }

    @Test
    void matchesTheCoreutilsCommandOnRandomData() throws IOException, InterruptedException {
        byte[] data = new byte[1 << 20];
        new Random(42).nextBytes(data);
        Process p = new ProcessBuilder("cksum").start();
        p.getOutputStream().write(data);
        p.getOutputStream().close();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        p.getInputStream().transferTo(out);
        assertThat(p.waitFor()).isZero();
        assertThat(out.toString(StandardCharsets.US_ASCII).strip()).isEqualTo(Cksum.of(data) + " " + data.length);
    }
}
