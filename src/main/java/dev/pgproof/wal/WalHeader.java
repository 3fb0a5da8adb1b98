package dev.pgproof.wal;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * The long page header ({@code XLogLongPageHeaderData}) at the start of every WAL segment, little-endian.
 *
 * <p>Layout: {@code uint16 xlp_magic} at 0, {@code uint16 xlp_info} at 2, {@code uint32 xlp_tli} at 4,
 * {@code uint64 xlp_pageaddr} at 8, {@code uint32 xlp_rem_len} at 16, padding, {@code uint64 xlp_sysid}
 * at 24, {@code uint32 xlp_seg_size} at 32, {@code uint32 xlp_xlog_blcksz} at 36; 40 bytes in all.
 *
 * @param magic            xlp_magic, the WAL format of a PostgreSQL major version
 * @param info             xlp_info flag bits; always includes {@link #XLP_LONG_HEADER}
 * @param timeline         xlp_tli, timeline of the first record on the page
 * @param pageAddress      xlp_pageaddr, the LSN of the page (the segment's start LSN)
 * @param systemIdentifier xlp_sysid, equal to pg_control's system identifier
 * @param segmentSize      xlp_seg_size, WAL segment size in bytes
 * @param walBlockSize     xlp_xlog_blcksz, WAL page size in bytes
 */
public record WalHeader(
        int magic,
        int info,
        int timeline,
        long pageAddress,
        long systemIdentifier,
        int segmentSize,
        int walBlockSize) {

    /** Size of the long page header in bytes. */
    public static final int LONG_HEADER_SIZE = 40;
    /** xlp_info flag marking a long header. */
    public static final int XLP_LONG_HEADER = 0x0002;

    private static final Map<Integer, Integer> MAGIC_BY_MAJOR = Map.of(
            13, 0xD106,
            14, 0xD10D,
            15, 0xD110,
            16, 0xD113);

    /** Known XLOG_PAGE_MAGIC values by PostgreSQL major version, sorted by version. */
    public static Map<Integer, Integer> magicByMajor() {
        return new TreeMap<>(MAGIC_BY_MAJOR);
    }

    /** The PostgreSQL major version that writes WAL with this header's magic, or null if unknown. */
    public Integer majorVersion() {
        return majorVersionOf(magic);
    }

    /** Whether xlp_info has XLP_LONG_HEADER; always true for a header returned by {@link #parse}. */
    public boolean isLongHeader() {
        return (info & XLP_LONG_HEADER) != 0;
    }

    /**
     * Parses the first 40 bytes of a WAL segment; {@code source} names it in error messages.
     *
     * @throws IOException if there are fewer than 40 bytes, the magic is not a known PostgreSQL
     *                     version's, or the page does not carry a long header
     */
    public static WalHeader parse(byte[] first40bytes, String source) throws IOException {
        if (first40bytes.length < LONG_HEADER_SIZE) {
            throw new IOException("file \"" + source + "\" is too short for a WAL segment header: "
                    + first40bytes.length + " bytes, expected " + LONG_HEADER_SIZE);
        }
        ByteBuffer buf = ByteBuffer.wrap(first40bytes).order(ByteOrder.LITTLE_ENDIAN);
        int magic = Short.toUnsignedInt(buf.getShort(0));
        int info = Short.toUnsignedInt(buf.getShort(2));
        if (majorVersionOf(magic) == null) {
            StringBuilder known = new StringBuilder();
            magicByMajor().forEach((major, m) -> known.append(known.length() == 0 ? "" : ", ")
                    .append(String.format("0x%04X (PostgreSQL %d)", m, major)));
            throw new IOException(String.format("file \"%s\" has unknown WAL page magic 0x%04X, known: %s",
                    source, magic, known));
        }
        if ((info & XLP_LONG_HEADER) == 0) {
            throw new IOException(String.format(
                    "file \"%s\" does not start with a WAL long page header: xlp_info 0x%04X lacks XLP_LONG_HEADER",
                    source, info));
        }
        return new WalHeader(
                magic,
                info,
                buf.getInt(4),
                buf.getLong(8),
                buf.getLong(24),
                buf.getInt(32),
                buf.getInt(36));
    }

    /** Reads and parses the header of the WAL segment {@code file}. */
    public static WalHeader read(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return parse(in.readNBytes(LONG_HEADER_SIZE), file.toString());
        }
    }

    private static Integer majorVersionOf(int magic) {
        for (Map.Entry<Integer, Integer> e : MAGIC_BY_MAJOR.entrySet()) {
            if (e.getValue() == magic) {
                return e.getKey();
            }
        }
        return null;
    }
}
