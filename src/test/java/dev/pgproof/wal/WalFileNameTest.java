package dev.pgproof.wal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.wal.WalFileName.Kind;
import org.junit.jupiter.api.Test;

/** Tests {@link WalFileName}. */
class WalFileNameTest {

    private static final int MB = 1024 * 1024;

    @Test
    void kinds() {
        assertThat(WalFileName.kindOf("000000010000000000000001")).isEqualTo(Kind.SEGMENT);
        assertThat(WalFileName.kindOf("0000000A00000001000000FF")).isEqualTo(Kind.SEGMENT);
        assertThat(WalFileName.kindOf("000000010000000000000001.partial")).isEqualTo(Kind.PARTIAL);
        assertThat(WalFileName.kindOf("00000002.history")).isEqualTo(Kind.HISTORY);
        assertThat(WalFileName.kindOf("000000010000000000000002.00000028.backup")).isEqualTo(Kind.BACKUP_HISTORY);
        assertThat(WalFileName.isWalFileName("00000002.history")).isTrue();
        assertThat(WalFileName.isWalFileName("archive_status")).isFalse();
    }

    @Test
    void rejectsOtherNames() {
        for (String bad : new String[] {"", "archive_status", "00000001000000000000000", "0000000100000000000000011",
                "00000001000000000000000a", "000000010000000000000001.PARTIAL", "000000010000000000000001.part",
                "00000001.partial", "0000002.history", "000000002.history", "0000000a.history",
                "000000010000000000000002.0000028.backup", "000000010000000000000002.backup",
                "000000010000000000000001.gz", " 000000010000000000000001", "000000010000000000000001\n"}) {
            assertThatThrownBy(() -> WalFileName.kindOf(bad))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("not a WAL file name");
            assertThat(WalFileName.isWalFileName(bad)).isFalse();
        }
        assertThatThrownBy(() -> WalFileName.kindOf(null)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void timelineOfEveryKind() {
        assertThat(WalFileName.timeline("0000000A0000000000000001")).isEqualTo(10);
        assertThat(WalFileName.timeline("0000001F0000000000000001.partial")).isEqualTo(31);
        assertThat(WalFileName.timeline("00000002.history")).isEqualTo(2);
        assertThat(WalFileName.timeline("000000030000000000000002.00000028.backup")).isEqualTo(3);
        assertThatThrownBy(() -> WalFileName.timeline("x.history")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void segmentNumbers() {
        assertThat(WalFileName.segmentNumber("000000010000000000000003", 16 * MB)).isEqualTo(3);
        assertThat(WalFileName.segmentNumber("000000010000000100000000", 16 * MB)).isEqualTo(256);
        assertThat(WalFileName.segmentNumber("0000000100000001000000FF", 16 * MB)).isEqualTo(511);
        assertThat(WalFileName.segmentNumber("00000001000000010000007F", 32 * MB)).isEqualTo(255);
        assertThat(WalFileName.segmentNumber("000000010000000200000003", 1024 * MB)).isEqualTo(11);
        assertThat(WalFileName.segmentNumber("000000010000000100000FFF", MB)).isEqualTo(0x1FFF);
        assertThat(WalFileName.segmentNumber("000000020000000000000005.partial", 16 * MB)).isEqualTo(5);
        assertThat(WalFileName.segmentNumber("000000010000000000000002.00000028.backup", 16 * MB)).isEqualTo(2);
        assertThatThrownBy(() -> WalFileName.segmentNumber("00000002.history", 16 * MB))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("history");
        // with 32 MB segments there are only 0x80 segments per "log" id
        assertThatThrownBy(() -> WalFileName.segmentNumber("000000010000000000000080", 32 * MB))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("must be below 80");
        assertThatThrownBy(() -> WalFileName.segmentNumber("000000010000000000000001", 3 * MB))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("invalid WAL segment size");
    }

    @Test
    void segmentNames() {
        assertThat(WalFileName.segmentName(1, 1, 16 * MB)).isEqualTo("000000010000000000000001");
        assertThat(WalFileName.segmentName(1, 256, 16 * MB)).isEqualTo("000000010000000100000000");
        assertThat(WalFileName.segmentName(10, 255, 32 * MB)).isEqualTo("0000000A000000010000007F");
        assertThat(WalFileName.segmentName(1, (1L << 40) - 1, 16 * MB)).isEqualTo("00000001FFFFFFFF000000FF");
        assertThat(WalFileName.segmentName(-1, 0, 16 * MB)).isEqualTo("FFFFFFFF0000000000000000");
        assertThatThrownBy(() -> WalFileName.segmentName(1, -1, 16 * MB)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> WalFileName.segmentName(1, 1L << 40, 16 * MB)).isInstanceOf(IllegalArgumentException.class);
        for (int segSize = MB; segSize > 0 && segSize <= 1024 * MB; segSize <<= 1) {
            for (long segNo : new long[] {0, 1, 2, 127, 128, 255, 256, 4095, 4096, 123_456_789L}) {
                String name = WalFileName.segmentName(7, segNo, segSize);
                assertThat(WalFileName.kindOf(name)).isEqualTo(Kind.SEGMENT);
                assertThat(WalFileName.segmentNumber(name, segSize)).isEqualTo(segNo);
                assertThat(WalFileName.timeline(name)).isEqualTo(7);
                long start = WalFileName.segmentStartLsn(segNo, segSize);
                assertThat(WalFileName.segmentOf(start, segSize)).isEqualTo(segNo);
                assertThat(WalFileName.segmentOf(start + segSize - 1, segSize)).isEqualTo(segNo);
                assertThat(WalFileName.segmentOf(start + segSize, segSize)).isEqualTo(segNo + 1);
                assertThat(WalFileName.segmentStartLsn(name, segSize)).isEqualTo(start);
            }
        }
    }

    @Test
    void lsnsAndSegments() {
        assertThat(WalFileName.segmentStartLsn(3, 16 * MB)).isEqualTo(0x3000000L);
        assertThat(WalFileName.segmentStartLsn("000000010000000100000000", 16 * MB)).isEqualTo(0x1_0000_0000L);
        assertThat(WalFileName.segmentStartLsn("000000010000000000000003", 64 * MB)).isEqualTo(0xC000000L);
        assertThat(WalFileName.segmentOf(0x3000028L, 16 * MB)).isEqualTo(3);
        assertThat(WalFileName.segmentOf(0x3000028L, 32 * MB)).isEqualTo(1);
        assertThat(WalFileName.segmentOf(0x1_0000_0000L, 16 * MB)).isEqualTo(256);
        assertThat(WalFileName.segmentOf(-1L, 16 * MB)).isEqualTo((1L << 40) - 1);
        assertThat(WalFileName.segmentStartLsn((1L << 40) - 1, 16 * MB)).isEqualTo(0xFFFFFFFF_FF000000L);
        assertThatThrownBy(() -> WalFileName.segmentStartLsn(1L << 40, 16 * MB)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> WalFileName.segmentStartLsn(-1, 16 * MB)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> WalFileName.segmentOf(0, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> WalFileName.segmentOf(0, MB / 2)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> WalFileName.segmentOf(0, Integer.MIN_VALUE)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void formatLsn() {
        assertThat(WalFileName.formatLsn(0)).isEqualTo("0/0");
        assertThat(WalFileName.formatLsn(0x3000028L)).isEqualTo("0/3000028");
        assertThat(WalFileName.formatLsn(0x17414F8L)).isEqualTo("0/17414F8");
        assertThat(WalFileName.formatLsn(0x1_0000_0000L)).isEqualTo("1/0");
        assertThat(WalFileName.formatLsn(0xAB_0000_00FFL)).isEqualTo("AB/FF");
        assertThat(WalFileName.formatLsn(-1L)).isEqualTo("FFFFFFFF/FFFFFFFF");
    }

    @Test
    void parseLsn() {
        assertThat(WalFileName.parseLsn("0/3000028")).isEqualTo(0x3000028L);
        assertThat(WalFileName.parseLsn("0/17414f8")).isEqualTo(0x17414F8L);
        assertThat(WalFileName.parseLsn("1/0")).isEqualTo(0x1_0000_0000L);
        assertThat(WalFileName.parseLsn("00000001/00000000")).isEqualTo(0x1_0000_0000L);
        assertThat(WalFileName.parseLsn("FFFFFFFF/FFFFFFFF")).isEqualTo(-1L);
        for (long lsn : new long[] {0, 1, 0x3000028L, 0x1_0000_0000L, 0x7FFFFFFF_FFFFFFFFL, Long.MIN_VALUE, -1L}) {
            assertThat(WalFileName.parseLsn(WalFileName.formatLsn(lsn))).isEqualTo(lsn);
        }
        for (String bad : new String[] {"", "0", "0/", "/1", "0/3000028 ", " 0/1", "123456789/0", "0/123456789",
                "g/1", "0x0/1", "-1/0", "0/+1", "1/2/3"}) {
            assertThatThrownBy(() -> WalFileName.parseLsn(bad))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("not an LSN: \"" + bad + "\"");
        }
        assertThatThrownBy(() -> WalFileName.parseLsn(null)).isInstanceOf(IllegalArgumentException.class);
    }
}
