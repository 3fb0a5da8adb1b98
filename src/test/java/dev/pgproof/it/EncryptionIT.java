package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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
 * An encrypted repository end to end: archive_command and restore_command with the passphrase in a
 * file named by the configuration file, a backup restored and compared, no plaintext and no
 * passphrase anywhere in the repository, the logs, archive_command or the process list, a wrong
 * passphrase refused, and a tampered stored object refused.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class EncryptionIT {
    private static final String CLUSTER = "secret";
    private static final String PASSPHRASE = "Tr0ub4dor-and-3-horses-" + Long.toHexString(System.nanoTime());
    private static final String MARKER = "plaintext-marker-" + Long.toHexString(System.nanoTime());

    @TempDir
    static Path tmp;

    private Path root;
    private Path repo;
    private Path config;
    private PgCluster source;
    private final List<PgCluster.ProcessResult> outputs = new ArrayList<>();
    private String label;

    @BeforeAll
    void setUp() throws IOException {
        root = tmp.toRealPath();
        PgCluster.makeReachable(root);
        Path etc = Files.createDirectories(root.resolve("etc"));
        Path passFile = etc.resolve("pass");
        Files.writeString(passFile, PASSPHRASE + "\n");
        Path repoParent = Files.createDirectories(root.resolve("repo"));
        repo = repoParent.resolve("pgproof");
        config = etc.resolve("pgproof.conf");
        Files.writeString(config, "[global]\nrepo = " + repo + "\ncompress = none\n\n[" + CLUSTER + "]\ncipher-pass-file = " + passFile + "\n");
        for (Path p : List.of(passFile, config)) {
            Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rw-------"));
            PgCluster.chownToOwner(p, false);
        }
        PgCluster.chownToOwner(etc, false);
        PgCluster.chownToOwner(repoParent, false);

        source = PgCluster.create(root.resolve("clusters"), "secret", PgCluster.freePort());
        source.configure("archive_mode", "on");
        source.configure("archive_command", PgCluster.quote(Pgproof.LAUNCHER + " archive-push --config " + config + " --cluster " + CLUSTER + " %p"));
        source.start();
        record(pgproof("init", "--pgdata", source.dataDir().toString())).assertOk("init");
        source.psql("CREATE TABLE ledger AS SELECT g AS id, '" + MARKER + "' || g AS note FROM generate_series(1, 2000) g");
        source.switchWalAndAwaitArchived(Duration.ofSeconds(90));
    }

    @AfterAll
    void tearDown() {
        if (source != null) {
            source.stop();
        }
    }

    @Test
    @Order(1)
    void encryptedBackupRestoresAndNeitherDataNorPassphraseLeak() throws Exception {
        // While a backup runs (paused mid-copy), no process shows the passphrase.
        Path release = root.resolve("release");
        try (Running p = Running.asOwner(root, Pgproof.hook("backup-mid-copy", release),
                "backup", "--config", config.toString(), "--cluster", CLUSTER, "--pgdata", source.dataDir().toString(), "--start-fast")) {
            p.awaitLine("HOOK backup-mid-copy", Duration.ofMinutes(2));
            assertThat(processCommandLines()).as("command lines of every process").noneMatch(c -> c.contains(PASSPHRASE));
            Files.createFile(release);
            PgCluster.ProcessResult r = record(p.waitFor(Duration.ofMinutes(3)));
            assertThat(r.exitCode()).as(r.stderr()).isZero();
            label = r.stdout().strip();
        }
        source.psql("INSERT INTO ledger VALUES (-1, 'after the backup')");
        source.switchWalAndAwaitArchived(Duration.ofSeconds(90));
        var atEnd = source.tableDigests();

        Path restores = Files.createDirectories(root.resolve("restores"));
        PgCluster.chownToOwner(restores, false);
        Path dest = restores.resolve("restored");
        PgCluster.ProcessResult r = record(pgproof("restore", "--pgdata", dest.toString(), "--archive-mode", "off"));
        r.assertOk("restore");
        assertThat(Files.readString(dest.resolve("postgresql.auto.conf"))).doesNotContain(PASSPHRASE).contains("--config " + config);
        PgCluster copy = PgCluster.adopt(dest, root.resolve("restored-sock"), PgCluster.freePort());
        try {
            copy.start();
            copy.awaitPromotion(Duration.ofMinutes(2));
            assertThat(copy.tableDigests()).isEqualTo(atEnd);
        } finally {
            copy.stop();
        }

        // verify and prove read the encrypted repository (prove's restore_command carries --config, never the secret).
        PgCluster.ProcessResult v = record(pgproof("verify"));
        assertThat(v.exitCode()).as(v.stdout() + v.stderr()).isZero();
        assertThat(v.stdout()).contains("1 backup(s)").contains("no problems");
        Path proveDir = Files.createDirectories(root.resolve("prove"));
        PgCluster.chownToOwner(proveDir, false);
        PgCluster.ProcessResult p = record(pgproof("prove", "--prove-dir", proveDir.toString()));
        assertThat(p.exitCode()).as(p.stdout() + p.stderr()).isZero();
        assertThat(p.stdout()).contains("of backup " + label).contains("PASSED");

        // Without compression the table's text would be in the stored heap file and WAL; encrypted, it is nowhere.
        List<Path> files = new ArrayList<>();
        try (Stream<Path> s = Files.walk(repo)) {
            s.filter(Files::isRegularFile).forEach(files::add);
        }
        assertThat(files).anyMatch(f -> f.toString().contains("/backup/" + label + "/data/base/")).anyMatch(f -> f.toString().contains("/wal/"));
        for (Path f : files) {
            String bytes = new String(Files.readAllBytes(f), StandardCharsets.ISO_8859_1);
            assertThat(bytes).as(f.toString()).doesNotContain(MARKER).doesNotContain(PASSPHRASE);
            assertThat(Files.getPosixFilePermissions(f)).as(f.toString()).isEqualTo(PosixFilePermissions.fromString("rw-------"));
        }
        assertThat(Files.readString(repo.resolve("cipher.info"))).contains("\"cipher\" : \"aes-256-gcm\"").contains("pbkdf2-hmac-sha256");
        assertThat(source.psql("SHOW archive_command")).doesNotContain(PASSPHRASE);
        assertThat(source.logTail(500)).doesNotContain(PASSPHRASE);
        for (PgCluster.ProcessResult o : outputs) {
            assertThat(o.stdout() + o.stderr()).doesNotContain(PASSPHRASE);
        }
    }

    @Test
    @Order(2)
    void aWrongPassphraseIsRefusedInOneLine() {
        PgCluster.ProcessResult r = Pgproof.run(Map.of("PGPROOF_CIPHER_PASS", "not-the-passphrase"), "info", "--repo", repo.toString(),
                "--cluster", CLUSTER);
        assertThat(r.exitCode()).as(r.stderr()).isEqualTo(3);
        assertThat(r.stderr()).startsWith("ERROR: wrong passphrase for encrypted repository " + repo)
                .contains("HINT: use the passphrase the repository was initialised with").doesNotContain("not-the-passphrase")
                .doesNotContain("Exception");
        PgCluster.ProcessResult none = Pgproof.run("info", "--repo", repo.toString(), "--cluster", CLUSTER);
        assertThat(none.exitCode()).isEqualTo(3);
        assertThat(none.stderr()).contains("is encrypted and no key or passphrase is set");
    }

    @Test
    @Order(3)
    void anEncryptedBackupKilledMidCopyIsResumedAndVerifies() throws Exception {
        String killed;
        try (Running p = Running.asOwner(root, Map.of("PGPROOF_TEST_HOOK", "backup-mid-copy", "PGPROOF_TEST_HOOK_RELEASE",
                root.resolve("never-released").toString()), "backup", "--config", config.toString(), "--cluster", CLUSTER, "--pgdata",
                source.dataDir().toString(), "--start-fast")) {
            p.awaitLine("HOOK backup-mid-copy", Duration.ofMinutes(2));
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?m)^backup (\\S+) of cluster \"" + CLUSTER + "\": starting")
                    .matcher(p.stderr());
            assertThat(m.find()).as(p.stderr()).isTrue();
            killed = m.group(1);
            Path data = repo.resolve(CLUSTER).resolve("backup").resolve(killed).resolve("data");
            long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
            while (storedObjects(data) < 1 && System.nanoTime() < deadline) {
                PgCluster.pause(100);
            }
            assertThat(storedObjects(data)).as("encrypted chunks stored before the kill").isPositive();
            p.killTree();
        }
        PgCluster.ProcessResult info = pgproof("info");
        info.assertOk("info after the kill");
        assertThat(info.stdout()).contains(killed + "  INCOMPLETE, never used for a restore");
        PgCluster.ProcessResult r = record(pgproof("backup", "--pgdata", source.dataDir().toString(), "--start-fast"))
                .assertOk("backup after the killed one");
        assertThat(r.stdout().strip()).isEqualTo(killed);
        assertThat(r.stderr()).contains("resuming this interrupted backup").containsPattern("resumed; reused [1-9]\\d* stored chunks");
        PgCluster.ProcessResult v = record(pgproof("verify"));
        assertThat(v.exitCode()).as(v.stdout() + v.stderr()).isZero();
        assertThat(v.stdout()).contains("no problems");
    }

    private static long storedObjects(Path dir) throws IOException {
        return Pgproof.storedChunks(dir).size();
    }

    private PgCluster.ProcessResult pgproof(String... args) {
        List<String> a = new ArrayList<>(List.of(args[0], "--config", config.toString(), "--cluster", CLUSTER));
        a.addAll(List.of(args).subList(1, args.length));
        return Pgproof.run(a.toArray(new String[0]));
    }

    private PgCluster.ProcessResult record(PgCluster.ProcessResult r) {
        outputs.add(r);
        return r;
    }

    private static List<String> processCommandLines() throws IOException {
        List<String> out = new ArrayList<>();
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            for (Path p : (Iterable<Path>) procs.filter(d -> d.getFileName().toString().matches("\\d+"))::iterator) {
                try {
                    out.add(new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8).replace('\0', ' '));
                } catch (IOException gone) {
                    // the process ended meanwhile
                }
            }
        }
        assertThat(out).anyMatch(c -> c.contains(" backup --config "));
        return out;
    }
}
