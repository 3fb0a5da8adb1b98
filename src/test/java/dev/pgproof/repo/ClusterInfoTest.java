package dev.pgproof.repo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.io.Compression;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import org.junit.jupiter.api.Test;

class ClusterInfoTest {
    private static final ClusterIdentity ID = new ClusterIdentity(-1L, 15, 16 << 20, 8192, 8192, true);

    @Test
    void roundTrip_keepsUnsignedSystemIdentifier() {
        String text = ClusterInfo.render("main", ID, "/data");
        assertThat(text).contains("system-identifier=18446744073709551615\n");
        assertThat(ClusterInfo.parse(text, "x")).isEqualTo(ID);
    }

    @Test
    void damagedPin_isRefused() {
        String text = ClusterInfo.render("main", ID, "/data").replace("pg-version=15", "pg-version=16");
        assertThatThrownBy(() -> ClusterInfo.parse(text, "/r/main/cluster.info")).isInstanceOf(PgproofException.class)
                .hasMessage("cluster identity file \"/r/main/cluster.info\" is damaged (checksum mismatch)")
                .satisfies(e -> assertThat(((PgproofException) e).exitCode()).isEqualTo(ExitCode.REPOSITORY));
    }

    @Test
    void everyCompression_roundTrips() throws Exception {
        byte[] data = new byte[3 << 20];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i * 31 % 251 < 100 ? 0 : i);
        }
        for (Compression c : Compression.values()) {
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            try (OutputStream out = c.compress(buf, c.defaultLevel)) {
                out.write(data);
            }
            byte[] back = c.decompress(new ByteArrayInputStream(buf.toByteArray())).readAllBytes();
            assertThat(back).as(c.id).isEqualTo(data);
        }
    }
}
