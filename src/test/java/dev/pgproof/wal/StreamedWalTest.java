package dev.pgproof.wal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.io.Compression;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.PosixStorage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Streamed partial copies: names, the longest wins, verification, and archive-get's zero-padded answer. */
class StreamedWalTest {
    private static final int SEG = 1 << 20;
    private static final long SYSID = 7712233627740954218L;
    private static final String NAME = "000000010000000000000005";

    @TempDir
    Path dir;

    private final RepoLayout layout = new RepoLayout("main");

    /** The first bytes of segment 5 (1 MiB segments): a long page header, then noise. */
    private static byte[] segmentStart(int length) {
        byte[] b = new byte[length];
        new Random(5).nextBytes(b);
        ByteBuffer h = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        h.putShort(0, (short) 0xD110).putShort(2, (short) 2).putInt(4, 1).putLong(8, 5L * SEG).putInt(16, 0)
                .putLong(24, SYSID).putInt(32, SEG).putInt(36, 8192);
        return b;
    }

    @Test
    void theLongestCopyIsReadAndArchiveGetPadsItWithZeros() throws IOException {
        PosixStorage storage = new PosixStorage(dir.resolve("repo"));
        StreamedWal sw = new StreamedWal(storage, layout);
        byte[] data = segmentStart(300_000);
        StreamedWal.Partial shortOne = sw.store(NAME, data, 100_000, Compression.ZSTD, 3);
        StreamedWal.Partial longOne = sw.store(NAME, data, 300_000, Compression.ZSTD, 3);
        assertThat(shortOne.key()).isEqualTo("main/stream/" + NAME + ".000186A0.partial-" + shortOne.sha256() + ".zst");
        assertThat(sw.of(NAME)).containsExactly(shortOne, longOne);
        assertThat(sw.longest(NAME)).isEqualTo(longOne);
        assertThat(sw.store(NAME, data, 300_000, Compression.ZSTD, 3)).as("the same bytes again").isEqualTo(longOne);

        ClusterIdentity id = new ClusterIdentity(SYSID, 15, SEG, 8192, 8192, true);
        ArchiveGet get = new ArchiveGet(new WalArchive(storage, layout), id);
        Path dest = dir.resolve("RECOVERYXLOG");
        assertThatThrownBy(() -> get.get(NAME, dest)).isInstanceOfSatisfying(PgproofException.class,
                e -> assertThat(e.exitCode()).isEqualTo(ExitCode.NOT_FOUND));
        ArchiveGet.Streamed st = get.getStreamed(NAME, dest);
        assertThat(st.walBytes()).isEqualTo(300_000);
        byte[] got = Files.readAllBytes(dest);
        assertThat(got).hasSize(SEG);
        assertThat(Arrays.copyOf(got, 300_000)).isEqualTo(data);
        assertThat(Arrays.copyOfRange(got, 300_000, SEG)).containsOnly((byte) 0);
        assertThat(get.getStreamed("000000010000000000000006", dest)).as("no copy of another segment").isNull();
    }

    @Test
    void aDamagedCopyIsRefusedNeverServed() throws IOException {
        PosixStorage storage = new PosixStorage(dir.resolve("repo"));
        StreamedWal sw = new StreamedWal(storage, layout);
        byte[] data = segmentStart(50_000);
        StreamedWal.Partial p = sw.store(NAME, data, 50_000, Compression.NONE, 0);
        Path file = dir.resolve("repo").resolve(p.key());
        byte[] raw = Files.readAllBytes(file);
        raw[1000] ^= 1;
        Files.write(file, raw);
        assertThatThrownBy(() -> sw.readVerified(p)).isInstanceOf(WalArchive.CorruptWalException.class).hasMessageContaining("is corrupt");
        ArchiveGet get = new ArchiveGet(new WalArchive(storage, layout), new ClusterIdentity(SYSID, 15, SEG, 8192, 8192, true));
        assertThatThrownBy(() -> get.getStreamed(NAME, dir.resolve("x"))).isInstanceOfSatisfying(PgproofException.class,
                e -> assertThat(e.exitCode()).isEqualTo(ExitCode.GET_CORRUPT));
        assertThat(dir.resolve("x")).doesNotExist();
    }

    @Test
    void keysThatAreNotPartialCopiesAreIgnored() {
        assertThat(StreamedWal.parse("main/stream/" + NAME + ".00001000.partial-" + "a".repeat(64) + ".zst").length()).isEqualTo(4096);
        assertThat(StreamedWal.parse("main/stream/.x.tmp.1.2")).isNull();
        assertThat(StreamedWal.parse("main/stream/" + NAME + "-" + "a".repeat(64) + ".zst")).isNull();
    }

    @Test
    void theDefaultSlotNameIsAValidSlotName() {
        assertThat(WalReceiver.defaultSlot("Main-2.db")).isEqualTo("pgproof_main_2_db");
        assertThat(WalReceiver.defaultSlot("x".repeat(63))).hasSize(63);
    }
}
