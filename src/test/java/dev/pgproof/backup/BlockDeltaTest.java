package dev.pgproof.backup;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pgproof.repo.BackupManifest;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class BlockDeltaTest {
    private static final int BS = 8192;

    private static byte[] data(int blocks, long seed) {
        byte[] b = new byte[blocks * BS];
        new Random(seed).nextBytes(b);
        return b;
    }

    @Test
    void unchangedBlocksAreReferencedWhereThePriorStoredThemAndChangedOnesPackedTogether() {
        byte[] before = data(8, 1);
        // The prior stored the first 4 blocks as a whole object, and blocks 4-7 at offset 100 of another object.
        BlockDelta.Prior prior = new BlockDelta.Prior(BlockDelta.hashes(before, before.length, BS), List.of(
                new BackupManifest.Chunk("old/a", 0, 4 * BS, 10, "x"),
                new BackupManifest.Chunk("old/b", 4 * BS, 4 * BS, 0, "y", 100L)));
        byte[] now = before.clone();
        now[1 * BS + 5] ^= 1; // block 1 changed
        now[2 * BS] ^= 1; // block 2 changed
        now[6 * BS + 8191] ^= 1; // block 6 changed
        List<BlockDelta.Run> runs = BlockDelta.plan(0, now.length, BlockDelta.hashes(now, now.length, BS), prior, BS);
        assertThat(runs).containsExactly(
                new BlockDelta.Run(false, 0, BS, "old/a", 0, 0),
                new BlockDelta.Run(true, BS, 2 * BS, null, 0, 0),
                new BlockDelta.Run(false, 3 * BS, BS, "old/a", 3 * BS, 0),
                new BlockDelta.Run(false, 4 * BS, 2 * BS, "old/b", 100, 0),
                new BlockDelta.Run(true, 6 * BS, BS, null, 0, 2 * BS),
                new BlockDelta.Run(false, 7 * BS, BS, "old/b", 100 + 3 * BS, 0));
    }

    @Test
    void aWindowLaterInTheFileAndAFileThatGrewOrShrank() {
        byte[] before = data(4, 2);
        BlockDelta.Prior prior = new BlockDelta.Prior(BlockDelta.hashes(before, before.length, BS),
                List.of(new BackupManifest.Chunk("old/w1", 1L << 23, 4 * BS, 1, "z")));
        // The same four blocks, two of them cut to a partial last block, at offset 8 MiB in the file.
        byte[] now = java.util.Arrays.copyOf(before, 3 * BS + 100);
        List<BlockDelta.Run> runs = BlockDelta.plan(1L << 23, now.length, BlockDelta.hashes(now, now.length, BS),
                new BlockDelta.Prior(shift(prior.hashes(), 1024), prior.pieces()), BS);
        assertThat(runs).containsExactly(new BlockDelta.Run(false, 0, 3 * BS, "old/w1", 0, 0), new BlockDelta.Run(true, 3 * BS, 100, null, 0, 0));
        // Without a prior for the file, everything is changed.
        assertThat(BlockDelta.plan(0, now.length, BlockDelta.hashes(now, now.length, BS), null, BS))
                .containsExactly(new BlockDelta.Run(true, 0, now.length, null, 0, 0));
    }

    /** The hashes of a file whose first {@code blocks} blocks are something else (hashes zero). */
    private static byte[] shift(byte[] hashes, int blocks) {
        byte[] out = new byte[blocks * BlockDelta.HASH + hashes.length];
        System.arraycopy(hashes, 0, out, blocks * BlockDelta.HASH, hashes.length);
        return out;
    }
}
