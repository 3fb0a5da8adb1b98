package dev.pgproof.repo;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.List;

/**
 * pgproof's manifest of one backup ("manifest.json.zst", zstd-compressed JSON; plain "manifest.json" from older pgproof): what the backup holds, where each piece is
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
        String prior,
        PageChecksums pageChecksums) {

    /** A backup without page checksum verification (data checksums off, or written before pgproof verified them). */
    public BackupManifest(int format, String label, String type, String cluster, String systemIdentifier, int pgVersion, int pgVersionNum,
            int walSegmentSize, int timeline, String startLsn, String stopLsn, String startWal, String stopWal, String startTime,
            String stopTime, String timezone, String compression, boolean dataChecksums, String pgdata, String owner, long size,
            long storedSize, String backupLabel, String tablespaceMap, StoredRef pgManifest, List<Tablespace> tablespaces,
            List<Directory> directories, List<FileEntry> files, String prior) {
        this(format, label, type, cluster, systemIdentifier, pgVersion, pgVersionNum, walSegmentSize, timeline, startLsn, stopLsn, startWal,
                stopWal, startTime, stopTime, timezone, compression, dataChecksums, pgdata, owner, size, storedSize, backupLabel,
                tablespaceMap, pgManifest, tablespaces, directories, files, prior, null);
    }

    /** A full backup (no prior). */
    public BackupManifest(int format, String label, String type, String cluster, String systemIdentifier, int pgVersion, int pgVersionNum,
            int walSegmentSize, int timeline, String startLsn, String stopLsn, String startWal, String stopWal, String startTime,
            String stopTime, String timezone, String compression, boolean dataChecksums, String pgdata, String owner, long size,
            long storedSize, String backupLabel, String tablespaceMap, StoredRef pgManifest, List<Tablespace> tablespaces,
            List<Directory> directories, List<FileEntry> files) {
        this(format, label, type, cluster, systemIdentifier, pgVersion, pgVersionNum, walSegmentSize, timeline, startLsn, stopLsn, startWal,
                stopWal, startTime, stopTime, timezone, compression, dataChecksums, pgdata, owner, size, storedSize, backupLabel,
                tablespaceMap, pgManifest, tablespaces, directories, files, null, null);
    }

    /** This manifest without its files: what a command keeps of a manifest whose files it has taken apart. */
    public BackupManifest withoutFiles() {
        return new BackupManifest(format, label, type, cluster, systemIdentifier, pgVersion, pgVersionNum, walSegmentSize, timeline, startLsn,
                stopLsn, startWal, stopWal, startTime, stopTime, timezone, compression, dataChecksums, pgdata, owner, size, storedSize,
                backupLabel, tablespaceMap, pgManifest, tablespaces, directories, null, prior, pageChecksums);
    }

    /**
     * What the backup found verifying the data checksums of relation pages as it copied them (absent:
     * not verified, because data checksums are off or an older pgproof took the backup). {@code checked}
     * pages had their checksum computed; {@code skipped} pages were new (all zeros), written after the
     * backup started (WAL replay rewrites them) or an incomplete last block; {@code failed} of the checked
     * pages kept failing when read again, in {@code failedFiles} files (each lists them in
     * {@link FileEntry#pageChecksumErrors()}).
     */
    public record PageChecksums(long checked, long skipped, long failed, long failedFiles) {}

    /**
     * A page whose checksum failed: its block number in the file, its LSN, the checksum its header holds
     * ({@code stored}) and the one its content gives ({@code computed}).
     */
    public record BadPage(long block, String lsn, int stored, int computed) {}

    /** A directory to recreate on restore (including the emptied ones such as pg_wal). */
    public record Directory(String path, String mode) {}

    /** A tablespace: its OID and the location it had at backup time. */
    public record Tablespace(int oid, String location) {}

    /**
     * One file: size and checksum of the whole, the pieces it is stored in, in file order, and the
     * hashes of its blocks (16 bytes of SHA-256 per block of the cluster's block size), which a later
     * incremental backup compares against: inline as base64 in {@code blockHashes} for a small file, in
     * their own object {@code blockHashObject} (raw bytes) for a large one, so that the manifest does
     * not grow with the cluster's size. {@code pageChecksumErrors} lists the pages whose data checksum
     * failed (absent: none, or not verified). The whole file's checksum is {@code crc32c} (format 3: the
     * CRC-32C that backup_manifest also gives, cheap to compute as the file is read; each piece has its own
     * checksums) or {@code sha256} (formats 1 and 2); exactly one is present.
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record FileEntry(String path, long size, String mtime, String mode, String sha256, List<Chunk> chunks, String blockHashes,
            List<BadPage> pageChecksumErrors, StoredRef blockHashObject, Long crc32c) {
        public FileEntry(String path, long size, String mtime, String mode, String sha256, List<Chunk> chunks, String blockHashes,
                List<BadPage> pageChecksumErrors, StoredRef blockHashObject) {
            this(path, size, mtime, mode, sha256, chunks, blockHashes, pageChecksumErrors, blockHashObject, null);
        }

        public FileEntry(String path, long size, String mtime, String mode, String sha256, List<Chunk> chunks, String blockHashes,
                List<BadPage> pageChecksumErrors) {
            this(path, size, mtime, mode, sha256, chunks, blockHashes, pageChecksumErrors, null);
        }

        public FileEntry(String path, long size, String mtime, String mode, String sha256, List<Chunk> chunks, String blockHashes) {
            this(path, size, mtime, mode, sha256, chunks, blockHashes, null, null);
        }

        public FileEntry(String path, long size, String mtime, String mode, String sha256, List<Chunk> chunks) {
            this(path, size, mtime, mode, sha256, chunks, null, null, null);
        }

        /** A running check of the whole file's content against this entry's checksum: its CRC-32C, or an older entry's SHA-256. */
        public ContentCheck wholeFile() {
            return new ContentCheck(size, crc32c, null, sha256, true);
        }

        /** Whether the entry records its block hashes (inline or in their own object); an older pgproof's do not. */
        public boolean hasBlockHashes() {
            return blockHashes != null || blockHashObject != null;
        }

        /** Every stored object the file needs: its pieces' objects, their XOR bases, its block hash object. */
        public java.util.Set<String> objectKeys() {
            java.util.Set<String> keys = new java.util.LinkedHashSet<>();
            if (chunks != null) {
                for (Chunk c : chunks) {
                    keys.add(c.key());
                    if (c.xorKey() != null) {
                        keys.add(c.xorKey());
                    }
                }
            }
            if (blockHashObject != null) {
                keys.add(blockHashObject.key());
            }
            return keys;
        }
    }

    /**
     * One piece of a file: {@code size} bytes at file {@code offset}, with their checksums (below).
     * Without {@code sourceOffset} the piece is a whole stored object (decompressed). With it, the piece
     * is that many bytes at {@code sourceOffset} of the decompressed object, which may belong to an
     * earlier backup (an unchanged run of blocks) or hold several changed runs of this one.
     * With {@code xorKey}, the stored bytes are the piece XOR an earlier version of the same blocks: the
     * piece is those bytes XOR the {@code size} bytes at {@code xorOffset} of the decompressed object
     * {@code xorKey} (never itself an XOR piece). A block changed by a few bytes then stores as almost
     * all zeros. The checksums are always those of the piece's own (resolved) bytes: in format 3,
     * {@code blocksSha256} (a {@link dev.pgproof.io.BlockTreeHash}: the SHA-256 of the 16-byte SHA-256
     * prefixes of its 8 KiB blocks) and {@code crc32c}, and from 2026-11-26 on {@code xxh64} (its XXH64, seed 0,
     * as a signed 64-bit integer); in formats 1 and 2, {@code sha256} (of the bytes).
     * {@code storedSize} counts what this backup stored for the piece (0 for a reference).
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Chunk(String key, long offset, long size, long storedSize, String sha256, Long sourceOffset, String xorKey,
            Long xorOffset, String blocksSha256, Long crc32c, Long xxh64) {
        public Chunk(String key, long offset, long size, long storedSize, String sha256, Long sourceOffset, String xorKey, Long xorOffset,
                String blocksSha256, Long crc32c) {
            this(key, offset, size, storedSize, sha256, sourceOffset, xorKey, xorOffset, blocksSha256, crc32c, null);
        }

        public Chunk(String key, long offset, long size, long storedSize, String sha256) {
            this(key, offset, size, storedSize, sha256, null, null, null);
        }

        public Chunk(String key, long offset, long size, long storedSize, String sha256, Long sourceOffset) {
            this(key, offset, size, storedSize, sha256, sourceOffset, null, null);
        }

        public Chunk(String key, long offset, long size, long storedSize, String sha256, Long sourceOffset, String xorKey, Long xorOffset) {
            this(key, offset, size, storedSize, sha256, sourceOffset, xorKey, xorOffset, null, null);
        }

        /**
         * A running check of the piece's bytes against its strongest checksum: its blocks' SHA-256 (format 3) or its
         * SHA-256 (formats 1 and 2). What verify and a resumed backup reusing an object check (and a delta restore, for a
         * piece without an XXH64).
         */
        public ContentCheck check() {
            return new ContentCheck(size, crc32c, blocksSha256, sha256, false);
        }

        /**
         * A check of bytes already on disk against the piece, for a delta restore deciding whether to keep them: its
         * CRC-32C and its XXH64 together (96 bits: an accidental difference goes unseen with odds of about 2^-96, and the
         * CRC-32C alone finds every difference of up to 32 consecutive bits), at a small part of the cost of the SHA-256
         * of its blocks, which a piece without an XXH64 (an older backup) is checked against.
         */
        public ContentCheck sameCheck() {
            return crc32c != null && xxh64 != null ? new ContentCheck(size, crc32c, xxh64) : check();
        }

        /**
         * A running check of the piece's bytes against its cheapest checksum: its CRC-32C (format 3), else its SHA-256.
         * What a restore checks each piece it writes against: the piece was stored with that checksum beside its SHA-256,
         * and the CRC-32C finds any damage to it (as pg_verifybackup's default does) at a small part of the cost.
         */
        public ContentCheck quickCheck() {
            return new ContentCheck(size, crc32c, blocksSha256, sha256, true);
        }

        /**
         * Resolves the piece from its decompressed object (and, for an XOR piece, its decompressed base
         * object): the piece's bytes, a new array, or null when an object is shorter than the piece needs.
         */
        public byte[] resolve(byte[] object, byte[] base) {
            long from = sourceOffset == null ? 0 : sourceOffset;
            if (from < 0 || from + size > object.length || (sourceOffset == null && object.length != size)) {
                return null;
            }
            byte[] out = java.util.Arrays.copyOfRange(object, (int) from, (int) (from + size));
            if (xorKey != null) {
                if (base == null || xorOffset == null || xorOffset < 0 || xorOffset + size > base.length) {
                    return null;
                }
                dev.pgproof.io.Xor.apply(out, base, (int) (long) xorOffset);
            }
            return out;
        }
    }

    /**
     * Content (a piece, or a whole file), fed in order, checked against its size and one of the checksums its entry
     * records: the CRC-32C when asked for the cheap one and there is one (with the XXH64 too, for
     * {@link Chunk#sameCheck()}), else the SHA-256 of its blocks' hashes (a format 3 piece), else the SHA-256 of the
     * bytes (formats 1 and 2).
     */
    public static final class ContentCheck {
        private final long expectedSize;
        private final Long expectedCrc32c;
        private final String expectedTree;
        private final String expectedSha256;
        private final java.util.zip.CRC32C crc;
        private final dev.pgproof.io.BlockTreeHash tree;
        private final java.security.MessageDigest sha;
        private final Long expectedXxh64;
        private final net.jpountz.xxhash.StreamingXXHash64 xxh;
        private long size;

        /** The CRC-32C and XXH64 check ({@link Chunk#sameCheck()}). */
        ContentCheck(long size, long crc32c, long xxh64) {
            this.expectedSize = size;
            this.expectedCrc32c = crc32c;
            this.expectedTree = null;
            this.expectedSha256 = null;
            this.crc = new java.util.zip.CRC32C();
            this.tree = null;
            this.sha = null;
            this.expectedXxh64 = xxh64;
            this.xxh = dev.pgproof.io.Hashes.xxh64();
        }

        ContentCheck(long size, Long crc32c, String blocksSha256, String sha256, boolean cheap) {
            this.expectedSize = size;
            this.expectedCrc32c = crc32c;
            this.expectedTree = blocksSha256;
            this.expectedSha256 = sha256;
            this.crc = cheap && crc32c != null ? new java.util.zip.CRC32C() : null;
            this.tree = crc == null && blocksSha256 != null ? new dev.pgproof.io.BlockTreeHash() : null;
            this.sha = crc == null && tree == null ? dev.pgproof.io.Hashes.sha256() : null;
            this.expectedXxh64 = null;
            this.xxh = null;
        }

        public void update(byte[] b, int off, int len) {
            if (crc != null) {
                crc.update(b, off, len);
                if (xxh != null) {
                    xxh.update(b, off, len);
                }
            } else if (tree != null) {
                tree.update(b, off, len);
            } else {
                sha.update(b, off, len);
            }
            size += len;
        }

        /** Whether what was fed has the expected size and checksum; ends this check. */
        public boolean matches() {
            boolean same;
            if (crc != null) {
                same = crc.getValue() == expectedCrc32c && (xxh == null || xxh.getValue() == expectedXxh64);
            } else if (tree != null) {
                same = tree.hex().equals(expectedTree);
            } else {
                same = expectedSha256 != null && dev.pgproof.io.Hashes.hex(sha.digest()).equals(expectedSha256);
            }
            if (xxh != null) {
                xxh.close();   // native state
            }
            return same && size == expectedSize;
        }

        /** Whether b[off, off + len) is the content. */
        public boolean matches(byte[] b, int off, int len) {
            update(b, off, len);
            return matches();
        }

        /** The checksum checked, for messages. */
        public String algorithm() {
            return crc != null ? (xxh != null ? "CRC-32C and XXH64" : "CRC-32C") : tree != null ? "SHA-256 of its blocks' hashes" : "SHA-256";
        }
    }

    /** A stored object with its uncompressed SHA-256 and size. */
    public record StoredRef(String key, long size, String sha256) {
        /** Whether content is what this names: its size and SHA-256. */
        public boolean matches(byte[] content) {
            return content.length == size && dev.pgproof.io.Hashes.sha256Hex(content).equals(sha256);
        }
    }
}
