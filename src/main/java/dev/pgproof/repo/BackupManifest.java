package dev.pgproof.repo;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.List;

/**
 * pgproof's manifest of one backup ("manifest.json"): what the backup holds, where each piece is
 * stored, and the checksums a restore verifies. Times are ISO 8601 UTC, LSNs as PostgreSQL prints
 * them. Large files are stored as independent chunks so that later backups can reference chunks
 * of earlier ones (each chunk names its own key).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record BackupManifest(
        int format,
        String label,
        String type,
        String cluster,
        String systemIdentifier,
        int pgVersion,
        int pgVersionNum,
        int walSegmentSize,
        int timeline,
        String startLsn,
        String stopLsn,
        String startWal,
        String stopWal,
        String startTime,
        String stopTime,
        String timezone,
        String compression,
        boolean dataChecksums,
        String pgdata,
        String owner,
        long size,
        long storedSize,
        String backupLabel,
        String tablespaceMap,
        StoredRef pgManifest,
        List<Tablespace> tablespaces,
        List<Directory> directories,
        List<FileEntry> files,
        String prior) {

    /** A full backup (no prior). */
    public BackupManifest(int format, String label, String type, String cluster, String systemIdentifier, int pgVersion, int pgVersionNum,
            int walSegmentSize, int timeline, String startLsn, String stopLsn, String startWal, String stopWal, String startTime,
            String stopTime, String timezone, String compression, boolean dataChecksums, String pgdata, String owner, long size,
            long storedSize, String backupLabel, String tablespaceMap, StoredRef pgManifest, List<Tablespace> tablespaces,
            List<Directory> directories, List<FileEntry> files) {
        this(format, label, type, cluster, systemIdentifier, pgVersion, pgVersionNum, walSegmentSize, timeline, startLsn, stopLsn, startWal,
                stopWal, startTime, stopTime, timezone, compression, dataChecksums, pgdata, owner, size, storedSize, backupLabel,
                tablespaceMap, pgManifest, tablespaces, directories, files, null);
    }

    /** A directory to recreate on restore (including the emptied ones such as pg_wal). */
    public record Directory(String path, String mode) {}

    /** A tablespace: its OID and the location it had at backup time. */
    public record Tablespace(int oid, String location) {}

    /**
     * One file: size and SHA-256 of the whole, the pieces it is stored in, in file order, and the
     * hashes of its blocks (base64 of 16 bytes of SHA-256 per block of the cluster's block size), which
     * a later incremental backup compares against.
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record FileEntry(String path, long size, String mtime, String mode, String sha256, List<Chunk> chunks, String blockHashes) {
        public FileEntry(String path, long size, String mtime, String mode, String sha256, List<Chunk> chunks) {
            this(path, size, mtime, mode, sha256, chunks, null);
        }
    }

    /**
     * One piece of a file: {@code size} bytes at file {@code offset}, whose SHA-256 is {@code sha256}.
     * Without {@code sourceOffset} the piece is a whole stored object (decompressed). With it, the piece
     * is that many bytes at {@code sourceOffset} of the decompressed object, which may belong to an
     * earlier backup (an unchanged run of blocks) or hold several changed runs of this one.
     * {@code storedSize} counts what this backup stored for the piece (0 for a reference).
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Chunk(String key, long offset, long size, long storedSize, String sha256, Long sourceOffset) {
        public Chunk(String key, long offset, long size, long storedSize, String sha256) {
            this(key, offset, size, storedSize, sha256, null);
        }
    }

    /** A stored object with its uncompressed SHA-256 and size. */
    public record StoredRef(String key, long size, String sha256) {}
}
