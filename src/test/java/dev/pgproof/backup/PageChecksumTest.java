package dev.pgproof.backup;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pgproof.cluster.PgControl;
import dev.pgproof.cluster.PgControlTest.Postgres;
import dev.pgproof.repo.BackupManifest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link PageChecksum} against the pages initdb --data-checksums writes (PostgreSQL computed every
 * stored pd_checksum), and {@link PageVerifier}'s choice of files, skips and re-reads on real files.
 * PageChecksumIT checks the pages of a running cluster's tables, and a backup that finds a damaged one.
 */
class PageChecksumTest {
    private static final int BLCKSZ = 8192;

    @TempDir
    static Path tempDir;

    static Path data;

    @BeforeAll
    static void initdb() throws Exception {
        data = Postgres.initdb(Postgres.workDir(tempDir), "data", "--data-checksums");
    }

    /** Relation files of the new cluster (template1's and the shared catalogs), as backup paths. */
    private static List<String> relationFiles() throws IOException {
        List<String> out = new ArrayList<>();
        try (Stream<Path> s = Files.walk(data)) {
            s.filter(Files::isRegularFile).map(p -> data.relativize(p).toString()).filter(p -> PageVerifier.segmentOf(p) >= 0).sorted()
                    .forEach(out::add);
        }
        return out;
    }

    @Test
    void matchesTheChecksumPostgresqlStoredInEveryPage() throws Exception {
        assertThat(PgControl.read(data).relSegSize()).isEqualTo(131072);
        List<String> files = relationFiles();
        assertThat(files).contains("global/1262", "base/1/1259").anyMatch(f -> f.endsWith("_fsm")).anyMatch(f -> f.endsWith("_vm"));
        int pages = 0;
        for (String f : files) {
            byte[] b = Files.readAllBytes(data.resolve(f));
            assertThat(b.length % BLCKSZ).as(f).isZero();
            for (int off = 0; off < b.length; off += BLCKSZ) {
                if (PageChecksum.isZero(b, off, BLCKSZ)) {
                    continue;
                }
                int stored = PageChecksum.stored(b, off);
                assertThat(stored).as("%s block %d has a checksum", f, off / BLCKSZ).isNotZero();
                assertThat(PageChecksum.compute(b, off, BLCKSZ, off / BLCKSZ)).as("%s block %d", f, off / BLCKSZ).isEqualTo(stored);
                pages++;
            }
        }
        assertThat(pages).as("pages checked").isGreaterThan(500);
    }

    @Test
    void aChangedByteTheBlockNumberAndTheChecksumFieldDecide() throws Exception {
        byte[] b = Files.readAllBytes(data.resolve("base/1/1259"));
        byte[] page = Arrays.copyOf(b, BLCKSZ);
        int good = PageChecksum.compute(page, 0, BLCKSZ, 0);
        assertThat(PageChecksum.compute(page, 0, BLCKSZ, 131072L * 2)).as("the same page as block 0 of segment 2").isNotEqualTo(good);
        page[8] ^= 0x55; // the checksum field itself does not count
        assertThat(PageChecksum.compute(page, 0, BLCKSZ, 0)).isEqualTo(good);
        page[4000] ^= 0x01;
        assertThat(PageChecksum.compute(page, 0, BLCKSZ, 0)).isNotEqualTo(good);
        // At an offset in a larger buffer, as in a backup window.
        byte[] window = new byte[3 * BLCKSZ];
        System.arraycopy(b, 0, window, BLCKSZ, BLCKSZ);
        assertThat(PageChecksum.compute(window, BLCKSZ, BLCKSZ, 0)).isEqualTo(good);
        assertThat(PageChecksum.isZero(window, 0, BLCKSZ)).isTrue();
        assertThat(PageChecksum.isZero(window, BLCKSZ, BLCKSZ)).isFalse();
        window[2 * BLCKSZ + 5000] = 1; // pd_upper 0, but not all zeros: not a valid new page
        assertThat(PageChecksum.isZero(window, 2 * BLCKSZ, BLCKSZ)).isFalse();
    }

