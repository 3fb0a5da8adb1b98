package dev.pgproof.verify;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** Page-header checks on synthetic 1 MiB segments of 8 KiB pages (128 pages). */
class WalPageCheckTest {
    private static final long SYSID = 7712181882355142331L;
    private static final int SEG = 1 << 20;
    private static final int PAGE = 8192;
    private static final int MAGIC = 0xD110;
    private static final WalPageCheck CHECK = new WalPageCheck(SYSID, SEG, PAGE, MAGIC);
    /** Segment 5 of timeline 2: starts at LSN 0/500000. */
    private static final String NAME = "000000020000000000000005";

    /** A segment whose every page has a correct header on the given timeline. */
    private static byte[] segment(int tli) {
        byte[] b = new byte[SEG];
        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < SEG / PAGE; i++) {
            int off = i * PAGE;
            buf.putShort(off, (short) MAGIC);
            buf.putShort(off + 2, (short) (i == 0 ? 0x0002 : 0));
            buf.putInt(off + 4, tli);
            buf.putLong(off + 8, 5L * SEG + (long) i * PAGE);
            b[off + 30] = 1; // some record data
        }
        buf.putLong(24, SYSID);
        buf.putInt(32, SEG);
        buf.putInt(36, PAGE);
        return b;
    }

    private static void setTli(byte[] b, int page, int tli) {
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(page * PAGE + 4, tli);
    }

    @Test
    void check_goodSegmentHasNoProblem() {
        assertThat(CHECK.check(NAME, segment(2))).isEmpty();
    }

    @Test
    void check_firstSegmentOfANewTimelineStartsWithParentPages() {
        byte[] b = segment(2);
        for (int i = 0; i < 40; i++) {
            setTli(b, i, 1); // copied from timeline 1 up to the switch point
        }
        assertThat(CHECK.check(NAME, b)).isEmpty();
    }

    @Test
    void check_foreignSystemIdentifier() {
        byte[] b = segment(2);
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(24, 42L);
        assertThat(CHECK.check(NAME, b)).containsExactly("belongs to system identifier 42, the cluster is pinned to " + SYSID);
    }

    @Test
    void check_pageAddressNotMatchingTheName() {
        byte[] b = segment(2);
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(7 * PAGE + 8, 0x300000L);
        assertThat(CHECK.check(NAME, b)).containsExactly("page 7 (offset 57344) has page address 0/300000, expected 0/50E000");
        // The same content stored under another segment's name: every page is wrong, three are named.
        assertThat(CHECK.check("000000020000000000000006", segment(2))).hasSize(4).last().isEqualTo("and 125 more page(s) with wrong headers");
    }

    @Test
    void check_timelineAboveTheNameOrDecreasing() {
        byte[] above = segment(2);
        setTli(above, 3, 3);
        assertThat(CHECK.check(NAME, above)).containsExactly("page 3 (offset 24576) is on timeline 3, above timeline 2 of the file name");
        byte[] down = segment(2);
        setTli(down, 9, 1);
        assertThat(CHECK.check(NAME, down)).containsExactly("page 9 (offset 73728) is on timeline 1, below timeline 2 of the page before it");
    }

    @Test
    void check_zeroTailAfterASwitchIsFineButNotDataAfterIt() {
        byte[] b = segment(2);
        java.util.Arrays.fill(b, 10 * PAGE, SEG, (byte) 0);
        assertThat(CHECK.check(NAME, b)).isEmpty();
        byte[] holes = segment(2);
        java.util.Arrays.fill(holes, 10 * PAGE, 12 * PAGE, (byte) 0);
        assertThat(CHECK.check(NAME, holes)).containsExactly("page 12 (offset 98304) follows 2 page(s) of zeros at offset 81920");
    }

    @Test
    void check_wrongMagicSizeAndZeroFirstPage() {
        byte[] b = segment(2);
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putShort(20 * PAGE, (short) 0xD10D);
        assertThat(CHECK.check(NAME, b)).containsExactly("page 20 (offset 163840) has magic 0xD10D, expected 0xD110");
        assertThat(CHECK.check(NAME, new byte[1000])).containsExactly("is 1000 bytes, a WAL segment of this cluster has 1048576");
        assertThat(CHECK.check(NAME, new byte[SEG]).get(0)).startsWith("first page: ");
    }

    @Test
    void check_partialSegmentMayEndInStalePagesOfARecycledFile() {
        byte[] b = segment(2);
        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 30; i < SEG / PAGE; i++) {
            buf.putLong(i * PAGE + 8, 0x100000L + (long) i * PAGE); // an old segment's pages
        }
        assertThat(CHECK.check(NAME + ".partial", b)).isEmpty();
        assertThat(CHECK.check(NAME, b)).isNotEmpty();
    }
}
