package dev.pgproof.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.wal.WalFileName;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.nio.file.attribute.UserPrincipalNotFoundException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tests {@link PgControl} against real PostgreSQL 15 data directories made by initdb and the
 * output of pg_controldata. Also hosts {@link Postgres}, the test helper that runs PostgreSQL
 * binaries, which the WAL and backup manifest tests share.
 */
public class PgControlTest {

    @TempDir
    static Path tempDir;

    static Path checksumsCluster;
    static Path wal32Cluster;

    @BeforeAll
    static void initClusters() throws Exception {
        Path work = Postgres.workDir(tempDir);
        checksumsCluster = Postgres.initdb(work, "checksums", "--data-checksums");
        wal32Cluster = Postgres.initdb(work, "wal32", "--wal-segsize=32");
    }

    @Test
    void matchesPgControldataWithChecksums() throws Exception {
        PgControl control = PgControl.read(checksumsCluster);
        assertMatchesControldata(control, Postgres.controldata(checksumsCluster));
        assertThat(control.pgControlVersion()).isEqualTo(1300);
        assertThat(control.dataChecksumVersion()).isEqualTo(1);
        assertThat(control.dataChecksumsEnabled()).isTrue();
        assertThat(control.walSegmentSize()).isEqualTo(16 * 1024 * 1024);
        assertThat(control.blockSize()).isEqualTo(8192);
        assertThat(control.walBlockSize()).isEqualTo(8192);
        assertThat(control.timeline()).isEqualTo(1);
        assertThat(control.stateName()).isEqualTo("shut down");
        assertThat(PgControl.majorVersion(checksumsCluster)).isEqualTo(15);
    }

    @Test
    void matchesPgControldataWith32MbSegmentsAndNoChecksums() throws Exception {
        PgControl control = PgControl.read(wal32Cluster);
        assertMatchesControldata(control, Postgres.controldata(wal32Cluster));
        assertThat(control.walSegmentSize()).isEqualTo(32 * 1024 * 1024);
        assertThat(control.dataChecksumVersion()).isZero();
        assertThat(control.dataChecksumsEnabled()).isFalse();
        assertThat(control.systemIdentifier()).isNotEqualTo(PgControl.read(checksumsCluster).systemIdentifier());
    }

