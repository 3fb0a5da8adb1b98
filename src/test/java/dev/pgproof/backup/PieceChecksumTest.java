package dev.pgproof.backup;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pgproof.io.BlockTreeHash;
import dev.pgproof.repo.BackupManifest;
import java.util.Random;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;

/**
 * A piece's checksums in manifest format 3: the backup derives its blocks' SHA-256 from the block
 * hashes it computes anyway; whoever reads the piece back hashes its bytes, in any slices, and must
 * get the same. Restore checks the CRC-32C, verify all of them, a delta restore the CRC-32C and the XXH64.
 */
class PieceChecksumTest {
    private static final int BLOCK = 8192;

    @Test
    void theTreeFromTheBlockHashesIsTheTreeOfTheBytes() {
        byte[] window = new byte[7 * BLOCK + 1000];   // the last block partial, as at a file's end
        new Random(11).nextBytes(window);
        byte[] hashes = BlockDelta.hashes(window, window.length, BLOCK);
        // a run of blocks 2..6 (the last partial) as an incremental cuts it
        int from = 2 * BLOCK;
        int len = window.length - from;
        String fromLeaves = BlockTreeHash.ofLeaves(hashes, 2 * BlockDelta.HASH, 6 * BlockDelta.HASH);
        BlockTreeHash fed = new BlockTreeHash();
        for (int at = from; at < window.length; at += 3001) {   // slices that straddle blocks, as a decompressing reader gives them
            fed.update(window, at, Math.min(3001, window.length - at));
        }
        assertThat(fed.hex()).isEqualTo(fromLeaves).isEqualTo(BlockTreeHash.of(window, from, len));
        assertThat(BlockTreeHash.of(window, from + 1, len - 1)).isNotEqualTo(fromLeaves);
    }

    @Test
    void restoreChecksTheCrcAndVerifyTheBlocksSha256() {
        byte[] piece = random(3 * BLOCK, 12);
        CRC32C crc = crc32c(piece);
        String tree = BlockTreeHash.of(piece, 0, piece.length);
        BackupManifest.Chunk c = chunk(piece.length, tree, crc.getValue());
        assertThat(c.check().matches(piece, 0, piece.length)).isTrue();
        assertThat(c.quickCheck().matches(piece, 0, piece.length)).isTrue();

        byte[] damaged = piece.clone();
        damaged[BLOCK + 5] ^= 0x40;
        assertThat(c.check().matches(damaged, 0, damaged.length)).isFalse();
        assertThat(c.quickCheck().matches(damaged, 0, damaged.length)).isFalse();
        assertThat(c.quickCheck().matches(piece, 0, piece.length - 1)).as("short").isFalse();

        // Which checksum each reads: a wrong tree fails only the strong check, a wrong CRC only the quick one.
        assertThat(chunk(piece.length, tree.replace(tree.charAt(0), tree.charAt(0) == 'a' ? 'b' : 'a'), crc.getValue()).quickCheck()
                .matches(piece, 0, piece.length)).isTrue();
        assertThat(chunk(piece.length, tree, crc.getValue() ^ 1).check().matches(piece, 0, piece.length)).isTrue();
        assertThat(chunk(piece.length, tree, crc.getValue() ^ 1).quickCheck().matches(piece, 0, piece.length)).isFalse();
    }

    /**
     * A delta restore keeps bytes on disk when they have the piece's CRC-32C and XXH64. Bytes changed so that their CRC-32C
     * stays the same (the CRC's own polynomial XORed in: easy to make, so the CRC alone would not do) differ in their
     * XXH64 and are rewritten. A piece without an XXH64 (written before it was recorded) is checked by its blocks' SHA-256.
     */
    @Test
    void aDeltaRestoreKeepsBytesOnlyWhenBothTheirCrcAndTheirXxh64Match() {
        byte[] piece = random(2 * BLOCK, 13);
        CRC32C crc = crc32c(piece);
        long xxh = dev.pgproof.io.Hashes.xxh64(piece, 0, piece.length);
        String tree = BlockTreeHash.of(piece, 0, piece.length);
        BackupManifest.Chunk c = new BackupManifest.Chunk("k", 0, piece.length, 1, null, null, null, null, tree, crc.getValue(), xxh);
        assertThat(c.sameCheck().matches(piece, 0, piece.length)).isTrue();
        assertThat(c.sameCheck().algorithm()).isEqualTo("CRC-32C and XXH64");

        byte[] sameCrc = piece.clone();
        int[] polynomial = {0xF1, 0x76, 0xEC, 0x05, 0x01};   // x^32 + CRC-32C's generator, in the CRC's reflected bit order
        for (int i = 0; i < polynomial.length; i++) {
            sameCrc[BLOCK + 100 + i] ^= (byte) polynomial[i];
        }
        assertThat(crc32c(sameCrc).getValue()).as("the CRC-32C of the changed bytes").isEqualTo(crc.getValue());
        assertThat(c.quickCheck().matches(sameCrc, 0, sameCrc.length)).as("the CRC-32C alone is fooled").isTrue();
        assertThat(c.sameCheck().matches(sameCrc, 0, sameCrc.length)).isFalse();
        assertThat(c.sameCheck().matches(piece, 0, piece.length - 1)).as("short").isFalse();

        BackupManifest.Chunk older = chunk(piece.length, tree, crc.getValue());
        assertThat(older.sameCheck().algorithm()).isEqualTo("SHA-256 of its blocks' hashes");
        assertThat(older.sameCheck().matches(sameCrc, 0, sameCrc.length)).isFalse();
        assertThat(older.sameCheck().matches(piece, 0, piece.length)).isTrue();
    }

    private static byte[] random(int size, long seed) {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static CRC32C crc32c(byte[] b) {
        CRC32C crc = new CRC32C();
        crc.update(b);
        return crc;
    }

    private static BackupManifest.Chunk chunk(long size, String tree, long crc) {
        return new BackupManifest.Chunk("k", 0, size, 1, null, null, null, null, tree, crc);
    }
}
