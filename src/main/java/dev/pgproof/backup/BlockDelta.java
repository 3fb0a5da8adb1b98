package dev.pgproof.backup;

import dev.pgproof.io.Hashes;
import dev.pgproof.repo.BackupManifest;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;

/**
 * Block-level change detection for incremental and differential backups: each block (the cluster's
 * block size) is identified by 16 bytes of its SHA-256; a block whose hash equals the prior backup's
 * hash of the same block of the same file is unchanged and is referenced where the prior backup's
 * manifest says its bytes are stored (which may itself be a reference further back). Content, not
 * page LSNs or file times, decides: visibility-map bits change without a new LSN, the free space
 * map is not WAL-logged, and a new timeline reuses LSNs.
 */
final class BlockDelta {
    static final int HASH = 16;

    private BlockDelta() {}

    /** What else looks at each block while it is hashed (page checksums), in the same pass. */
    interface BlockVisitor {
        void block(int from, int len);
    }

    /** The hashes of the blocks in buf[0, n), the last one possibly partial. */
    static byte[] hashes(byte[] buf, int n, int blockSize) {
        return hashes(buf, n, blockSize, null);
    }

    /** The hashes of the blocks in buf[0, n); {@code visitor} (may be null) sees each block right after it is hashed. */
    static byte[] hashes(byte[] buf, int n, int blockSize, BlockVisitor visitor) {
        int blocks = (n + blockSize - 1) / blockSize;
        byte[] out = new byte[blocks * HASH];
        MessageDigest md = Hashes.sha256();
        for (int b = 0; b < blocks; b++) {
            int from = b * blockSize;
            int len = Math.min(blockSize, n - from);
            md.update(buf, from, len);
            System.arraycopy(md.digest(), 0, out, b * HASH, HASH);
            if (visitor != null) {
                visitor.block(from, len);
            }
        }
        return out;
    }

    static String encode(byte[] hashes) {
        return Base64.getEncoder().encodeToString(hashes);
    }

    static byte[] decode(String hashes) {
        return hashes == null ? null : Base64.getDecoder().decode(hashes);
    }

    /** The prior backup's view of one file: its block hashes and where each of its bytes is stored. */
    record Prior(byte[] hashes, List<BackupManifest.Chunk> pieces) {
        /** The piece holding file offset off, by binary search (pieces are in file order and cover the file). */
        BackupManifest.Chunk pieceAt(long off) {
            int lo = 0;
            int hi = pieces.size() - 1;
            while (lo <= hi) {
                int mid = (lo + hi) >>> 1;
                BackupManifest.Chunk p = pieces.get(mid);
                if (off < p.offset()) {
                    hi = mid - 1;
                } else if (off >= p.offset() + p.size()) {
                    lo = mid + 1;
                } else {
                    return p;
                }
            }
            return null;
        }
    }

    /**
     * A run of consecutive blocks of one window: changed (stored in this backup's object for the window,
     * at {@code changesOffset}) or unchanged (referenced at {@code refOffset} of {@code refKey}).
     */
    record Run(boolean changed, int bufOffset, int length, String refKey, long refOffset, long changesOffset) {}

    /** Splits the window buf[0, n) at file offset fileOffset into runs, comparing block hashes with the prior's. */
    static List<Run> plan(long fileOffset, int n, byte[] hashes, Prior prior, int blockSize) {
        List<Run> runs = new ArrayList<>();
        int blocks = hashes.length / HASH;
        long changes = 0;
        long firstBlock = fileOffset / blockSize;
        for (int b = 0; b < blocks; b++) {
            int from = b * blockSize;
            int len = Math.min(blockSize, n - from);
            long g = firstBlock + b;
            BackupManifest.Chunk piece = null;
            boolean same = prior != null && (g + 1) * HASH <= prior.hashes().length
                    && Arrays.equals(hashes, b * HASH, (b + 1) * HASH, prior.hashes(), (int) (g * HASH), (int) ((g + 1) * HASH))
                    && (piece = prior.pieceAt(fileOffset + from)) != null && fileOffset + from + len <= piece.offset() + piece.size();
            Run last = runs.isEmpty() ? null : runs.get(runs.size() - 1);
            if (same) {
                long base = piece.sourceOffset() == null ? 0 : piece.sourceOffset();
                long ref = base + (fileOffset + from - piece.offset());
                if (last != null && !last.changed() && last.refKey().equals(piece.key()) && last.refOffset() + last.length() == ref) {
                    runs.set(runs.size() - 1, new Run(false, last.bufOffset(), last.length() + len, last.refKey(), last.refOffset(), 0));
                } else {
                    runs.add(new Run(false, from, len, piece.key(), ref, 0));
                }
            } else {
                if (last != null && last.changed()) {
                    runs.set(runs.size() - 1, new Run(true, last.bufOffset(), last.length() + len, null, 0, last.changesOffset()));
                } else {
                    runs.add(new Run(true, from, len, null, 0, changes));
                }
                changes += len;
            }
        }
        return runs;
    }
}
