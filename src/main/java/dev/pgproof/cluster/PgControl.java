package dev.pgproof.cluster;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.zip.CRC32C;

/**
 * The fields pgproof needs from a cluster's {@code global/pg_control} ({@code ControlFileData}),
 * for pg_control_version 1300 (PostgreSQL 13 to 16), little-endian with 8-byte alignment.
 *
 * <p>The layout is checked twice before any field is trusted: the CRC-32C of the bytes before
 * {@code crc} must equal the stored value, and {@code floatFormat} must equal 1234567.0.
 *
 * @param systemIdentifier    database system identifier (an unsigned 64-bit value)
 * @param pgControlVersion    pg_control format version (1300)
 * @param catalogVersion      catalog version number, e.g. 202209061 for PostgreSQL 15
 * @param state               cluster state (DBState); see {@link #stateName()}
 * @param checkpointLsn       location of the latest checkpoint record
 * @param timeline            ThisTimeLineID of the latest checkpoint
 * @param blockSize           data page size (blcksz)
 * @param walBlockSize        WAL page size (xlog_blcksz)
 * @param walSegmentSize      WAL segment size in bytes (xlog_seg_size)
 * @param dataChecksumVersion data page checksum version, 0 when checksums are off
 * @param relSegSize          blocks per segment file of a large relation (relseg_size, 131072 for 1 GiB of 8 KiB blocks)
 */
