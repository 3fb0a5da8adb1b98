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
 * get the same. Restore checks the CRC-32C, verify both.
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
        byte[] piece = new byte[3 * BLOCK];
        new Random(12).nextBytes(piece);
        CRC32C crc = new CRC32C();
        crc.update(piece);
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

    private static BackupManifest.Chunk chunk(long size, String tree, long crc) {
        return new BackupManifest.Chunk("k", 0, size, 1, null, null, null, null, tree, crc);
    }
}
