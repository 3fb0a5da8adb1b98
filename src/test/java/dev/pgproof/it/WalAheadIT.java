package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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
 * WAL pushed ahead of the archiver: archive-push pushing other ready files, the agent, the
 * launcher's answer for acknowledged files (no Java), an acknowledgement that only ever matches the
 * exact file stored, a killed agent leaving nothing half-stored or acknowledged, and a restore from
 * WAL pushed this way judged by the data.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class WalAheadIT {
    private static final String CLUSTER = "ahead";
    private static final Duration ARCHIVE_TIMEOUT = Duration.ofSeconds(120);

    @TempDir
    static Path tmp;

    private Path root;
    private Path repo;
    private Path spool;
    private Path work;
    private PgCluster source;
    private String archiveCommand;
    private String label;

    @BeforeAll
    void setUp() throws IOException {
        LocalRepo local = LocalRepo.in(tmp);
        root = local.root;
        repo = local.repo;
        spool = local.ownedDir("spool");
        work = local.ownedDir("work");
        source = PgCluster.create(root.resolve("clusters"), "ahead", PgCluster.freePort());
        archiveCommand = Pgproof.archiveCommand(CLUSTER, repo).replace(" %p", " --spool-path " + spool + " %p");
        source.configure("archive_mode", "on");
        source.configure("archive_command", "''"); // archiving set up later: WAL files pile up as .ready
        source.start();
        Pgproof.run("init", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", source.dataDir().toString()).assertOk("init");
        source.pgbench("-i", "-s", "1", "-q");
    }

    @AfterAll
    void tearDown() {
        if (source != null) {
            source.stop();
        }
    }

    @Test
    @Order(1)
    void oneArchivePushPushesTheOtherReadyFilesAheadAndTheLauncherAnswersForThem() throws IOException {
        List<String> segments = switchSegments(6);
        assertThat(readyFiles()).containsAll(segments);
        setArchiveCommand(PgCluster.quote(archiveCommand));
        String last = awaitArchived(segments.get(segments.size() - 1));
        assertThat(last).isNotEmpty();
        String log = source.logTail(400);
        assertThat(log).containsPattern("archive-push: pushed \\d+ more ready WAL files? ahead for cluster \"ahead\"");
        assertThat(count(log, "answered by the launcher")).as("archive-push calls answered from the spool\n" + log).isGreaterThanOrEqualTo(2);
        assertThat(source.psql("SELECT failed_count FROM pg_stat_archiver")).isEqualTo("0");
        for (String s : segments) {
            assertThat(spool.resolve(CLUSTER).resolve("ack").resolve(s)).as("ack of " + s).exists();
        }
        label = Pgproof.run("backup", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", source.dataDir().toString(),
                "--start-fast").assertOk("backup").stdout().strip();
    }

    @Test
    @Order(2)
    void anAcknowledgementMatchesOnlyTheExactFileThatWasStored() throws IOException {
        Path walDir = Files.createDirectories(work.resolve("pg_wal"));
        PgCluster.chownToOwner(walDir, false);
        String name = source.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT); // archived, and not yet recycled (no checkpoint since)
        Path copy = walDir.resolve(name);
        Files.copy(source.dataDir().resolve("pg_wal").resolve(name), copy);
        PgCluster.chownToOwner(copy, false);
        Path spool2 = Files.createDirectories(work.resolve("spool2"));
        PgCluster.chownToOwner(spool2, false);
        String[] push = {"archive-push", "--cluster", CLUSTER, "--repo", repo.toString(), "--spool-path", spool2.toString(), copy.toString()};

        PgCluster.ProcessResult first = Pgproof.runAsOwner(work, Map.of(), push).assertOk("push of a copy");
        assertThat(first.stderr()).contains(name + " was already stored for cluster \"ahead\" with identical content");
        PgCluster.ProcessResult fast = Pgproof.runAsOwner(work, Map.of(), push).assertOk("push answered from the spool");
        assertThat(fast.stderr()).contains(name + " is already durable for cluster \"ahead\"").contains("answered by the launcher");

        // Same content, new mtime: not the acknowledged file any more, so Java checks it again.
        Files.setLastModifiedTime(copy, FileTime.from(Instant.now().plusSeconds(5)));
        PgCluster.ProcessResult touched = Pgproof.runAsOwner(work, Map.of(), push).assertOk("push after touch");
        assertThat(touched.stderr()).doesNotContain("answered by the launcher").contains("already stored for cluster \"ahead\" with identical content");

        // Other content under the acknowledged name: refused, never answered from the spool.
        try (var ch = java.nio.channels.FileChannel.open(copy, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap(new byte[] {0x55}), 8 * 1024 * 1024);
        }
        PgCluster.ProcessResult changed = Pgproof.runAsOwner(work, Map.of(), push);
        assertThat(changed.exitCode()).as(changed.stderr()).isEqualTo(7);
        assertThat(changed.stderr()).contains("is already archived for cluster \"ahead\" with different content");
    }

    @Test
    @Order(3)
    void theAgentPushesAheadAKilledAgentLeavesNothingHalfDoneAndTheWalRestores() throws Exception {
        // Killed while its push waits before the commit (the archiver paused meanwhile): nothing stored under
        // the final name, no acknowledgement; the archiver then archives the file itself.
        setArchiveCommand("''");
        List<String> first = switchSegments(1);
        String key;
        try (Running agent = Running.asOwner(work, Map.of("PGPROOF_TEST_HOOK", "archive-push-before-commit"), "agent", "--cluster", CLUSTER,
                "--repo", repo.toString(), "--pgdata", source.dataDir().toString(), "--spool-path", spool.toString())) {
            String line = agent.awaitLine("HOOK archive-push-before-commit ", Duration.ofMinutes(1));
            key = line.substring(line.lastIndexOf(' ') + 1);
            assertThat(key).startsWith(CLUSTER + "/wal/").contains("/" + first.get(0) + "-");
            agent.killTree();
        }
        assertThat(repo.resolve(key)).as("object of the killed push").doesNotExist();
        assertThat(spool.resolve(CLUSTER).resolve("ack").resolve(first.get(0))).as("ack of the killed push").doesNotExist();
        setArchiveCommand(PgCluster.quote(archiveCommand));
        awaitArchived(first.get(0));
        assertThat(repo.resolve(key)).exists();

        try (Running agent = Running.asOwner(work, Map.of(), "agent", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata",
                source.dataDir().toString(), "--spool-path", spool.toString(), "--interval", "50")) {
            agent.awaitLine("agent: cluster \"ahead\"", Duration.ofMinutes(1));
            source.pgbench("-c", "2", "-t", "300", "-n");
            List<String> segments = switchSegments(4);
            awaitArchived(segments.get(segments.size() - 1));
            agent.awaitLine("agent: pushed ", Duration.ofMinutes(1));
            assertThat(agent.stderr()).containsPattern("agent: pushed \\d+ WAL files? for cluster \"ahead\"");
        }
        assertThat(source.psql("SELECT failed_count FROM pg_stat_archiver")).isEqualTo("0");
        assertThat(count(source.logTail(600), "answered by the launcher")).isGreaterThanOrEqualTo(3);

        source.psql("CREATE TABLE after_agent AS SELECT 42 AS answer");
        String end = source.switchWalAndAwaitArchived(ARCHIVE_TIMEOUT);
        assertThat(end).isNotEmpty();
        Map<String, String> atEnd = source.tableDigests();
        Path restores = Files.createDirectories(work.resolve("restores"));
        PgCluster.chownToOwner(restores, false);
        Path dest = restores.resolve("end");
        Path getSpool = Files.createDirectories(work.resolve("get-spool"));
        PgCluster.chownToOwner(getSpool, false);
        Pgproof.run("restore", "--cluster", CLUSTER, "--repo", repo.toString(), "--pgdata", dest.toString(), "--set", label,
                "--archive-mode", "off", "--spool-path", getSpool.toString(), "--prefetch", "4").assertOk("restore");
        assertThat(Files.readString(dest.resolve("postgresql.auto.conf"))).contains("--spool-path " + getSpool);
        PgCluster copy = PgCluster.adopt(dest, work.resolve("end-sock"), PgCluster.freePort());
        try {
            copy.start();
            copy.awaitPromotion(Duration.ofMinutes(2));
            assertThat(copy.tableDigests()).isEqualTo(atEnd);
            // archive-get started the background prefetcher, which fetched following segments into the spool
            // (how many replay then took from it depends on timing: order 4 shows that path step by step).
            String log = copy.logTail(1000);
            assertThat(log).contains("archive-get: started the background prefetcher for the 4 segments after ");
            assertThat(Files.readString(getSpool.resolve(CLUSTER).resolve("prefetch.log"))).containsPattern("prefetch: fetched \\d+ segments? after ");
        } finally {
            copy.stop();
        }
    }

    private void setArchiveCommand(String quoted) {
        source.psql("ALTER SYSTEM SET archive_command = " + quoted);
        source.psql("SELECT pg_reload_conf()");
    }

    @Test
    @Order(4)
    void aSpooledSegmentThatNoLongerMatchesItsChecksumIsFetchedAgain() throws Exception {
        List<String> names = new ArrayList<>();
        try (Stream<Path> s = Files.walk(repo.resolve(CLUSTER).resolve("wal"))) {
            s.map(p -> p.getFileName().toString()).filter(n -> n.matches("[0-9A-F]{24}-[0-9a-f]{64}\\.zst")).sorted().forEach(names::add);
        }
        assertThat(names).hasSizeGreaterThan(3);
        String first = names.get(0).substring(0, 24);
        String second = names.get(1).substring(0, 24);
        String secondSha = names.get(1).substring(25, 89);
        Path getSpool = Files.createDirectories(work.resolve("get-spool-2"));
        PgCluster.chownToOwner(getSpool, false);
        String[] common = {"--cluster", CLUSTER, "--repo", repo.toString(), "--spool-path", getSpool.toString(), "--prefetch", "2"};
        PgCluster.ProcessResult r = Pgproof.runAsOwner(work, Map.of(), concat(new String[] {"archive-get"}, common, new String[] {first, "first"}));
        r.assertOk("archive-get of the first segment");
        assertThat(r.stderr()).contains("archive-get: started the background prefetcher for the 2 segments after " + first);
        Path spooled = getSpool.resolve(CLUSTER).resolve("get").resolve(second);
        Path third = getSpool.resolve(CLUSTER).resolve("get").resolve(names.get(2).substring(0, 24));
        Path ok = getSpool.resolve(CLUSTER).resolve("get").resolve(second + ".ok");
        awaitFile(ok, getSpool.resolve(CLUSTER).resolve("prefetch.log"));
        awaitFile(third.resolveSibling(third.getFileName() + ".ok"), getSpool.resolve(CLUSTER).resolve("prefetch.log"));
        // The SHA-256 from the repository name, then the POSIX cksum and size the launcher checks.
        assertThat(Files.readString(ok).strip()).matches(secondSha + " \\d+ 16777216");

        try (var ch = java.nio.channels.FileChannel.open(spooled, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap(new byte[] {0x42}), 4 * 1024 * 1024);
        }
        r = Pgproof.runAsOwner(work, Map.of(), concat(new String[] {"archive-get"}, common, new String[] {second, "second"}));
        r.assertOk("archive-get of the tampered spooled segment");
        assertThat(r.stderr()).doesNotContain("from the prefetch spool").contains("archive-get: restored " + second + " for cluster \"ahead\" (");
        assertThat(sha256(work.resolve("second"))).isEqualTo(secondSha);

        // A spooled segment that is intact is answered by the launcher, without Java.
        PgCluster.ProcessResult fast = Pgproof.runAsOwner(work, Map.of(), concat(new String[] {"archive-get"}, common,
                new String[] {third.getFileName().toString(), "third"}));
        fast.assertOk("archive-get of the intact spooled segment");
        assertThat(fast.stderr()).contains("from the prefetch spool (checksum verified; answered by the launcher)");
        assertThat(sha256(work.resolve("third"))).isEqualTo(names.get(2).substring(25, 89));
    }

    private static void awaitFile(Path file, Path log) throws Exception {
        long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
        while (!Files.exists(file)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(file + " did not appear; prefetch log:\n" + (Files.exists(log) ? Files.readString(log) : "(none)"));
            }
            Thread.sleep(100);
        }
    }

    private static String[] concat(String[]... parts) {
        List<String> out = new ArrayList<>();
        for (String[] p : parts) {
            out.addAll(List.of(p));
        }
        return out.toArray(new String[0]);
    }

    private static String sha256(Path f) throws Exception {
        java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
        return java.util.HexFormat.of().formatHex(md.digest(Files.readAllBytes(f)));
    }

    /** Writes a little and switches WAL n times; returns the names of the switched-out segments. */
    private List<String> switchSegments(int n) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            source.psql("CREATE TABLE IF NOT EXISTS churn (i int, t text); INSERT INTO churn SELECT g, md5(g::text) FROM generate_series(1, 2000) g");
            out.add(source.psql("SELECT pg_walfile_name(pg_switch_wal())"));
        }
        return out;
    }

    private List<String> readyFiles() throws IOException {
        List<String> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(source.dataDir().resolve("pg_wal").resolve("archive_status"))) {
            s.map(p -> p.getFileName().toString()).filter(f -> f.endsWith(".ready")).forEach(f -> out.add(f.substring(0, f.length() - 6)));
        }
        return out;
    }

    private String awaitArchived(String segment) {
        long deadline = System.nanoTime() + ARCHIVE_TIMEOUT.toNanos();
        while (true) {
            String last = source.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
            if (last.length() >= 24 && last.substring(0, 24).compareTo(segment) >= 0) {
                return last;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError(segment + " not archived within " + ARCHIVE_TIMEOUT + "\n" + source.logTail(60));
            }
            PgCluster.pause(100);
        }
    }

    private static int count(String text, String needle) {
        Matcher m = Pattern.compile(Pattern.quote(needle)).matcher(text);
        int n = 0;
        while (m.find()) {
            n++;
        }
        return n;
    }
}
