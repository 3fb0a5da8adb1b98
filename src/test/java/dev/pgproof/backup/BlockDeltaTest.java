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
        List<BlockDelta.Run> runs = BlockDelta.plan(0, now, now.length, BlockDelta.hashes(now, now.length, BS), prior, BS, null);
        assertThat(runs).containsExactly(
                run(false, 0, BS, "old/a", 0, 0),
                run(true, BS, 2 * BS, null, 0, 0),
                run(false, 3 * BS, BS, "old/a", 3 * BS, 0),
                run(false, 4 * BS, 2 * BS, "old/b", 100, 0),
                run(true, 6 * BS, BS, null, 0, 2 * BS),
                run(false, 7 * BS, BS, "old/b", 100 + 3 * BS, 0));
    }

    @Test
    void aWindowLaterInTheFileAndAFileThatGrewOrShrank() {
        byte[] before = data(4, 2);
        BlockDelta.Prior prior = new BlockDelta.Prior(BlockDelta.hashes(before, before.length, BS),
                List.of(new BackupManifest.Chunk("old/w1", 1L << 23, 4 * BS, 1, "z")));
        // The same four blocks, two of them cut to a partial last block, at offset 8 MiB in the file.
        byte[] now = java.util.Arrays.copyOf(before, 3 * BS + 100);
        List<BlockDelta.Run> runs = BlockDelta.plan(1L << 23, now, now.length, BlockDelta.hashes(now, now.length, BS),
                new BlockDelta.Prior(shift(prior.hashes(), 1024), prior.pieces()), BS, null);
        assertThat(runs).containsExactly(run(false, 0, 3 * BS, "old/w1", 0, 0), run(true, 3 * BS, 100, null, 0, 0));
        // Without a prior for the file, everything is changed.
        assertThat(BlockDelta.plan(0, now, now.length, BlockDelta.hashes(now, now.length, BS), null, BS, null))
                .containsExactly(run(true, 0, now.length, null, 0, 0));
    }

    private static BlockDelta.Run run(boolean changed, int bufOffset, int length, String refKey, long refOffset, long changesOffset) {
        return new BlockDelta.Run(changed, bufOffset, length, refKey, refOffset, changesOffset, null, 0);
    }

    @Test
    void aBlockChangedInAFewBytesIsStoredAsItsXorWithTheEarlierVersionAndOneRewrittenIsStoredAsItIs() {
        byte[] before = data(4, 3);
        java.util.Arrays.fill(before, 3 * BS, 4 * BS, (byte) 0x20);
        // The prior stored blocks 0-1 whole in "old/a", and blocks 2-3 as XOR pieces of "old/x" against "old/base" at 50.
        BlockDelta.Prior prior = new BlockDelta.Prior(BlockDelta.hashes(before, before.length, BS), List.of(
                new BackupManifest.Chunk("old/a", 0, 2 * BS, 10, "x"),
                new BackupManifest.Chunk("old/x", 2 * BS, 2 * BS, 0, "y", 7L, "old/base", 50L)));
        byte[] a = java.util.Arrays.copyOf(before, 2 * BS);
        byte[] base = new byte[50 + 2 * BS];
        System.arraycopy(before, 2 * BS, base, 50, 2 * BS); // the base holds an older version: here the same bytes
        java.util.Map<String, BlockDelta.Base> objects = java.util.Map.of("old/a", new BlockDelta.Base(a, a.length), "old/base",
                new BlockDelta.Base(java.util.Arrays.copyOf(base, base.length + 99), base.length));
        byte[] now = before.clone();
        now[BS + 17] ^= 4;                            // block 1: a few bytes changed, against old/a at BS
        java.util.Arrays.fill(now, 2 * BS, 3 * BS, (byte) 0); // block 2: rewritten (an emptied page): stored as it is
        now[3 * BS + 9] = 1;                          // block 3: a few bytes, against the prior's base, old/base at 50 + BS
        List<BlockDelta.Run> runs = BlockDelta.plan(0, now, now.length, BlockDelta.hashes(now, now.length, BS), prior, BS, objects::get);
        assertThat(runs).containsExactly(
                run(false, 0, BS, "old/a", 0, 0),
                new BlockDelta.Run(true, BS, BS, null, 0, 0, "old/a", BS),
                run(true, 2 * BS, BS, null, 0, BS),
                new BlockDelta.Run(true, 3 * BS, BS, null, 0, 2 * BS, "old/base", 50 + BS));
        // Unchanged blocks of an XOR piece are referenced with its base; a base that cannot be read means stored as they are.
        byte[] again = before.clone();
        again[BS] ^= 1;
        assertThat(BlockDelta.plan(0, again, again.length, BlockDelta.hashes(again, again.length, BS), prior, BS, k -> null)).containsExactly(
                run(false, 0, BS, "old/a", 0, 0),
                run(true, BS, BS, null, 0, 0),
                new BlockDelta.Run(false, 2 * BS, 2 * BS, "old/x", 7, 0, "old/base", 50));
    }

    @Test
    void aWindowWithScatteredChangesIsOneXorPieceAgainstItsEarlierVersionWhenThatIsOneObject() {
        byte[] before = data(20, 5);
        byte[] now = before.clone();
        for (int b = 1; b < 20; b += 2) {
            now[b * BS + 3] ^= 1;   // every other block changed in one byte: 20 runs
        }
        byte[] hashes = BlockDelta.hashes(now, now.length, BS);
        java.util.Map<String, BlockDelta.Base> objects = java.util.Map.of("old/full", new BlockDelta.Base(before, before.length),
                "old/a", new BlockDelta.Base(java.util.Arrays.copyOf(before, 10 * BS), 10 * BS), "old/b",
                new BlockDelta.Base(java.util.Arrays.copyOfRange(before, 10 * BS, 20 * BS), 10 * BS));
        BlockDelta.Prior one = new BlockDelta.Prior(BlockDelta.hashes(before, before.length, BS),
                List.of(new BackupManifest.Chunk("old/full", 0, 20 * BS, 10, "x")));
        long[] unchanged = new long[1];
        assertThat(BlockDelta.plan(0, now, now.length, hashes, one, BS, objects::get, unchanged))
                .containsExactly(new BlockDelta.Run(true, 0, 20 * BS, null, 0, 0, "old/full", 0));
        assertThat(unchanged[0]).isEqualTo(10L * BS);
        // The earlier version in two objects: run by run, the changed blocks XOR-stored against each.
        BlockDelta.Prior two = new BlockDelta.Prior(one.hashes(), List.of(new BackupManifest.Chunk("old/a", 0, 10 * BS, 10, "x"),
                new BackupManifest.Chunk("old/b", 10 * BS, 10 * BS, 10, "y")));
        List<BlockDelta.Run> runs = BlockDelta.plan(0, now, now.length, hashes, two, BS, objects::get);
        assertThat(runs).hasSize(20);
        assertThat(runs.get(1)).isEqualTo(new BlockDelta.Run(true, BS, BS, null, 0, 0, "old/a", BS));
        assertThat(runs.get(19)).isEqualTo(new BlockDelta.Run(true, 19 * BS, BS, null, 0, 9 * BS, "old/b", 9 * BS));
        // Few runs: run by run too.
        byte[] once = before.clone();
        once[5 * BS] ^= 1;
        assertThat(BlockDelta.plan(0, once, once.length, BlockDelta.hashes(once, once.length, BS), one, BS, objects::get)).hasSize(3);
    }

    @Test
    void xorRestoresTheBlock() {
        byte[] block = data(1, 4);
        byte[] older = block.clone();
        older[100] ^= 0x55;
        byte[] stored = block.clone();
        dev.pgproof.io.Xor.apply(stored, older, 0);
        assertThat(stored).hasSize(BS);
        int nonZero = 0;
        for (byte b : stored) {
            nonZero += b == 0 ? 0 : 1;
        }
        assertThat(nonZero).isEqualTo(1);
        BackupManifest.Chunk piece = new BackupManifest.Chunk("new", 0, BS, 1, "s", 3L, "old", 5L);
        byte[] object = new byte[3 + BS];
        System.arraycopy(stored, 0, object, 3, BS);
        byte[] baseObject = new byte[5 + BS];
        System.arraycopy(older, 0, baseObject, 5, BS);
        assertThat(piece.resolve(object, baseObject)).isEqualTo(block);
        assertThat(piece.resolve(object, java.util.Arrays.copyOf(baseObject, BS))).isNull();
    }

    /** The hashes of a file whose first {@code blocks} blocks are something else (hashes zero). */
    private static byte[] shift(byte[] hashes, int blocks) {
        byte[] out = new byte[blocks * BlockDelta.HASH + hashes.length];
        System.arraycopy(hashes, 0, out, blocks * BlockDelta.HASH, hashes.length);
        return out;
    }
}
