package dev.pgproof.wal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.cluster.PgControl;
import dev.pgproof.cluster.PgControlTest.Postgres;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Tests {@link WalHeader} on synthetic headers and on segments of real PostgreSQL 15 clusters. */
class WalHeaderTest {

    @TempDir
    Path tempDir;

    private static byte[] header(int magic, int info, int tli, long pageAddr, long sysid, int segSize, int blcksz) {
        ByteBuffer buf = ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN);
        buf.putShort(0, (short) magic).putShort(2, (short) info).putInt(4, tli).putLong(8, pageAddr)
                .putInt(16, 0x1234).putLong(24, sysid).putInt(32, segSize).putInt(36, blcksz);
        return buf.array();
    }

    @Test
    void parsesALongHeader() throws IOException {
        byte[] bytes = header(0xD110, 0x0002 | 0x0004, 3, 0x1_0300_0000L, -2L, 16 << 20, 8192);
        WalHeader h = WalHeader.parse(bytes, "seg");
        assertThat(h).isEqualTo(new WalHeader(0xD110, 0x0006, 3, 0x1_0300_0000L, -2L, 16 << 20, 8192));
        assertThat(h.majorVersion()).isEqualTo(15);
        assertThat(h.isLongHeader()).isTrue();
        // extra bytes beyond the header are ignored
        assertThat(WalHeader.parse(Arrays.copyOf(bytes, 8192), "seg")).isEqualTo(h);
    }

    @Test
    void knowsTheMagicOfEachSupportedVersion() throws IOException {
        assertThat(WalHeader.magicByMajor()).containsExactly(
                Map.entry(13, 0xD106), Map.entry(14, 0xD10D), Map.entry(15, 0xD110), Map.entry(16, 0xD113));
        for (Map.Entry<Integer, Integer> e : WalHeader.magicByMajor().entrySet()) {
            WalHeader h = WalHeader.parse(header(e.getValue(), 2, 1, 0, 1, 16 << 20, 8192), "s");
            assertThat(h.majorVersion()).isEqualTo(e.getKey());
        }
        assertThat(new WalHeader(0xD101, 2, 1, 0, 0, 0, 0).majorVersion()).isNull();
    }

    @Test
    void rejectsTooShort() {
        assertThatThrownBy(() -> WalHeader.parse(new byte[39], "/a/000000010000000000000001"))
                .isInstanceOf(IOException.class)
                .hasMessage("file \"/a/000000010000000000000001\" is too short for a WAL segment header: "
                        + "39 bytes, expected 40");
    }

    @Test
    void rejectsAShortHeader() {
        assertThatThrownBy(() -> WalHeader.parse(header(0xD110, 0x0001, 1, 0x2000, 1, 16 << 20, 8192), "p"))
                .isInstanceOf(IOException.class)
                .hasMessage("file \"p\" does not start with a WAL long page header: "
                        + "xlp_info 0x0001 lacks XLP_LONG_HEADER");
    }

    @Test
    void rejectsUnknownMagic() {
        assertThatThrownBy(() -> WalHeader.parse(header(0xD0FF, 2, 1, 0, 1, 16 << 20, 8192), "m"))
                .isInstanceOf(IOException.class)
                .hasMessage("file \"m\" has unknown WAL page magic 0xD0FF, known: 0xD106 (PostgreSQL 13), "
                        + "0xD10D (PostgreSQL 14), 0xD110 (PostgreSQL 15), 0xD113 (PostgreSQL 16)");
        assertThatThrownBy(() -> WalHeader.parse(new byte[40], "zeros")).hasMessageContaining("unknown WAL page magic 0x0000");
    }

    @Test
    void realSegmentsMatchPgControl() throws Exception {
        Path work = Postgres.workDir(tempDir);
        for (String[] options : new String[][] {{}, {"--wal-segsize=64"}}) {
            Path dataDir = Postgres.initdb(work, "wal" + options.length, options);
            PgControl control = PgControl.read(dataDir);
            int segSize = control.walSegmentSize();
            long segNo = WalFileName.segmentOf(control.checkpointLsn(), segSize);
            String name = WalFileName.segmentName(control.timeline(), segNo, segSize);
            Path segment = dataDir.resolve("pg_wal").resolve(name);
            assertThat(segment).exists().hasSize(segSize);

            WalHeader h = WalHeader.read(segment);
            assertThat(h.magic()).isEqualTo(0xD110);
            assertThat(h.majorVersion()).isEqualTo(15).isEqualTo(PgControl.majorVersion(dataDir));
            assertThat(h.systemIdentifier()).isEqualTo(control.systemIdentifier());
            assertThat(h.timeline()).isEqualTo(control.timeline()).isEqualTo(WalFileName.timeline(name));
            assertThat(h.pageAddress()).isEqualTo(WalFileName.segmentStartLsn(name, segSize));
            assertThat(WalFileName.segmentName(h.timeline(), WalFileName.segmentOf(h.pageAddress(), segSize), segSize))
                    .isEqualTo(name);
            assertThat(h.segmentSize()).isEqualTo(segSize);
            assertThat(h.walBlockSize()).isEqualTo(control.walBlockSize());
            assertThat(h.isLongHeader()).isTrue();
        }
    }

    @Test
    void readNamesTheFileWhenTooShort() throws IOException {
        Path file = Files.write(tempDir.resolve("000000010000000000000001"), new byte[10]);
        assertThatThrownBy(() -> WalHeader.read(file)).hasMessageContaining("file \"" + file + "\" is too short");
    }
}
