package dev.pgproof.verify;

import dev.pgproof.wal.WalFileName;
import dev.pgproof.wal.WalHeader;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Judges the page headers of one archived WAL segment (or .partial segment) against its name and
 * the pinned identity, without PostgreSQL.
 *
 * <p>Every page of {@code walBlockSize} bytes starts with a header: {@code uint16 xlp_magic} at 0,
 * {@code uint16 xlp_info} at 2, {@code uint32 xlp_tli} at 4, {@code uint64 xlp_pageaddr} at 8; the
 * first page's is the long header (system identifier, segment and page size). The rules:
 * <ul>
 *   <li>the first page carries the pinned system identifier, segment size and page size, and the
 *       magic of the pinned major version;</li>
 *   <li>page {@code i} has page address {@code segment start + i * page size} and that magic;</li>
 *   <li>a page's timeline is never above the timeline in the file name and never below the
 *       previous page's (the first segment of a new timeline starts as a copy of its parent's);</li>
 *   <li>a segment switched early ({@code pg_switch_wal}, {@code archive_timeout}) may end in pages
 *       of zeros; once a page is all zeros, every later page must be too.</li>
 * </ul>
 * A .partial segment (the last of an old timeline) may end in stale pages of a recycled file, so
 * its check stops at the first page that is zero or whose address does not follow.
 */
public final class WalPageCheck {
    /** Page header problems reported per file before the rest are only counted. */
    static final int MAX_REPORTED = 3;

    private final long systemIdentifier;
    private final int segmentSize;
    private final int pageSize;
    private final Integer magic;

    /** {@code magic} may be null when the pinned major version's WAL magic is not known. */
    public WalPageCheck(long systemIdentifier, int segmentSize, int pageSize, Integer magic) {
        this.systemIdentifier = systemIdentifier;
        this.segmentSize = segmentSize;
        this.pageSize = pageSize;
        this.magic = magic;
    }

    /** The problems of one file's content; {@code name} is its WAL file name (a segment or .partial). Empty when it is good. */
    public List<String> check(String name, byte[] content) {
        List<String> out = new ArrayList<>();
        boolean partial = name.endsWith(".partial");
        String segName = partial ? name.substring(0, 24) : name;
        if (content.length != segmentSize) {
            out.add("is " + content.length + " bytes, a WAL segment of this cluster has " + segmentSize);
            return out;
        }
        long start;
        int nameTli;
        try {
            start = WalFileName.segmentStartLsn(segName, segmentSize);
            nameTli = WalFileName.timeline(segName);
        } catch (IllegalArgumentException e) {
            out.add(e.getMessage());
            return out;
        }
        WalHeader first;
        try {
            first = WalHeader.parse(java.util.Arrays.copyOf(content, WalHeader.LONG_HEADER_SIZE), name);
        } catch (IOException e) {
            out.add("first page: " + e.getMessage());
            return out;
        }
        if (first.systemIdentifier() != systemIdentifier) {
            out.add("belongs to system identifier " + Long.toUnsignedString(first.systemIdentifier()) + ", the cluster is pinned to "
                    + Long.toUnsignedString(systemIdentifier));
        }
        if (first.segmentSize() != segmentSize || first.walBlockSize() != pageSize) {
            out.add("long header says segment size " + first.segmentSize() + " and page size " + first.walBlockSize() + ", pinned: "
                    + segmentSize + " and " + pageSize);
        }
        ByteBuffer buf = ByteBuffer.wrap(content).order(ByteOrder.LITTLE_ENDIAN);
        int pages = segmentSize / pageSize;
        int prevTli = 0;
        int zeroFrom = -1;
        int more = 0;
        for (int i = 0; i < pages; i++) {
            int off = i * pageSize;
            boolean zero = isZero(content, off, pageSize);
            if (zero) {
                if (i == 0) {
                    out.add("first page is all zeros");
                    return out;
                }
                if (partial) {
                    break;
                }
                if (zeroFrom < 0) {
                    zeroFrom = i;
                }
                continue;
            }
            int m = Short.toUnsignedInt(buf.getShort(off));
            int info = Short.toUnsignedInt(buf.getShort(off + 2));
            int tli = buf.getInt(off + 4);
            long addr = buf.getLong(off + 8);
            long expected = start + (long) i * pageSize;
            if (partial && i > 0 && addr != expected) {
                break; // stale tail of a recycled file
            }
            List<String> page = new ArrayList<>();
            if (zeroFrom >= 0) {
                page.add("follows " + (i - zeroFrom) + " page(s) of zeros at offset " + (long) zeroFrom * pageSize);
                zeroFrom = -1;
            }
            if (magic != null && m != magic) {
                page.add(String.format("has magic 0x%04X, expected 0x%04X", m, magic));
            }
            if (addr != expected) {
                page.add("has page address " + WalFileName.formatLsn(addr) + ", expected " + WalFileName.formatLsn(expected));
            }
            if (i > 0 && (info & WalHeader.XLP_LONG_HEADER) != 0) {
                page.add("has a long header flag in the middle of the segment");
            }
            if (Integer.compareUnsigned(tli, nameTli) > 0) {
                page.add("is on timeline " + Integer.toUnsignedString(tli) + ", above timeline " + nameTli + " of the file name");
            } else if (Integer.compareUnsigned(tli, prevTli) < 0) {
                page.add("is on timeline " + Integer.toUnsignedString(tli) + ", below timeline " + prevTli + " of the page before it");
            }
            if (Integer.compareUnsigned(tli, prevTli) > 0 && Integer.compareUnsigned(tli, nameTli) <= 0) {
                prevTli = tli; // a page above the name's timeline is reported once, not again on every later page
            }
            if (!page.isEmpty()) {
                if (out.size() < MAX_REPORTED) {
                    out.add("page " + i + " (offset " + off + ") " + String.join(", ", page));
                } else {
                    more++;
                }
            }
        }
        if (more > 0) {
            out.add("and " + more + " more page(s) with wrong headers");
        }
        return out;
    }

    private static boolean isZero(byte[] b, int off, int len) {
        for (int i = off; i < off + len; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return true;
    }
}