    @Test
    void onlyRelationFilesAreChecked() {
        assertThat(PageVerifier.segmentOf("base/5/16384")).isZero();
        assertThat(PageVerifier.segmentOf("base/5/16384.3")).isEqualTo(3);
        assertThat(PageVerifier.segmentOf("base/5/16384_fsm")).isZero();
        assertThat(PageVerifier.segmentOf("base/5/16384_vm.1")).isEqualTo(1);
        assertThat(PageVerifier.segmentOf("base/5/16384_init")).isZero();
        assertThat(PageVerifier.segmentOf("global/1262")).isZero();
        assertThat(PageVerifier.segmentOf("pg_tblspc/16400/PG_15_202209061/5/16401.2")).isEqualTo(2);
        for (String no : List.of("global/pg_control", "global/pg_filenode.map", "base/5/pg_filenode.map", "base/5/PG_VERSION",
                "base/5/pg_internal.init", "PG_VERSION", "pg_xact/0000", "pg_multixact/offsets/0000", "base/5/16384_foo",
                "pg_tblspc/16400/PG_15_202209061/5/PG_VERSION", "backup_label", "pg_stat/pgstat.stat", "base/pgsql_tmp/1")) {
            assertThat(PageVerifier.segmentOf(no)).as(no).isEqualTo(-1);
        }
    }

    @Test
    void aFailedPageIsReadAgainAndReportedOnlyWhenItKeepsFailing() throws Exception {
        byte[] rel = Files.readAllBytes(data.resolve("base/1/1259"));
        byte[] twoPages = Arrays.copyOf(rel, 2 * BLCKSZ);
        long lsn = Math.max(PageChecksum.lsn(twoPages, 0), PageChecksum.lsn(twoPages, BLCKSZ));
        Path file = tempDir.resolve("16384");
        PageVerifier v = new PageVerifier(dev.pgproof.wal.WalFileName.formatLsn(lsn + 1), BLCKSZ, 131072);
        PageVerifier.File f = v.file(file, 0);

        // Read while damaged, sound again on disk (a torn read): not reported.
        byte[] window = twoPages.clone();
        window[BLCKSZ + 3000] ^= 0x10;
        Files.write(file, twoPages);
        assertThat(f.pageOk(window, 0, BLCKSZ, 0)).isTrue();
        assertThat(f.pageOk(window, BLCKSZ, BLCKSZ, BLCKSZ)).isFalse();
        assertThat(f.confirm(List.of(BLCKSZ), 0)).isEmpty();

        // Damaged on disk too: reported with the block, the LSN and both checksums.
        Files.write(file, window);
        List<BackupManifest.BadPage> bad = f.confirm(List.of(BLCKSZ), 0);
        assertThat(bad).hasSize(1);
        assertThat(bad.get(0).block()).isEqualTo(1);
        assertThat(bad.get(0).stored()).isEqualTo(PageChecksum.stored(twoPages, BLCKSZ));
        assertThat(bad.get(0).computed()).isEqualTo(PageChecksum.compute(window, BLCKSZ, BLCKSZ, 1)).isNotEqualTo(bad.get(0).stored());
        assertThat(bad.get(0).lsn()).isEqualTo(dev.pgproof.wal.WalFileName.formatLsn(PageChecksum.lsn(window, BLCKSZ)));
        assertThat(v.failed.get()).isEqualTo(1);

        // Damaged, but the file now ends before it (truncated) or is gone: not reported.
        Files.write(file, Arrays.copyOf(window, BLCKSZ));
        assertThat(f.confirm(List.of(BLCKSZ), 0)).isEmpty();
        Files.delete(file);
        assertThat(f.confirm(List.of(BLCKSZ), 0)).isEmpty();

        // A page written after the backup started, or a new page, or an incomplete block, is not checked at all.
        PageVerifier early = new PageVerifier(dev.pgproof.wal.WalFileName.formatLsn(lsn), BLCKSZ, 131072);
        byte[] newer = rel.clone();
        int at = PageChecksum.lsn(rel, 0) == lsn ? 0 : BLCKSZ;
        newer[at + 3000] ^= 0x10;
        PageVerifier.File g = early.file(file, 0);
        assertThat(g.pageOk(newer, at, BLCKSZ, at)).isTrue();
        assertThat(g.pageOk(new byte[BLCKSZ], 0, BLCKSZ, 0)).isTrue();
        assertThat(g.pageOk(newer, 0, 4096, 0)).isTrue();
        assertThat(early.skipped.get()).isEqualTo(3);
        assertThat(early.checked.get()).isZero();
    }
}
