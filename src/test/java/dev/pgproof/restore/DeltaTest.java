package dev.pgproof.restore;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.io.Hashes;
import dev.pgproof.repo.BackupManifest;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import dev.pgproof.util.Progress;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One file brought to the backup's content by {@link Delta#pieces} (in one part or several) and
 * {@link Delta#finish}: what is read, fetched and written.
 */
class DeltaTest {
    private static final int BLOCK = 8192;

    @TempDir
    Path dir;

    private final Progress progress = new Progress("test", 1, 0);
    private final List<String> fetched = new ArrayList<>();

    @AfterEach
    void close() {
        progress.close();
    }

    @Test
    void anIdenticalFileIsReadAndHashedButNeitherFetchedNorWritten() throws IOException {
        byte[] content = random(5 * BLOCK + 100, 1);
        Path dest = write("f", content);
        Delta.Stats st = new Delta.Stats();
        assertThat(run(whole(content), dest, st)).isFalse();
        assertThat(fetched).isEmpty();
        assertThat(st.writtenBytes.get()).isZero();
        assertThat(st.rewritten.get()).isZero();
        assertThat(st.checkedBytes.get()).isEqualTo(content.length);
    }

    @Test
    void onlyTheBlocksThatDifferAreWrittenAtTheSameSize() throws IOException {
        byte[] content = random(6 * BLOCK, 2);
        byte[] damaged = content.clone();
        damaged[3 * BLOCK + 17] ^= 1;
        damaged[5 * BLOCK + 1] ^= 1;
        Path dest = write("f", damaged);
        Delta.Stats st = new Delta.Stats();
        assertThat(run(whole(content), dest, st)).isTrue();
        assertThat(Files.readAllBytes(dest)).isEqualTo(content);
        assertThat(fetched).containsExactly("obj");
        assertThat(st.writtenBytes.get()).as("two blocks").isEqualTo(2 * BLOCK);
        assertThat(st.rewritten.get()).isOne();
    }

    @Test
    void aLongerFileIsCutAndAShorterOneExtended() throws IOException {
        byte[] content = random(3 * BLOCK + 5, 3);
        byte[] longer = Arrays.copyOf(content, content.length + 3 * BLOCK);
        Path a = write("a", longer);
        Delta.Stats st = new Delta.Stats();
        assertThat(run(whole(content), a, st)).isTrue();
        assertThat(Files.readAllBytes(a)).isEqualTo(content);
        assertThat(st.writtenBytes.get()).as("only cut").isZero();

        Path b = write("b", Arrays.copyOf(content, BLOCK + 10));
        Delta.Stats st2 = new Delta.Stats();
        assertThat(run(whole(content), b, st2)).isTrue();
        assertThat(Files.readAllBytes(b)).isEqualTo(content);
        assertThat(st2.writtenBytes.get()).as("the partial block and the missing ones").isEqualTo(content.length - BLOCK);
    }

    @Test
    void theFilesTimeIsSetAfterItsCutAndAnUnchangedFileWhoseTimeDiffersIsStillSettled() throws IOException {
        byte[] content = random(2 * BLOCK + 9, 8);
        BackupManifest.FileEntry f = whole(content);
        java.nio.file.attribute.FileTime backupTime = java.nio.file.attribute.FileTime.from(java.time.Instant.parse(f.mtime()));
        Delta.Settle settle = () -> {
            boolean differs = !Files.getLastModifiedTime(dir.resolve("f")).equals(backupTime);
            Files.setLastModifiedTime(dir.resolve("f"), backupTime);
            return differs;
        };
        // A longer file: the cut would move its time if the settling came first.
        Path dest = write("f", Arrays.copyOf(content, content.length + BLOCK));
        Delta.Stats st = new Delta.Stats();
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(dest, java.nio.file.StandardOpenOption.READ,
                java.nio.file.StandardOpenOption.WRITE)) {
            long written = Delta.pieces(f, ch, 0, f.chunks().size(), true, (file, c) -> new Delta.Piece(content, 0),
                    new byte[][] {new byte[0]}, st, progress);
            assertThat(Delta.finish(f, ch, true, written, st, DeltaTest::corrupt, settle)).isTrue();
        }
        assertThat(Files.readAllBytes(dest)).isEqualTo(content);
        assertThat(Files.getLastModifiedTime(dest)).isEqualTo(backupTime);

        // The same content with another time: the content is kept and counts as unchanged, the time is set.
        Files.setLastModifiedTime(dest, java.nio.file.attribute.FileTime.fromMillis(0));
        boolean[] settled = {false};
        Delta.Stats st2 = new Delta.Stats();
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(dest, java.nio.file.StandardOpenOption.READ,
                java.nio.file.StandardOpenOption.WRITE)) {
            long written = Delta.pieces(f, ch, 0, f.chunks().size(), true, (file, c) -> new Delta.Piece(content, 0),
                    new byte[][] {new byte[0]}, st2, progress);
            assertThat(Delta.finish(f, ch, true, written, st2, DeltaTest::corrupt, () -> settled[0] = settle.apply())).isFalse();
        }
        assertThat(settled[0]).as("the settle step reported the time it changed").isTrue();
        assertThat(Files.getLastModifiedTime(dest)).isEqualTo(backupTime);
        assertThat(st2.rewritten.get()).isZero();
    }

    @Test
    void aMissingFileIsCreated() throws IOException {
        byte[] content = random(BLOCK + 1, 4);
        Path dest = dir.resolve("sub/new");
        Delta.Stats st = new Delta.Stats();
        assertThat(run(whole(content), dest, st)).isTrue();
        assertThat(Files.readAllBytes(dest)).isEqualTo(content);
        assertThat(st.created.get()).isOne();
        assertThat(st.rewritten.get()).isZero();
    }

    @Test
    void piecesOfAnIncrementalAreFetchedOnlyWhereTheyDiffer() throws IOException {
        // Three pieces: blocks 0-1 and 4 from an earlier backup's object, blocks 2-3 from this backup's.
        byte[] content = random(5 * BLOCK, 5);
        byte[] earlier = new byte[10 * BLOCK];
        System.arraycopy(content, 0, earlier, 6 * BLOCK, 2 * BLOCK);
        System.arraycopy(content, 4 * BLOCK, earlier, BLOCK, BLOCK);
        byte[] changes = Arrays.copyOfRange(content, 2 * BLOCK, 4 * BLOCK);
        List<BackupManifest.Chunk> pieces = List.of(piece("earlier", 0, 2 * BLOCK, content, 6L * BLOCK),
                piece("changes", 2 * BLOCK, 2 * BLOCK, content, 0L), piece("earlier", 4 * BLOCK, BLOCK, content, (long) BLOCK));
        BackupManifest.FileEntry f = new BackupManifest.FileEntry("f", content.length, "2026-01-01T00:00:00Z", "0600", Hashes.sha256Hex(content),
                pieces);
        byte[] damaged = content.clone();
        damaged[2 * BLOCK + 5] ^= 1;
        Path dest = write("f", damaged);
        Delta.Stats st = new Delta.Stats();
        boolean changed = bring(f, dest, st, (file, c) -> {
            fetched.add(c.key());
            return new Delta.Piece(c.key().equals("earlier") ? earlier : changes, (int) (long) c.sourceOffset());
        }, 2);
        assertThat(changed).isTrue();
        assertThat(Files.readAllBytes(dest)).isEqualTo(content);
        assertThat(fetched).containsExactly("changes");
        assertThat(st.writtenBytes.get()).isEqualTo(BLOCK);
    }

    @Test
    void aFileThatDoesNotEndUpTheManifestsSizeIsAnError() throws IOException {
        byte[] content = random(2 * BLOCK, 6);
        BackupManifest.FileEntry f = whole(content);
        BackupManifest.FileEntry longer = new BackupManifest.FileEntry(f.path(), f.size() + 1, f.mtime(), f.mode(), f.sha256(), f.chunks());
        Path dest = write("f", content);
        assertThatThrownBy(() -> run(longer, dest, new Delta.Stats())).isInstanceOf(PgproofException.class)
                .hasMessage("restored content has " + content.length + " bytes, the manifest says " + (content.length + 1));
    }

    /**
     * Format 3: a piece already in place is recognized by the SHA-256 of its blocks' hashes; a damaged one is fetched and
     * only its damaged block written, the file's two pieces brought in two parts, as two jobs would.
     */
    @Test
    void aFormat3FileIsComparedByItsPiecesBlocksSha256() throws IOException {
        byte[] content = random(4 * BLOCK + 7, 7);
        int half = 2 * BLOCK;
        List<BackupManifest.Chunk> pieces = List.of(format3("a", 0, half, content), format3("b", half, content.length - half, content));
        BackupManifest.FileEntry f = new BackupManifest.FileEntry("f", content.length, "2026-01-01T00:00:00Z", "0600", null, pieces, null, null,
                null, crc32c(content, 0, content.length));
        byte[] damaged = content.clone();
        damaged[half + BLOCK + 3] ^= 1;
        Path dest = write("f", damaged);
        Delta.Stats st = new Delta.Stats();
        boolean changed = bring(f, dest, st, (file, c) -> {
            fetched.add(c.key());
            return new Delta.Piece(content, (int) c.offset());
        }, 2);
        assertThat(changed).isTrue();
        assertThat(Files.readAllBytes(dest)).isEqualTo(content);
        assertThat(fetched).containsExactly("b");
        assertThat(st.writtenBytes.get()).isEqualTo(BLOCK);
        assertThat(st.rewritten.get()).isOne();
    }

    private static BackupManifest.Chunk format3(String key, int offset, int size, byte[] content) {
        return new BackupManifest.Chunk(key, offset, size, 1, null, null, null, null,
                dev.pgproof.io.BlockTreeHash.of(content, offset, size), crc32c(content, offset, size));
    }

    private static long crc32c(byte[] b, int off, int len) {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(b, off, len);
        return crc.getValue();
    }

    /** Brings a file stored as one whole object, which is the content the manifest entry was made of. */
    private boolean run(BackupManifest.FileEntry f, Path dest, Delta.Stats st) throws IOException {
        byte[] obj = objects.get(f.chunks().get(0).sha256());
        return bring(f, dest, st, (file, c) -> {
            fetched.add(c.key());
            return new Delta.Piece(obj, 0);
        }, 1);
    }

    /** What a delta restore does with one file: its pieces in {@code parts} parts (in turn), then the file finished. */
    private boolean bring(BackupManifest.FileEntry f, Path dest, Delta.Stats st, Delta.Fetcher fetcher, int parts) throws IOException {
        boolean existed = Files.isRegularFile(dest);
        Files.createDirectories(dest.getParent());
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(dest, java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE)) {
            int n = f.chunks().size();
            int cut = parts == 1 ? n : n / 2;
            long written = Delta.pieces(f, ch, 0, cut, existed, fetcher, new byte[][] {new byte[0]}, st, progress);
            written += Delta.pieces(f, ch, cut, n, existed, fetcher, new byte[][] {new byte[0]}, st, progress);
            return Delta.finish(f, ch, existed, written, st, DeltaTest::corrupt, () -> false);
        }
    }

    private final java.util.Map<String, byte[]> objects = new java.util.HashMap<>();

    private BackupManifest.FileEntry whole(byte[] content) {
        BackupManifest.FileEntry f = new BackupManifest.FileEntry("f", content.length, "2026-01-01T00:00:00Z", "0600", Hashes.sha256Hex(content),
                List.of(new BackupManifest.Chunk("obj", 0, content.length, content.length, Hashes.sha256Hex(content))));
        objects.put(Hashes.sha256Hex(content), content);
        return f;
    }

    private static BackupManifest.Chunk piece(String key, int offset, int size, byte[] content, Long sourceOffset) {
        return new BackupManifest.Chunk(key, offset, size, 0, Hashes.sha256Hex(Arrays.copyOfRange(content, offset, offset + size)), sourceOffset);
    }

    private static PgproofException corrupt(String what) {
        return new PgproofException(ExitCode.CORRUPT, what);
    }

    private Path write(String name, byte[] content) throws IOException {
        return Files.write(dir.resolve(name), content);
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }
}
