package dev.pgproof.io;

import java.security.MessageDigest;

/**
 * The SHA-256 of a run of bytes taken as a tree of two levels: the first 16 bytes of the SHA-256
 * of each 8 KiB of it (the last one may be shorter) are the leaves, and the SHA-256 of the leaves,
 * one after the other, is the hash. A backup has the leaves already (they are a relation's block
 * hashes, which incremental backups compare), so the hash of a piece costs it next to nothing,
 * where the SHA-256 of the bytes themselves would be another pass over every byte. Fed in any
 * slices, in order.
 */
public final class BlockTreeHash {
    /** Bytes under one leaf: PostgreSQL's default block size. */
    public static final int LEAF = 8192;
    /** Bytes of SHA-256 kept per leaf. */
    public static final int LEAF_HASH = 16;

    private final MessageDigest leaf = Hashes.sha256();
    private final MessageDigest root = Hashes.sha256();
    private int inLeaf;

    public void update(byte[] b, int off, int len) {
        while (len > 0) {
            int k = Math.min(len, LEAF - inLeaf);
            leaf.update(b, off, k);
            inLeaf += k;
            off += k;
            len -= k;
            if (inLeaf == LEAF) {
                root.update(leaf.digest(), 0, LEAF_HASH);
                inLeaf = 0;
            }
        }
    }

    /** The hash, in hex; ends this instance. */
    public String hex() {
        if (inLeaf > 0) {
            root.update(leaf.digest(), 0, LEAF_HASH);
            inLeaf = 0;
        }
        return Hashes.hex(root.digest());
    }

    /** The hash of bytes whose leaves are leaves[off, off + len), in hex. */
    public static String ofLeaves(byte[] leaves, int off, int len) {
        MessageDigest md = Hashes.sha256();
        md.update(leaves, off, len);
        return Hashes.hex(md.digest());
    }

    /** The hash of b[off, off + len), in hex. */
    public static String of(byte[] b, int off, int len) {
        BlockTreeHash h = new BlockTreeHash();
        h.update(b, off, len);
        return h.hex();
    }
}
