package dev.pgproof.wal;

import java.util.regex.Pattern;

/**
 * WAL file names and LSNs as PostgreSQL spells them.
 *
 * <p>A segment is named {@code TTTTTTTTXXXXXXXXYYYYYYYY} (timeline, then the segment number split
 * into "log" and "seg" parts, uppercase hex): segment number = log * (2^32 / segSize) + seg.
 * LSNs print as {@code %X/%X}, e.g. {@code 0/3000028}.
 */
public final class WalFileName {

    /** The kinds of file found in pg_wal or a WAL archive. */
    public enum Kind {
        /** A WAL segment: 24 uppercase hex digits. */
        SEGMENT,
        /** A partial segment left by a promotion or pg_receivewal: {@code <24hex>.partial}. */
        PARTIAL,
        /** A timeline history file: {@code <8hex>.history}. */
        HISTORY,
        /** A backup history file: {@code <24hex>.<8hex>.backup}. */
        BACKUP_HISTORY
    }

    /** Smallest WAL segment size PostgreSQL allows (1 MB). */
    public static final int MIN_SEGMENT_SIZE = 1 << 20;
    /** Largest WAL segment size PostgreSQL allows (1 GB). */
    public static final int MAX_SEGMENT_SIZE = 1 << 30;

    private static final Pattern SEGMENT = Pattern.compile("[0-9A-F]{24}");
    private static final Pattern PARTIAL = Pattern.compile("[0-9A-F]{24}\\.partial");
    private static final Pattern HISTORY = Pattern.compile("[0-9A-F]{8}\\.history");
    private static final Pattern BACKUP_HISTORY = Pattern.compile("[0-9A-F]{24}\\.[0-9A-F]{8}\\.backup");
    private static final Pattern LSN = Pattern.compile("([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})");

    private WalFileName() {
    }

    /**
     * The kind of a WAL file name (a bare name, no directory).
     *
     * @throws IllegalArgumentException if the name is none of the kinds
     */
    public static Kind kindOf(String fileName) {
        if (fileName != null) {
            if (SEGMENT.matcher(fileName).matches()) {
                return Kind.SEGMENT;
            }
            if (PARTIAL.matcher(fileName).matches()) {
                return Kind.PARTIAL;
            }
            if (HISTORY.matcher(fileName).matches()) {
                return Kind.HISTORY;
            }
            if (BACKUP_HISTORY.matcher(fileName).matches()) {
                return Kind.BACKUP_HISTORY;
            }
        }
        throw new IllegalArgumentException("not a WAL file name: \"" + fileName + "\"");
    }

    /** Whether {@code fileName} is a name {@link #kindOf} accepts. */
    public static boolean isWalFileName(String fileName) {
        try {
            kindOf(fileName);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /** The timeline (first 8 hex digits) of any kind of WAL file name. */
    public static int timeline(String name) {
        kindOf(name);
        return Integer.parseUnsignedInt(name.substring(0, 8), 16);
    }

    /**
     * The segment number of a segment, partial segment or backup history file name.
     *
     * @throws IllegalArgumentException for a history file name, an invalid segment size, or a
     *                                  "seg" part too large for the segment size
     */
    public static long segmentNumber(String segName, int segSize) {
        Kind kind = kindOf(segName);
        if (kind == Kind.HISTORY) {
            throw new IllegalArgumentException("a timeline history file has no segment number: \"" + segName + "\"");
        }
        long perId = segmentsPerXLogId(segSize);
        long log = Long.parseLong(segName.substring(8, 16), 16);
        long seg = Long.parseLong(segName.substring(16, 24), 16);
        if (seg >= perId) {
            throw new IllegalArgumentException("not a valid segment name for " + segSize + "-byte segments: \""
                    + segName + "\" (the last 8 digits must be below " + Long.toHexString(perId).toUpperCase() + ")");
        }
        return log * perId + seg;
    }

    /** The file name of segment {@code segNo} on timeline {@code tli}. */
    public static String segmentName(int tli, long segNo, int segSize) {
        long perId = segmentsPerXLogId(segSize);
        if (segNo < 0 || segNo / perId > 0xFFFFFFFFL) {
            throw new IllegalArgumentException("segment number out of range: " + segNo);
        }
        return String.format("%08X%08X%08X", Integer.toUnsignedLong(tli), segNo / perId, segNo % perId);
    }

    /** The LSN at which segment {@code segNo} starts. */
    public static long segmentStartLsn(long segNo, int segSize) {
        checkSegmentSize(segSize);
        if (segNo < 0 || segNo > Long.divideUnsigned(-1L, segSize)) {
            throw new IllegalArgumentException("segment number out of range: " + segNo);
        }
        return segNo * segSize;
    }

    /** The LSN at which the segment named {@code segName} starts. */
    public static long segmentStartLsn(String segName, int segSize) {
        return segmentStartLsn(segmentNumber(segName, segSize), segSize);
    }

    /** The number of the segment that holds {@code lsn}. */
    public static long segmentOf(long lsn, int segSize) {
        checkSegmentSize(segSize);
        return Long.divideUnsigned(lsn, segSize);
    }

    /** Formats an LSN as PostgreSQL does ({@code %X/%X}), e.g. {@code 0/3000028}. */
    public static String formatLsn(long lsn) {
        return String.format("%X/%X", lsn >>> 32, lsn & 0xFFFFFFFFL);
    }

    /**
     * Parses an LSN written as two 1-8 digit hex numbers separated by '/' (either case).
     *
     * @throws IllegalArgumentException if the text is not an LSN
     */
    public static long parseLsn(String text) {
        var m = text == null ? null : LSN.matcher(text);
        if (m == null || !m.matches()) {
            throw new IllegalArgumentException("not an LSN: \"" + text + "\"");
        }
        return (Long.parseLong(m.group(1), 16) << 32) | Long.parseLong(m.group(2), 16);
    }

    private static long segmentsPerXLogId(int segSize) {
        checkSegmentSize(segSize);
        return 0x100000000L / segSize;
    }

    private static void checkSegmentSize(int segSize) {
        if (segSize < MIN_SEGMENT_SIZE || segSize > MAX_SEGMENT_SIZE || Integer.bitCount(segSize) != 1) {
            throw new IllegalArgumentException("invalid WAL segment size " + segSize
                    + ": must be a power of two between 1 MB and 1 GB");
        }
    }
}