public record PgControl(
        long systemIdentifier,
        int pgControlVersion,
        int catalogVersion,
        int state,
        long checkpointLsn,
        int timeline,
        int blockSize,
        int walBlockSize,
        int walSegmentSize,
        int dataChecksumVersion,
        int relSegSize) {

    /** The only pg_control_version this parser understands (PostgreSQL 13 to 16). */
    public static final int SUPPORTED_VERSION = 1300;
    /** Size of the pg_control file on disk (PG_CONTROL_FILE_SIZE). */
    public static final int FILE_SIZE = 8192;
    /** Value PostgreSQL stores in floatFormat to detect an incompatible float representation. */
    public static final double FLOAT_FORMAT = 1234567.0;

    // Offsets within ControlFileData for pg_control_version 1300, confirmed against a PostgreSQL 15
    // cluster and pg_controldata. CheckPoint (88 bytes) is embedded at offset 40.
    /** Offset of system_identifier (uint64). */
    public static final int OFFSET_SYSTEM_IDENTIFIER = 0;
    /** Offset of pg_control_version (uint32). */
    public static final int OFFSET_PG_CONTROL_VERSION = 8;
    /** Offset of catalog_version_no (uint32). */
    public static final int OFFSET_CATALOG_VERSION = 12;
    /** Offset of state (DBState enum, 4 bytes). */
    public static final int OFFSET_STATE = 16;
    /** Offset of checkPoint (XLogRecPtr), after pg_time_t time at 24. */
    public static final int OFFSET_CHECKPOINT_LSN = 32;
    /** Offset of checkPointCopy (struct CheckPoint). */
    public static final int OFFSET_CHECKPOINT_COPY = 40;
    /** Offset of checkPointCopy.ThisTimeLineID (redo is the first 8 bytes of CheckPoint). */
    public static final int OFFSET_TIMELINE = OFFSET_CHECKPOINT_COPY + 8;
    /** Offset of floatFormat (double). */
    public static final int OFFSET_FLOAT_FORMAT = 208;
    /** Offset of blcksz (uint32). */
    public static final int OFFSET_BLOCK_SIZE = 216;
    /** Offset of relseg_size (uint32). */
    public static final int OFFSET_REL_SEG_SIZE = 220;
    /** Offset of xlog_blcksz (uint32). */
    public static final int OFFSET_WAL_BLOCK_SIZE = 224;
    /** Offset of xlog_seg_size (uint32). */
    public static final int OFFSET_WAL_SEGMENT_SIZE = 228;
    /** Offset of data_checksum_version (uint32). */
    public static final int OFFSET_DATA_CHECKSUM_VERSION = 252;
    /** Offset of crc (pg_crc32c), which covers all bytes before it. */
    public static final int OFFSET_CRC = 288;

    /** Reads and checks {@code global/pg_control} of the data directory {@code dataDir}. */
    public static PgControl read(Path dataDir) throws IOException {
        Path file = dataDir.resolve("global").resolve("pg_control");
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new IOException("file \"" + file + "\" does not exist: is \"" + dataDir
                    + "\" a PostgreSQL data directory?", e);
        }
        return parse(bytes, file.toString());
    }

    /**
     * Parses the contents of a pg_control file; {@code source} names it in error messages.
     *
     * @throws IOException if the bytes are too short or too long, of an unsupported version, fail
     *                     the CRC check or the float format check
     */
    public static PgControl parse(byte[] bytes, String source) throws IOException {
        if (bytes.length < FILE_SIZE) {
            throw new IOException("file \"" + source + "\" is too short: " + bytes.length
                    + " bytes, expected " + FILE_SIZE);
        }
        if (bytes.length > FILE_SIZE) {
            throw new IOException("file \"" + source + "\" is too long: " + bytes.length
                    + " bytes, expected " + FILE_SIZE);
        }
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int version = buf.getInt(OFFSET_PG_CONTROL_VERSION);
        if (version != SUPPORTED_VERSION) {
            String hint = Integer.reverseBytes(version) == SUPPORTED_VERSION
                    ? " (it looks big-endian, only little-endian is supported)" : "";
            throw new IOException("file \"" + source + "\" has unsupported pg_control version "
                    + Integer.toUnsignedString(version) + hint + ", supported: " + SUPPORTED_VERSION
                    + " (PostgreSQL 13 to 16)");
        }
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, OFFSET_CRC);
        long computed = crc.getValue();
        long stored = Integer.toUnsignedLong(buf.getInt(OFFSET_CRC));
        if (computed != stored) {
            throw new IOException(String.format(
                    "file \"%s\" has a bad checksum: computed 0x%08x, stored 0x%08x",
                    source, computed, stored));
        }
        double floatFormat = buf.getDouble(OFFSET_FLOAT_FORMAT);
        if (floatFormat != FLOAT_FORMAT) {
            throw new IOException("file \"" + source + "\" has an unexpected float format value "
                    + floatFormat + ", expected " + FLOAT_FORMAT
                    + ": the pg_control layout is not the one this parser supports");
        }
        return new PgControl(
                buf.getLong(OFFSET_SYSTEM_IDENTIFIER),
                version,
                buf.getInt(OFFSET_CATALOG_VERSION),
                buf.getInt(OFFSET_STATE),
                buf.getLong(OFFSET_CHECKPOINT_LSN),
                buf.getInt(OFFSET_TIMELINE),
                buf.getInt(OFFSET_BLOCK_SIZE),
                buf.getInt(OFFSET_WAL_BLOCK_SIZE),
                buf.getInt(OFFSET_WAL_SEGMENT_SIZE),
                buf.getInt(OFFSET_DATA_CHECKSUM_VERSION),
                buf.getInt(OFFSET_REL_SEG_SIZE));
    }

    /**
     * Reads the major version from {@code PG_VERSION} of the data directory, e.g. 15.
     *
     * @throws IOException if the file is missing or does not hold a plain integer
     */
    public static int majorVersion(Path dataDir) throws IOException {
        Path file = dataDir.resolve("PG_VERSION");
        String text;
        try {
            text = Files.readString(file, StandardCharsets.US_ASCII).trim();
        } catch (NoSuchFileException e) {
            throw new IOException("file \"" + file + "\" does not exist: is \"" + dataDir
                    + "\" a PostgreSQL data directory?", e);
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new IOException("file \"" + file + "\" does not contain a major version number", e);
        }
        if (!text.matches("[0-9]{1,9}")) {
            throw new IOException("file \"" + file + "\" does not contain a major version number: \""
                    + (text.length() > 40 ? text.substring(0, 40) + "..." : text) + "\"");
        }
        return Integer.parseInt(text);
    }

    /** The system identifier as PostgreSQL prints it (unsigned decimal). */
    public String systemIdentifierString() {
        return Long.toUnsignedString(systemIdentifier);
    }

    /** Whether data page checksums are enabled. */
    public boolean dataChecksumsEnabled() {
        return dataChecksumVersion != 0;
    }

    /** The cluster state as pg_controldata prints it, e.g. "shut down" or "in production". */
    public String stateName() {
        return switch (state) {
            case 0 -> "starting up";
            case 1 -> "shut down";
            case 2 -> "shut down in recovery";
            case 3 -> "shutting down";
            case 4 -> "in crash recovery";
            case 5 -> "in archive recovery";
            case 6 -> "in production";
            default -> "unrecognized status code " + state;
        };
    }
}