    @Test
    void crcCoversExactlyTheBytesBeforeTheCrcField() throws Exception {
        byte[] bytes = pgControlBytes(checksumsCluster);
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, PgControl.OFFSET_CRC);
        assertThat(Integer.toUnsignedLong(buf.getInt(PgControl.OFFSET_CRC))).isEqualTo(crc.getValue());
        assertThat(buf.getDouble(PgControl.OFFSET_FLOAT_FORMAT)).isEqualTo(1234567.0);
        // sizeof(ControlFileData) is 296 (crc + 4 bytes of struct padding); the rest is zero fill
        assertThat(Arrays.copyOfRange(bytes, 296, bytes.length)).containsOnly(0);
        bytes[PgControl.OFFSET_CRC + 100] ^= 0x55;
        assertThat(PgControl.parse(bytes, "x")).isEqualTo(PgControl.read(checksumsCluster));
    }

    @Test
    void flippedByteIsABadChecksum() throws Exception {
        byte[] bytes = pgControlBytes(checksumsCluster);
        bytes[PgControl.OFFSET_BLOCK_SIZE + 1] ^= 0x01;
        assertThatThrownBy(() -> PgControl.parse(bytes, "/x/global/pg_control"))
                .isInstanceOf(IOException.class)
                .hasMessageMatching("file \"/x/global/pg_control\" has a bad checksum: "
                        + "computed 0x[0-9a-f]{8}, stored 0x[0-9a-f]{8}");
        byte[] lastCovered = pgControlBytes(checksumsCluster);
        lastCovered[PgControl.OFFSET_CRC - 1] ^= 0x01;
        assertThatThrownBy(() -> PgControl.parse(lastCovered, "s")).hasMessageContaining("bad checksum");
        byte[] storedCrc = pgControlBytes(checksumsCluster);
        storedCrc[PgControl.OFFSET_CRC] ^= 0x01;
        assertThatThrownBy(() -> PgControl.parse(storedCrc, "s")).hasMessageContaining("bad checksum");
    }

    @Test
    void truncatedFileIsTooShort() throws Exception {
        Path fake = Files.createDirectories(tempDir.resolve("truncated/global"));
        Files.write(fake.resolve("pg_control"), Arrays.copyOf(pgControlBytes(checksumsCluster), 100));
        Path file = fake.resolve("pg_control");
        assertThatThrownBy(() -> PgControl.read(fake.getParent()))
                .isInstanceOf(IOException.class)
                .hasMessage("file \"" + file + "\" is too short: 100 bytes, expected 8192");
        assertThatThrownBy(() -> PgControl.parse(new byte[0], "empty"))
                .hasMessage("file \"empty\" is too short: 0 bytes, expected 8192");
        assertThatThrownBy(() -> PgControl.parse(new byte[8193], "big"))
                .hasMessage("file \"big\" is too long: 8193 bytes, expected 8192");
    }

    @Test
    void missingFileNamesThePath() {
        Path dir = tempDir.resolve("no-such-cluster");
        assertThatThrownBy(() -> PgControl.read(dir))
                .isInstanceOf(IOException.class)
                .hasMessageContaining("file \"" + dir.resolve("global/pg_control") + "\" does not exist");
    }

    @Test
    void unsupportedVersionIsRejected() throws Exception {
        byte[] bytes = pgControlBytes(checksumsCluster);
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putInt(PgControl.OFFSET_PG_CONTROL_VERSION, 1700);
        assertThatThrownBy(() -> PgControl.parse(bytes, "/d/global/pg_control"))
                .isInstanceOf(IOException.class)
                .hasMessage("file \"/d/global/pg_control\" has unsupported pg_control version 1700, "
                        + "supported: 1300 (PostgreSQL 13 to 16)");
        ByteBuffer.wrap(bytes).order(ByteOrder.BIG_ENDIAN).putInt(PgControl.OFFSET_PG_CONTROL_VERSION, 1300);
        assertThatThrownBy(() -> PgControl.parse(bytes, "be"))
                .hasMessageContaining("looks big-endian");
    }

    @Test
    void floatFormatMismatchIsRejectedEvenWithAGoodCrc() throws Exception {
        byte[] bytes = pgControlBytes(checksumsCluster);
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        buf.putDouble(PgControl.OFFSET_FLOAT_FORMAT, 7654321.0);
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, PgControl.OFFSET_CRC);
        buf.putInt(PgControl.OFFSET_CRC, (int) crc.getValue());
        assertThatThrownBy(() -> PgControl.parse(bytes, "ff"))
                .isInstanceOf(IOException.class)
                .hasMessageStartingWith("file \"ff\" has an unexpected float format value 7654321.0, expected 1234567.0");
    }

    @Test
    void majorVersionReadsPgVersion() throws Exception {
        Path dir = Files.createDirectories(tempDir.resolve("pgversion"));
        Files.writeString(dir.resolve("PG_VERSION"), " 16\n");
        assertThat(PgControl.majorVersion(dir)).isEqualTo(16);
        Files.writeString(dir.resolve("PG_VERSION"), "9.6\n");
        assertThatThrownBy(() -> PgControl.majorVersion(dir))
                .isInstanceOf(IOException.class)
                .hasMessage("file \"" + dir.resolve("PG_VERSION") + "\" does not contain a major version number: \"9.6\"");
        Files.writeString(dir.resolve("PG_VERSION"), "");
        assertThatThrownBy(() -> PgControl.majorVersion(dir)).hasMessageContaining(dir.resolve("PG_VERSION").toString());
        Files.write(dir.resolve("PG_VERSION"), new byte[] {(byte) 0xff, '1', '5'});
        assertThatThrownBy(() -> PgControl.majorVersion(dir)).hasMessageContaining(dir.resolve("PG_VERSION").toString());
        Files.delete(dir.resolve("PG_VERSION"));
        assertThatThrownBy(() -> PgControl.majorVersion(dir))
                .isInstanceOf(IOException.class)
                .hasMessageContaining("file \"" + dir.resolve("PG_VERSION") + "\" does not exist");
    }

    @Test
    void stateNamesAndUnsignedSystemIdentifier() {
        String[] names = {"starting up", "shut down", "shut down in recovery", "shutting down",
                "in crash recovery", "in archive recovery", "in production"};
        for (int state = 0; state < names.length; state++) {
            assertThat(withState(state).stateName()).isEqualTo(names[state]);
        }
        assertThat(withState(7).stateName()).isEqualTo("unrecognized status code 7");
        PgControl big = new PgControl(-1L, 1300, 0, 1, 0, 1, 8192, 8192, 1 << 24, 0, 131072);
        assertThat(big.systemIdentifierString()).isEqualTo("18446744073709551615");
    }

    private static PgControl withState(int state) {
        return new PgControl(1, 1300, 0, state, 0, 1, 8192, 8192, 1 << 24, 0, 131072);
    }

    private static byte[] pgControlBytes(Path dataDir) throws IOException {
        return Files.readAllBytes(dataDir.resolve("global/pg_control"));
    }

    /** Compares every field of {@code control} to pg_controldata's output. */
    static void assertMatchesControldata(PgControl control, Map<String, String> cd) {
        assertThat(control.systemIdentifierString()).isEqualTo(cd.get("Database system identifier"));
        assertThat(control.pgControlVersion()).isEqualTo(Integer.parseInt(cd.get("pg_control version number")));
        assertThat(control.catalogVersion()).isEqualTo(Integer.parseInt(cd.get("Catalog version number")));
        assertThat(control.stateName()).isEqualTo(cd.get("Database cluster state"));
        assertThat(control.checkpointLsn()).isEqualTo(WalFileName.parseLsn(cd.get("Latest checkpoint location")));
        assertThat(WalFileName.formatLsn(control.checkpointLsn())).isEqualTo(cd.get("Latest checkpoint location"));
        assertThat(control.timeline()).isEqualTo(Integer.parseInt(cd.get("Latest checkpoint's TimeLineID")));
        assertThat(control.blockSize()).isEqualTo(Integer.parseInt(cd.get("Database block size")));
        assertThat(control.walBlockSize()).isEqualTo(Integer.parseInt(cd.get("WAL block size")));
        assertThat(control.walSegmentSize()).isEqualTo(Integer.parseInt(cd.get("Bytes per WAL segment")));
        assertThat(control.dataChecksumVersion()).isEqualTo(Integer.parseInt(cd.get("Data page checksum version")));
        assertThat(control.relSegSize()).isEqualTo(Integer.parseInt(cd.get("Blocks per segment of large relation")));
    }

    /**
     * Runs the PostgreSQL 15 binaries for tests. PostgreSQL refuses to run as root, so when the
     * tests run as root every command goes through {@code runuser -u pgproof-test --}, and
     * directories the server writes are handed to that user.
     */
    public static final class Postgres {
        /** Where the PostgreSQL 15 binaries are. */
        public static final Path BIN = Path.of("/usr/lib/postgresql/15/bin");
        /** The unprivileged OS user that runs PostgreSQL when the tests run as root. */
        public static final String OS_USER = "pgproof-test";

        /** Exit code and combined stdout/stderr of a command. */
        public record Result(int exitCode, String output) {
        }

        private Postgres() {
        }

        /** Whether the tests run as root. */
        public static boolean isRoot() throws IOException {
            return ((Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid")) == 0;
        }

        /**
         * Makes {@code tempDir} traversable and returns a new directory in it that the user running
         * PostgreSQL owns.
         */
        public static Path workDir(Path tempDir) throws IOException {
            Files.setPosixFilePermissions(tempDir, PosixFilePermissions.fromString("rwxr-xr-x"));
            Path work = Files.createDirectories(tempDir.resolve("pg-work"));
            giveToOsUser(work);
            return work;
        }

        /** When running as root, makes {@code path} owned by {@link #OS_USER}. */
        public static void giveToOsUser(Path path) throws IOException {
            if (isRoot()) {
                Files.setOwner(path, osUser());
            }
        }

        /** The {@link #OS_USER} principal; fails with a clear message when the user does not exist. */
        public static UserPrincipal osUser() throws IOException {
            try {
                return java.nio.file.FileSystems.getDefault().getUserPrincipalLookupService()
                        .lookupPrincipalByName(OS_USER);
            } catch (UserPrincipalNotFoundException e) {
                throw new AssertionError("the tests run as root and PostgreSQL refuses to run as root, but the "
                        + "unprivileged OS user \"" + OS_USER + "\" does not exist: create it first, e.g. "
                        + "`useradd --system --create-home " + OS_USER + "`", e);
            }
        }

        /** Runs a command (as {@link #OS_USER} when root) in {@code cwd}, waiting up to 3 minutes. */
        public static Result run(Path cwd, List<String> command) throws IOException, InterruptedException {
            List<String> full = new ArrayList<>();
            if (isRoot()) {
                osUser(); // fails clearly when the user is missing
                full.addAll(List.of("runuser", "-u", OS_USER, "--"));
            }
            full.addAll(command);
            Path out = Files.createTempFile("pgproof-cmd", ".out");
            try {
                ProcessBuilder pb = new ProcessBuilder(full).directory(cwd.toFile())
                        .redirectErrorStream(true).redirectOutput(out.toFile())
                        .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
                pb.environment().keySet().removeIf(k -> k.startsWith("PG"));
                pb.environment().put("LC_ALL", "C");
                pb.environment().put("LANG", "C");
                Process p = pb.start();
                if (!p.waitFor(3, TimeUnit.MINUTES)) {
                    p.destroyForcibly();
                    throw new AssertionError("timed out: " + String.join(" ", full));
                }
                return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
            } finally {
                Files.deleteIfExists(out);
            }
        }

        /** Runs a PostgreSQL binary and fails the test unless it exits with 0. */
        public static String runOk(Path cwd, String program, String... args) throws IOException, InterruptedException {
            List<String> command = new ArrayList<>();
            command.add(BIN.resolve(program).toString());
            command.addAll(List.of(args));
            Result r = run(cwd, command);
            if (r.exitCode() != 0) {
                throw new AssertionError(String.join(" ", command) + " exited with " + r.exitCode() + ":\n" + r.output());
            }
            return r.output();
        }

        /** Runs initdb for a new data directory {@code work/name}, with extra options. */
        public static Path initdb(Path work, String name, String... options) throws IOException, InterruptedException {
            Path dataDir = work.resolve(name);
            List<String> args = new ArrayList<>(List.of("--no-sync", "--auth=trust", "-D", dataDir.toString()));
            args.addAll(List.of(options));
            runOk(work, "initdb", args.toArray(String[]::new));
            return dataDir;
        }

        /** pg_controldata's output as label (without the colon) to value. */
        public static Map<String, String> controldata(Path dataDir) throws IOException, InterruptedException {
            Map<String, String> fields = new LinkedHashMap<>();
            for (String line : runOk(dataDir.getParent(), "pg_controldata", "-D", dataDir.toString()).split("\n")) {
                int colon = line.indexOf(':');
                if (colon > 0) {
                    fields.put(line.substring(0, colon).trim(), line.substring(colon + 1).trim());
                }
            }
            return fields;
        }

        /** A free port in 41000-42000 (the server listens only on a Unix socket, named after it). */
        public static int freePort() {
            for (int attempt = 0; attempt < 200; attempt++) {
                int port = ThreadLocalRandom.current().nextInt(41000, 42001);
                try (ServerSocket s = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
                    return port;
                } catch (IOException busy) {
                    // try another
                }
            }
            throw new AssertionError("no free port in 41000-42000");
        }

        /** Starts a server on {@code dataDir} listening only on a Unix socket in {@code socketDir}. */
        public static void start(Path dataDir, Path socketDir, int port) throws IOException, InterruptedException {
            Path log = dataDir.resolveSibling(dataDir.getFileName() + ".log");
            Result r = run(dataDir.getParent(), List.of(BIN.resolve("pg_ctl").toString(), "-w", "-t", "120",
                    "-D", dataDir.toString(), "-l", log.toString(),
                    "-o", "-p " + port + " -k " + socketDir + " -c listen_addresses=''", "start"));
            if (r.exitCode() != 0) {
                String serverLog = Files.exists(log) ? Files.readString(log) : "(no log)";
                throw new AssertionError("pg_ctl start failed:\n" + r.output() + "\nserver log:\n" + serverLog);
            }
        }

        /** Stops the server on {@code dataDir} (fast shutdown), if it runs. */
        public static void stop(Path dataDir) throws IOException, InterruptedException {
            run(dataDir.getParent(), List.of(BIN.resolve("pg_ctl").toString(), "-w", "-t", "120",
                    "-D", dataDir.toString(), "-m", "fast", "stop"));
        }
    }
}
