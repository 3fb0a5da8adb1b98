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
    static final int HASH = dev.pgproof.io.BlockTreeHash.LEAF_HASH;

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

    /** The decompressed content of a stored object: bytes[0, length). */
    record Base(byte[] bytes, int length) {}

    /** The decompressed content of a stored object, or null when it cannot be read (its blocks are then stored whole). */
    interface Objects {
        Base get(String key);
    }

    /**
     * A run of consecutive blocks of one window: changed (stored in this backup's object for the window,
     * at {@code changesOffset}) or unchanged (referenced at {@code refOffset} of {@code refKey}). A
     * changed run with an {@code xorKey} is stored as its XOR with the blocks' earlier version, the
     * plain bytes at {@code xorOffset} of that object; an unchanged run keeps the XOR base of the piece
     * it references.
     */
    record Run(boolean changed, int bufOffset, int length, String refKey, long refOffset, long changesOffset, String xorKey, long xorOffset) {
        boolean continues(Run r) {
            return changed == r.changed && bufOffset + length == r.bufOffset && java.util.Objects.equals(refKey, r.refKey)
                    && (refKey == null || refOffset + length == r.refOffset) && java.util.Objects.equals(xorKey, r.xorKey)
                    && (xorKey == null || xorOffset + length == r.xorOffset);
        }

        Run extend(int len) {
            return new Run(changed, bufOffset, length + len, refKey, refOffset, changesOffset, xorKey, xorOffset);
        }
    }

    /**
     * Splits the window buf[0, n) at file offset fileOffset into runs, comparing block hashes with the
     * prior's. A changed block the prior had is stored as its XOR with the prior's plain version (for a
     * prior piece that is itself XOR-stored, its base) when that XOR has at least as many zero bytes as
     * the block: a page changed in a few places; a block rewritten with other content is stored as it is.
     */
    static List<Run> plan(long fileOffset, byte[] buf, int n, byte[] hashes, Prior prior, int blockSize, Objects objects) {
        return plan(fileOffset, buf, n, hashes, prior, blockSize, objects, new long[1]);
    }

    /**
     * More runs than this in a window, and the window is stored whole as one XOR piece against its
     * earlier version when that lies in one object (see {@link #plan}).
     */
    static final int WINDOW_XOR_RUNS = 8;

    /**
     * As above; unchanged[0] gets the bytes of unchanged blocks. When changes are scattered (more than
     * {@link #WINDOW_XOR_RUNS} runs) and the plain earlier version of every block of the window lies in
     * one object, in order (typically the full backup's chunk of the same window), the whole window is
     * one changed run XOR-stored against it: unchanged blocks become zeros, which cost next to nothing
     * compressed, and the manifest holds one piece for the window instead of one per run.
     */
    static List<Run> plan(long fileOffset, byte[] buf, int n, byte[] hashes, Prior prior, int blockSize, Objects objects, long[] unchanged) {
        List<Run> runs = new ArrayList<>();
        int blocks = hashes.length / HASH;
        long changes = 0;
        long firstBlock = fileOffset / blockSize;
        String windowBase = null;       // the one object holding every block's plain earlier version, in order, if there is one
        long windowBaseOffset = -1;
        boolean uniform = prior != null && objects != null;
        long sameBytes = 0;
        for (int b = 0; b < blocks; b++) {
            int from = b * blockSize;
            int len = Math.min(blockSize, n - from);
            long g = firstBlock + b;
            BackupManifest.Chunk piece = prior == null ? null : prior.pieceAt(fileOffset + from);
            boolean covered = piece != null && fileOffset + from + len <= piece.offset() + piece.size();
            boolean same = covered && (g + 1) * HASH <= prior.hashes().length
                    && Arrays.equals(hashes, b * HASH, (b + 1) * HASH, prior.hashes(), (int) (g * HASH), (int) ((g + 1) * HASH));
            long within = covered ? fileOffset + from - piece.offset() : 0;
            // Where the block's plain earlier version lies: the prior piece's XOR base, or the prior piece's own bytes.
            String plainKey = !covered ? null : piece.xorKey() != null ? piece.xorKey() : piece.key();
            long plainOffset = !covered ? 0 : (piece.xorKey() != null ? piece.xorOffset() : sourceStart(piece)) + within;
            if (uniform) {
                if (!covered) {
                    uniform = false;
                } else if (b == 0) {
                    windowBase = plainKey;
                    windowBaseOffset = plainOffset;
                } else if (!plainKey.equals(windowBase) || plainOffset != windowBaseOffset + from) {
                    uniform = false;
                }
            }
            Run run;
            if (same) {
                sameBytes += len;
                run = new Run(false, from, len, piece.key(), sourceStart(piece) + within, 0, piece.xorKey(),
                        piece.xorKey() == null ? 0 : piece.xorOffset() + within);
            } else {
                Base base = covered && objects != null ? objects.get(plainKey) : null;
                boolean xor = base != null && plainOffset + len <= base.length() && xorPays(buf, from, base.bytes(), (int) plainOffset, len);
                run = new Run(true, from, len, null, 0, changes, xor ? plainKey : null, xor ? plainOffset : 0);
                changes += len;
            }
            Run last = runs.isEmpty() ? null : runs.get(runs.size() - 1);
            if (last != null && last.continues(run)) {
                runs.set(runs.size() - 1, last.extend(len));
            } else {
                runs.add(run);
            }
        }
        unchanged[0] = sameBytes;
        if (uniform && windowBase != null && runs.size() > WINDOW_XOR_RUNS) {
            Base base = objects.get(windowBase);
            if (base != null && windowBaseOffset + n <= base.length()) {
                return List.of(new Run(true, 0, n, null, 0, 0, windowBase, windowBaseOffset));
            }
        }
        return runs;
    }

    /** Where a piece's bytes start in its decompressed object. */
    private static long sourceStart(BackupManifest.Chunk piece) {
        return piece.sourceOffset() == null ? 0 : piece.sourceOffset();
    }

    /** Whether block ^ base has at least as many zero bytes as the block itself. */
    static boolean xorPays(byte[] block, int at, byte[] base, int baseAt, int len) {
        int zeroXor = 0;
        int zeroPlain = 0;
        for (int i = 0; i < len; i++) {
            byte v = block[at + i];
            if (v == base[baseAt + i]) {
                zeroXor++;
            }
            if (v == 0) {
                zeroPlain++;
            }
        }
        return zeroXor >= zeroPlain;
    }
}
