package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * wal-receive against a real cluster that archives into the same repository at the same time: a
 * receiver killed mid-stream (and one killed while storing) leaves the slot no further than what is
 * stored and nothing that reads as a segment; the next one resumes without a gap; a server restart
 * is survived by reconnecting; one segment is never stored twice; and a point-in-time restore whose
 * target lies in the segment still being written (not archived) gets its WAL from the streamed
 * partial copy, judged by the data.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class WalReceiveIT {
    private static final String CLUSTER = "recv";
    private static final String SLOT = "pgproof_recv";
    private static final int SEG = 16 * 1024 * 1024;
    private static final Duration WAIT = Duration.ofSeconds(90);
    private static final Pattern PARTIAL = Pattern.compile("([0-9A-F]{24})\\.([0-9A-F]{8})\\.partial-[0-9a-f]{64}\\.zst");

    @TempDir
    static Path tmp;

    private LocalRepo local;
    private Path repo;
    private Path work;
    private PgCluster source;
    private Running receiver;
    /** The first segment streamed: every later one up to the slot must be stored. */
    private long firstSegment;

    @BeforeAll
    void setUp() throws IOException {
        local = LocalRepo.in(tmp);
        repo = local.repo;
        work = local.ownedDir("work");
        source = local.archivingCluster(CLUSTER, "recv");
        source.psql("CREATE TABLE t (id int, payload text)");
    }

    @AfterAll
    void tearDown() {
        if (receiver != null) {
            receiver.close();
        }
        if (source != null) {
            source.stop();
        }
    }

    private Running startReceiver(Map<String, String> env) throws IOException {
        return Running.asOwner(work, env, "wal-receive", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", source.dataDir().toString(),
                "--create-slot", "--partial-interval", "1", "--report-interval", "2", "--retry-for", "60");
    }

    private void insert(int from, int n) {
        source.psql("INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(" + from + ", " + (from + n - 1) + ") g");
    }

    @Test
    @Order(1)
    void aKilledReceiverLosesNothingAndTheNextResumesAlongsideTheArchiver() throws Exception {
        receiver = startReceiver(Map.of());
        String first = receiver.awaitLine("wal-receive: cluster \"recv\": streaming from ", WAIT);
        assertThat(first).contains("through slot \"" + SLOT + "\"");
        firstSegment = lsn(first.substring("wal-receive: cluster \"recv\": streaming from ".length()).split(" ")[0]) / SEG;
        assertThat(receiver.stderr()).contains("created physical replication slot \"" + SLOT + "\"");
        insert(1, 60_000); // about 20 MB of WAL: at least one segment completes
        receiver.awaitLine("wal-receive: cluster \"recv\": stored segment ", WAIT);
        insert(60_001, 20_000);
        receiver.killTree(); // SIGKILL while WAL is arriving
        receiver = null;

        long restart = slotRestartLsn();
        assertThat(restart).isPositive();
        assertStoredThrough(restart);

        // Killed while storing a partial copy: nothing under the final name, the slot where it was.
        try (Running r = startReceiver(Map.of("PGPROOF_TEST_HOOK", "wal-receive-before-partial-commit"))) {
            String line = r.awaitLine("HOOK wal-receive-before-partial-commit ", WAIT);
            String key = line.substring(line.lastIndexOf(' ') + 1);
            assertThat(key).startsWith(CLUSTER + "/stream/");
            r.killTree();
            assertThat(repo.resolve(key)).as("partial copy whose store was killed").doesNotExist();
        }
        assertThat(slotRestartLsn()).isEqualTo(restart);
        assertStoredThrough(restart);

        // Meanwhile the archiver stores the segment the slot points into; the next receiver streams it again.
        String archived = source.switchWalAndAwaitArchived(WAIT);
        receiver = startReceiver(Map.of());
        String resumed = receiver.awaitLine("wal-receive: cluster \"recv\": streaming from ", WAIT);
        long from = lsn(resumed.substring("wal-receive: cluster \"recv\": streaming from ".length()).split(" ")[0]);
        assertThat(from).as("resumes at the start of the segment holding the slot's restart_lsn").isEqualTo(restart - restart % SEG);
        awaitLog("stored segment " + archived + " (already in the repository with identical content)");

        insert(80_001, 60_000);
        String switched = source.switchWalAndAwaitArchived(WAIT);
        awaitLog("stored segment " + switched);
        Map<String, Integer> copies = walCopies();
        assertThat(copies).containsKey(switched);
        assertThat(copies.values()).as("copies per WAL name (archiver and receiver together): " + copies).allMatch(n -> n == 1);
    }

    @Test
    @Order(2)
    void theReceiverReconnectsAfterTheServerRestarts() throws Exception {
        insert(140_001, 1_000);
        source.restart();
        receiver.awaitLine("WARNING: wal-receive: cluster \"recv\": ", WAIT);
        receiver.awaitLine("wal-receive: cluster \"recv\": streaming from ", WAIT);
        insert(141_001, 1_000);
        String lsn = source.psql("SELECT pg_current_wal_lsn()");
        awaitPartialCovering(lsn(lsn));
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (slotRestartLsn() < lsn(lsn)) {
            assertThat(System.nanoTime()).as("slot restart_lsn reaching " + lsn + " once it is stored").isLessThan(deadline);
            PgCluster.pause(200);
        }
    }

    @Test
    @Order(3)
    void aServerThatStopsAnsweringIsGivenUpAfterTheTimeoutNotWaitedForForever() throws Exception {
        receiver.terminate(WAIT);
        receiver = Running.asOwner(work, Map.of(), "wal-receive", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                source.dataDir().toString(), "--partial-interval", "1", "--report-interval", "2", "--timeout", "5", "--retry-for", "60");
        receiver.awaitLine("wal-receive: cluster \"recv\": streaming from ", WAIT);
        String walsender = source.psql("SELECT pid FROM pg_stat_replication WHERE application_name = 'pgproof_wal_receive'");
        assertThat(walsender).matches("[0-9]+");
        signal("STOP", walsender); // the server's side of the stream hangs: no data, no keepalive, no answer
        try {
            receiver.awaitLine("WARNING: wal-receive: cluster \"recv\": no message from the server for 5 s", WAIT);
            // The hung walsender still holds the slot: the receiver retries instead of giving up.
            receiver.awaitLine("WARNING: wal-receive: cluster \"recv\": ", WAIT);
            assertThat(receiver.stderr()).contains("is active for PID " + walsender);
        } finally {
            signal("CONT", walsender);
        }
        receiver.awaitLine("wal-receive: cluster \"recv\": streaming from ", WAIT);
        insert(142_001, 500);
        awaitPartialCovering(lsn(source.psql("SELECT pg_current_wal_lsn()")));
    }

    private static void signal(String sig, String pid) {
        PgCluster.run(List.of("kill", "-" + sig, pid), Map.of(), Path.of("/"), Duration.ofSeconds(30)).assertOk("kill -" + sig + " " + pid);
    }

    @Test
    @Order(4)
    void aRestoreReachesATargetInTheSegmentOnlyStreamingHas() throws Exception {
        Pgproof.run("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", source.dataDir().toString(), "--start-fast")
                .assertOk("backup");
        // Reading every page once sets its hint bits, which WAL-logs a full page image of each (data checksums are on):
        // done before the switch, so that the segment below holds only the small changes that follow.
        source.tableDigests();
        source.psql("SELECT pg_switch_wal()");
        insert(200_001, 3_000);
        long point = lsn(source.psql("SELECT pg_create_restore_point('streamed')"));
        Map<String, String> atTarget = source.tableDigests();
        insert(203_001, 2_000);
        source.psql("DELETE FROM t WHERE id < 1000");
        long end = lsn(source.psql("SELECT pg_current_wal_lsn()"));
        Map<String, String> atEnd = source.tableDigests();
        String segment = awaitPartialCovering(end);
        assertThat(end / SEG).as("restore point and end in one segment").isEqualTo(point / SEG);
        assertThat(walCopies()).as("the segment of the target is not archived").doesNotContainKey(segment);
        assertThat(receiver.stderr()).doesNotContain("stored segment " + segment);
        PgCluster.ProcessResult verify = Pgproof.run("verify", "--cluster", CLUSTER, "--repo", repo.toString()).assertOk("verify");
        assertThat(verify.stderr()).containsPattern(" WAL files, [12] streamed partial cop(y|ies), ");
        String info = Pgproof.run("info", "--cluster", CLUSTER, "--repo", repo.toString()).assertOk("info").stdout();
        assertThat(info).contains("streamed (wal-receive): segment " + segment).contains("with the streamed partial copy");

        Path restores = local.ownedDir("restores");
        PgCluster.ProcessResult r = Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                restores.resolve("named").toString(), "--target-name", "streamed", "--target-action", "promote", "--archive-mode", "off")
                .assertOk("restore to the restore point");
        assertThat(r.stderr()).contains("restoring backup");
        PgCluster named = PgCluster.adopt(restores.resolve("named"), restores.resolve("named-sock"), PgCluster.freePort());
        try {
            named.start();
            named.awaitPromotion(WAIT);
            assertThat(named.tableDigests()).isEqualTo(atTarget);
            assertThat(named.logTail(200)).as("recovery log; receiver:\n" + receiver.stderr() + "\nsource:\n" + source.logTail(60))
                    .contains("from the streamed partial copy");
        } finally {
            named.stop();
        }

        assertLatestRestoreHas(restores.resolve("latest"), atEnd, "restore to the end of the streamed WAL");
        assertThat(walCopies()).doesNotContainKey(segment);
    }

    @Test
    @Order(5)
    void sigtermStoresWhatWasReceivedBeforeItExits() throws Exception {
        receiver.terminate(WAIT);
        // Partial copies only at the stop: what it received must be stored when SIGTERM ends it.
        receiver = Running.asOwner(work, Map.of(), "wal-receive", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                source.dataDir().toString(), "--partial-interval", "3600", "--report-interval", "1");
        receiver.awaitLine("wal-receive: cluster \"recv\": streaming from ", WAIT);
        insert(300_001, 500);
        long lsn = lsn(source.psql("SELECT pg_current_wal_lsn()"));
        String name = String.format("%08X%08X%08X", 1, lsn / SEG / 256, lsn / SEG % 256);
        long before = partials().getOrDefault(name, 0L);
        assertThat(before).as("stored before the stop").isLessThan(lsn % SEG);
        Pattern received = Pattern.compile("received ([0-9A-F]+/[0-9A-F]+), ");
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (true) {
            Matcher m = received.matcher(receiver.awaitLine("wal-receive: cluster \"recv\": received ", WAIT));
            if (m.find() && lsn(m.group(1)) >= lsn) {
                break;
            }
            assertThat(System.nanoTime()).as("receiving " + Long.toHexString(lsn)).isLessThan(deadline);
        }
        PgCluster.ProcessResult r = receiver.terminate(WAIT);
        receiver = null;
        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(12);
        assertThat(r.stderr()).contains("wal-receive: cluster \"recv\": stopped; stored through ");
        assertThat(partials().getOrDefault(name, 0L)).as("partial copy of " + name + " after SIGTERM").isGreaterThanOrEqualTo(lsn % SEG);
    }

    @Test
    @Order(6)
    void theReceiverFollowsAPromotionOntoTheNextTimeline() throws Exception {
        assertThat(receiver).as("stopped by the previous test").isNull();
        insert(400_001, 2_000);
        // The cluster becomes a standby of nothing, then is promoted: timeline 2; the slot stays on timeline 1.
        source.stop();
        Path signal = source.dataDir().resolve("standby.signal");
        Files.writeString(signal, "");
        PgCluster.chownToOwner(signal, false);
        source.configure("restore_command", "'/bin/false'");
        source.start();
        source.psql("SELECT pg_promote()");
        source.awaitPromotion(WAIT);
        assertThat(source.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")).startsWith("00000002");
        insert(402_001, 2_000);

        receiver = startReceiver(Map.of());
        receiver.awaitLine("wal-receive: cluster \"recv\": replication slot \"" + SLOT + "\" is on timeline 1, which the server left at ", WAIT);
        receiver.awaitLine("wal-receive: cluster \"recv\": timeline 1 is stored up to its end at ", WAIT);
        String streaming = receiver.awaitLine("wal-receive: cluster \"recv\": streaming from ", WAIT);
        assertThat(streaming).contains(" on timeline 2 ");
        insert(404_001, 1_000);
        long end = lsn(source.psql("SELECT pg_current_wal_lsn()"));
        Map<String, String> atEnd = source.tableDigests();
        String name = String.format("%08X%08X%08X", 2, end / SEG / 256, end / SEG % 256);
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (partials().getOrDefault(name, 0L) < end % SEG && !walCopies().containsKey(name)) {
            assertThat(System.nanoTime()).as("timeline 2 streamed to " + Long.toHexString(end) + "\n" + receiver.stderr()).isLessThan(deadline);
            PgCluster.pause(100);
        }
        Pgproof.run("verify", "--cluster", CLUSTER, "--repo", repo.toString()).assertOk("verify after the promotion");

        // A restore follows the history file to timeline 2 and reaches what was streamed there.
        assertLatestRestoreHas(local.ownedDir("restores-tli").resolve("latest"), atEnd, "restore along timeline 2");
    }

    /** Restores the newest backup to the end of the repository's WAL into dir, recovers it and compares its tables. */
    private void assertLatestRestoreHas(Path dir, Map<String, String> expected, String what) {
        Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", dir.toString(), "--archive-mode", "off")
                .assertOk(what);
        PgCluster copy = PgCluster.adopt(dir, dir.resolveSibling(dir.getFileName() + "-sock"), PgCluster.freePort());
        try {
            copy.start();
            copy.awaitPromotion(WAIT);
            assertThat(copy.tableDigests()).as(what).isEqualTo(expected);
        } finally {
            copy.stop();
        }
    }

    private long slotRestartLsn() {
        return lsn(source.psql("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '" + SLOT + "'"));
    }

    /** Every WAL byte below {@code lsn} from the first streamed segment on is in the repository: segments, then a partial copy. */
    private void assertStoredThrough(long lsn) throws IOException {
        long seg = lsn / SEG;
        long off = lsn % SEG;
        Map<String, Integer> copies = walCopies();
        String name = String.format("%08X%08X%08X", 1, seg / 256, seg % 256);
        for (long s = firstSegment; s < seg; s++) {
            assertThat(copies).as("segment before the slot's restart_lsn").containsKey(String.format("%08X%08X%08X", 1, s / 256, s % 256));
        }
        if (off > 0 && !copies.containsKey(name)) {
            long longest = partials().getOrDefault(name, 0L);
            assertThat(longest).as("partial copy of " + name + " against slot restart_lsn offset " + off).isGreaterThanOrEqualTo(off);
        }
    }

    private String awaitPartialCovering(long lsn) throws IOException {
        String name = String.format("%08X%08X%08X", 1, lsn / SEG / 256, lsn / SEG % 256);
        long t0 = System.nanoTime();
        long deadline = t0 + WAIT.toNanos();
        while (partials().getOrDefault(name, 0L) < lsn % SEG) {
            assertThat(System.nanoTime()).as("a partial copy of " + name + " covering " + Long.toHexString(lsn) + "\n" + receiver.stderr())
                    .isLessThan(deadline);
            PgCluster.pause(100);
        }
        // Reported, not asserted: how far behind the repository was (--partial-interval 1, a loaded test machine).
        System.out.printf("WalReceiveIT: a partial copy covered WAL written before the wait within %d ms%n", (System.nanoTime() - t0) / 1_000_000);
        return name;
    }

    private void awaitLog(String text) {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!receiver.stderr().contains(text)) {
            assertThat(System.nanoTime()).as("\"" + text + "\" from wal-receive\n" + receiver.stderr()).isLessThan(deadline);
            PgCluster.pause(200);
        }
    }

    /** The longest partial copy of each segment in the repository. */
    private Map<String, Long> partials() throws IOException {
        Map<String, Long> out = new TreeMap<>();
        Path dir = repo.resolve(CLUSTER).resolve("stream");
        if (!Files.isDirectory(dir)) {
            return out;
        }
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.toList()) {
                Matcher m = PARTIAL.matcher(p.getFileName().toString());
                if (m.matches()) {
                    out.merge(m.group(1), Long.parseLong(m.group(2), 16), Math::max);
                }
            }
        }
        return out;
    }

    /** Stored copies per WAL segment name. */
    private Map<String, Integer> walCopies() throws IOException {
        Map<String, Integer> out = new TreeMap<>();
        try (Stream<Path> s = Files.walk(repo.resolve(CLUSTER).resolve("wal"))) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                String f = p.getFileName().toString();
                if (f.matches("[0-9A-F]{24}-[0-9a-f]{64}\\.zst")) {
                    out.merge(f.substring(0, 24), 1, Integer::sum);
                }
            }
        }
        return out;
    }

    private static long lsn(String text) {
        String[] p = text.strip().split("/");
        return (Long.parseLong(p[0], 16) << 32) | Long.parseLong(p[1], 16);
    }
}
