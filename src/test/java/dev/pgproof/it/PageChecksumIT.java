package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * Data page checksums verified during a backup of a real cluster (initdb --data-checksums): every
 * page of a freshly written table matches pgproof's checksum; a page damaged on disk while the server
 * was down is named (file, block) by the backup, which completes with exit 17 and records it for
 * info; and a backup under concurrent pgbench writes, whose pages change while they are read,
 * reports nothing.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class PageChecksumIT {
    private static final String CLUSTER = "pagecheck";
    private static final int BLCKSZ = 8192;
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path tmp;

    private Path repo;
    private PgCluster source;

    @BeforeAll
    void setUp() throws IOException {
        LocalRepo local = LocalRepo.in(tmp);
        repo = local.repo;
        source = local.archivingCluster(CLUSTER, "pagecheck");
        source.pgbench("-i", "-s", "3", "-q");
    }

    @AfterAll
    void tearDown() {
        if (source != null) {
            source.stop();
        }
    }

    @Test
    @Order(1)
    void aDamagedPageIsNamedAndRecordedAndTheBackupCompletes() throws Exception {
        source.psql("CREATE TABLE damaged (id int, v text) WITH (autovacuum_enabled = off)");
        source.psql("INSERT INTO damaged SELECT g, md5(g::text) FROM generate_series(1, 10000) g");
        source.psql("CREATE TABLE clean (id int, v text) WITH (autovacuum_enabled = off)");
        source.psql("INSERT INTO clean SELECT g, md5(g::text) FROM generate_series(1, 10000) g");
        source.psql("CHECKPOINT");
        String damaged = source.psql("SELECT pg_relation_filepath('damaged')");
        String clean = source.psql("SELECT pg_relation_filepath('clean')");
        Path file = source.dataDir().resolve(damaged);
        assertThat(Files.size(file)).isGreaterThan(10L * BLCKSZ);

        // Every page as PostgreSQL wrote it matches the checksum pgproof computes (block number = page number: one segment).
        byte[] pages = Files.readAllBytes(file);
        for (int off = 0; off < pages.length; off += BLCKSZ) {
            assertThat(dev.pgproof.backup.PageChecksum.compute(pages, off, BLCKSZ, off / BLCKSZ)).as("block %d of %s", off / BLCKSZ, damaged)
                    .isEqualTo(dev.pgproof.backup.PageChecksum.stored(pages, off));
        }

        // Damage the middle of block 3 (not its header) while the server is down; nothing reads the table after the start.
        source.stop();
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.seek(3L * BLCKSZ + 4000);
            raf.write(new byte[] {0x13, 0x37, 0x13, 0x37});
        }
        // PostgreSQL's own judge agrees: that block, and only it.
        PgCluster.ProcessResult check = PgCluster.runAsOwner(List.of(PgCluster.bin("pg_checksums"), "--check", "-D",
                source.dataDir().toString()), Map.of("LC_ALL", "C"), null);
        assertThat(check.exitCode()).as(check.stdout() + check.stderr()).isEqualTo(1);
        assertThat(check.stdout() + check.stderr()).contains("Bad checksums:  1").contains("\"" + file + "\", block 3:");
        source.start();

        PgCluster.ProcessResult r = Pgproof.run("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                source.dataDir().toString(), "--start-fast");
        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(17);
        String label = r.stdout().strip();
        assertThat(label).endsWith("F");
        assertThat(r.stderr()).contains("WARNING: backup " + label + ": page checksum verification failed in file \"" + damaged
                + "\", block 3: the page header holds 0x").contains("ERROR: backup " + label + " of cluster \"" + CLUSTER
                + "\" is complete, but 1 page(s) in 1 file(s) of the cluster failed their data checksums").doesNotContain(clean + "\"");

        JsonNode info = info();
        JsonNode backup = info.path("backups").get(0);
        assertThat(backup.path("label").asText()).isEqualTo(label);
        JsonNode pc = backup.path("pageChecksums");
        assertThat(pc.path("failed").asLong()).isEqualTo(1);
        assertThat(pc.path("checked").asLong()).isGreaterThan(1000);
        assertThat(pc.path("files")).hasSize(1);
        assertThat(pc.path("files").get(0).path("path").asText()).isEqualTo(damaged);
        assertThat(pc.path("files").get(0).path("blocks").toString()).isEqualTo("[3]");
        PgCluster.ProcessResult text = Pgproof.run("info", "--repo", repo.toString(), "--cluster", CLUSTER).assertOk("info");
        assertThat(text.stdout()).contains(label + "  full").contains("page checksums FAILED")
                .contains("PAGE CHECKSUM ERRORS: 1 (" + damaged + " block 3)");

        // The manifest records the page; the backup is complete (restore would take it).
        JsonNode m = Pgproof.readManifest(repo.resolve(CLUSTER).resolve("backup").resolve(label));
        for (JsonNode f : m.path("files")) {
            if (f.path("path").asText().equals(damaged)) {
                assertThat(f.path("pageChecksumErrors").get(0).path("block").asLong()).isEqualTo(3);
            } else {
                assertThat(f.has("pageChecksumErrors")).as(f.path("path").asText()).isFalse();
            }
        }
        assertThat(Files.exists(repo.resolve(CLUSTER).resolve("backup").resolve(label).resolve("backup.complete"))).isTrue();
        // verify judges the repository, which is sound; it mentions what the backup found.
        PgCluster.ProcessResult v = Pgproof.run("verify", "--repo", repo.toString(), "--cluster", CLUSTER).assertOk("verify");
        assertThat(v.stderr()).contains("WARNING: verify of cluster \"" + CLUSTER + "\": backup " + label + " found 1 page(s) of the cluster "
                + "failing their data checksums");
    }

    @Test
    @Order(2)
    void pagesWrittenDuringTheBackupAreNotReported() throws Exception {
        source.psql("DROP TABLE IF EXISTS damaged");
        source.psql("CHECKPOINT");
        CompletableFuture<String> load = CompletableFuture.supplyAsync(() -> source.pgbench("-c", "2", "-T", "10", "-n"));
        PgCluster.pause(1500);
        PgCluster.ProcessResult r = Pgproof.run("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                source.dataDir().toString(), "--start-fast").assertOk("backup under pgbench writes");
        String pgbench = load.join();
        assertThat(pgbench).contains("number of transactions actually processed");
        assertThat(r.stderr()).doesNotContain("WARNING").contains("page checksums: ").contains(" pages verified, no errors");
        JsonNode backups = info().path("backups");
        JsonNode pc = backups.get(backups.size() - 1).path("pageChecksums");
        assertThat(pc.path("failed").asLong()).isZero();
        assertThat(pc.path("checked").asLong()).isGreaterThan(1000);
        assertThat(pc.path("files")).isEmpty();
    }

    private JsonNode info() throws IOException {
        PgCluster.ProcessResult r = Pgproof.run("info", "--repo", repo.toString(), "--cluster", CLUSTER, "--output", "json").assertOk("info");
        return JSON.readTree(r.stdout()).path("clusters").get(0);
    }
}
