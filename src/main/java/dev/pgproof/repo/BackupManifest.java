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
        List<FileEntry> files) {

    /** A directory to recreate on restore (including the emptied ones such as pg_wal). */
    public record Directory(String path, String mode) {}

    /** A tablespace: its OID and the location it had at backup time. */
    public record Tablespace(int oid, String location) {}

    /** One file: size and SHA-256 of the whole, and the chunks it is stored in, in order. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record FileEntry(String path, long size, String mtime, String mode, String sha256, List<Chunk> chunks) {}

    /** One independently compressed piece of a file. */
    public record Chunk(String key, long offset, long size, long storedSize, String sha256) {}

    /** A stored object with its uncompressed SHA-256 and size. */
    public record StoredRef(String key, long size, String sha256) {}
}
