package dev.pgproof.backup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.backup.PgBackupManifest.FileEntry;
import dev.pgproof.backup.PgBackupManifest.Parsed;
import dev.pgproof.backup.PgBackupManifest.WalRange;
import dev.pgproof.cluster.PgControl;
import dev.pgproof.cluster.PgControlTest.Postgres;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tests {@link PgBackupManifest} against a real pg_basebackup of a PostgreSQL 15 cluster that this
 * class creates, starts and stops itself, with pg_verifybackup as the judge.
 */
class PgBackupManifestTest {

    @TempDir
    static Path tempDir;

    static Path backup;
    static byte[] original;
    /** The manifest of a second pg_basebackup of the same cluster, with CRC-32C checksums (pg_basebackup's default). */
    static Path crcBackup;

    @BeforeAll
    static void takeABaseBackup() throws Exception {
        Path work = Postgres.workDir(tempDir);
        Path data = Postgres.initdb(work, "data", "--data-checksums");
        Path sockets = Files.createDirectory(work.resolve("sock"));
        Postgres.giveToOsUser(sockets);
        int port = Postgres.freePort();
        backup = work.resolve("backup");
        Postgres.start(data, sockets, port);
        try {
            assertThat(PgControl.read(data).stateName()).isEqualTo("in production")
                    .isEqualTo(Postgres.controldata(data).get("Database cluster state"));
            Postgres.runOk(work, "pg_basebackup", "-h", sockets.toString(), "-p", Integer.toString(port),
                    "-D", backup.toString(), "--manifest-checksums=SHA256", "--checkpoint=fast", "--no-sync");
            crcBackup = work.resolve("crc-backup");
            Postgres.runOk(work, "pg_basebackup", "-h", sockets.toString(), "-p", Integer.toString(port),
                    "-D", crcBackup.toString(), "--manifest-checksums=CRC32C", "--checkpoint=fast", "--no-sync");
        } finally {
            Postgres.stop(data);
        }
        original = Files.readAllBytes(backup.resolve("backup_manifest"));
    }

    @Test
    void rendersPgBasebackupsOwnManifestByteForByte() throws IOException {
        Parsed parsed = PgBackupManifest.parse(original);
        assertThat(parsed.version()).isEqualTo(1);
        assertThat(parsed.files()).hasSizeGreaterThan(100).allSatisfy(f -> assertThat(f.checksumHex()).hasSize(64));
        assertThat(parsed.files()).extracting(FileEntry::path).contains("backup_label", "PG_VERSION", "global/pg_control");
        assertThat(parsed.walRanges()).hasSize(1);
        WalRange range = parsed.walRanges().get(0);
        assertThat(range.timeline()).isEqualTo(1);
        assertThat(range.endLsn()).isGreaterThan(range.startLsn());

        byte[] rendered = PgBackupManifest.render(parsed.files(), parsed.walRanges());
        assertThat(new String(rendered, StandardCharsets.UTF_8)).isEqualTo(new String(original, StandardCharsets.UTF_8));
        assertThat(rendered).isEqualTo(original);
    }

    /** What backup writes: each file's CRC-32C, rendered as pg_basebackup renders it (its bytes little-endian). */
    @Test
    void crc32cEntriesAreWhatPgBasebackupWrites() throws Exception {
        byte[] manifest = Files.readAllBytes(crcBackup.resolve("backup_manifest"));
        Parsed parsed = PgBackupManifest.parse(manifest);
        assertThat(parsed.files()).hasSizeGreaterThan(100).allSatisfy(f -> assertThat(f.algorithm()).isEqualTo("CRC32C"));
        List<FileEntry> ours = new ArrayList<>();
        for (FileEntry f : parsed.files()) {
            java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
            crc.update(Files.readAllBytes(crcBackup.resolve(f.path())));
            ours.add(FileEntry.withCrc32c(f.path(), f.size(), f.lastModified(), crc.getValue()));
        }
        assertThat(ours).isEqualTo(parsed.files());
        assertThat(PgBackupManifest.render(ours, parsed.walRanges())).isEqualTo(manifest);
    }

    @Test
    void manifestOfTheFilesOnDiskPassesPgVerifybackup() throws Exception {
        List<FileEntry> entries = scan(backup);
        Parsed originalParsed = PgBackupManifest.parse(original);
        assertThat(entries).extracting(FileEntry::path)
                .containsExactlyInAnyOrderElementsOf(originalParsed.files().stream().map(FileEntry::path).toList());
        writeManifest(PgBackupManifest.render(entries, originalParsed.walRanges()));

        Postgres.Result noWal = verify("-n");
        assertThat(noWal.exitCode()).as(noWal.output()).isZero();
        assertThat(noWal.output()).contains("backup successfully verified");
        // the WAL ranges are right too: pg_verifybackup checks them against pg_wal with pg_waldump
        Postgres.Result withWal = verify();
        assertThat(withWal.exitCode()).as(withWal.output()).isZero();
    }

    @Test
    void flippedByteInADataFileFailsPgVerifybackup() throws Exception {
        List<FileEntry> entries = scan(backup);
        writeManifest(PgBackupManifest.render(entries, PgBackupManifest.parse(original).walRanges()));
        FileEntry victim = entries.stream().filter(e -> e.path().startsWith("base/"))
                .max(Comparator.comparingLong(FileEntry::size)).orElseThrow();
        Path file = backup.resolve(victim.path());
        long offset = victim.size() / 2;
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.seek(offset);
            int b = raf.read();
            raf.seek(offset);
            raf.write(b ^ 0x01);
            try {
                Postgres.Result r = verify("-n");
                assertThat(r.exitCode()).as(r.output()).isNotZero();
                assertThat(r.output()).contains("checksum mismatch for file \"" + victim.path() + "\"");
            } finally {
                raf.seek(offset);
                raf.write(b);
            }
        }
        assertThat(verify("-n").exitCode()).isZero();
    }

    @Test
    void tamperedManifestFailsBothPgVerifybackupAndParse() throws Exception {
        List<FileEntry> entries = scan(backup);
        byte[] manifest = PgBackupManifest.render(entries, PgBackupManifest.parse(original).walRanges());
        String text = new String(manifest, StandardCharsets.UTF_8);
        int at = text.indexOf("\"Size\": 3,"); // PG_VERSION
        assertThat(at).isPositive();
        byte[] tampered = manifest.clone();
        tampered[at + 8] = '4';
        writeManifest(tampered);
        Postgres.Result r = verify("-n");
        assertThat(r.exitCode()).isNotZero();
        assertThat(r.output()).contains("manifest checksum mismatch");
        assertThatThrownBy(() -> PgBackupManifest.parse(tampered, "/b/backup_manifest"))
                .isInstanceOf(IOException.class)
                .hasMessageMatching("file \"/b/backup_manifest\" has a bad checksum: computed [0-9a-f]{64}, stored [0-9a-f]{64}");
        writeManifest(manifest);
        assertThat(verify("-n").exitCode()).isZero();
    }

    @Test
    void pgVerifybackupAcceptsEscapedPaths() throws Exception {
        String name = "we\"ird\\na\tme é€\u0001\u001f.txt";
        Path odd = Files.writeString(backup.resolve(name), "odd file\n");
        Files.setPosixFilePermissions(odd, PosixFilePermissions.fromString("rw-r--r--"));
        try {
            List<FileEntry> entries = scan(backup);
            byte[] manifest = PgBackupManifest.render(entries, PgBackupManifest.parse(original).walRanges());
            assertThat(new String(manifest, StandardCharsets.UTF_8))
                    .contains("{ \"Path\": \"we\\\"ird\\\\na\\tme é€\\u0001\\u001f.txt\", \"Size\": 9, ");
            writeManifest(manifest);
            Postgres.Result r = verify("-n");
            assertThat(r.exitCode()).as(r.output()).isZero();
            assertThat(PgBackupManifest.parse(manifest).files()).extracting(FileEntry::path).contains(name);
        } finally {
            Files.delete(odd);
            writeManifest(original);
        }
    }

    @Test
    void exactFormat() {
        String sha = "1cbca3ad69e3f5adbfa68e76c6fb01b89cddb2a86743d8ee71b56770a034d6e7";
        byte[] rendered = PgBackupManifest.render(
                List.of(FileEntry.withSha256("backup_label", 226, Instant.parse("2026-11-25T18:00:00.999Z"), sha.toUpperCase()),
                        FileEntry.withSha256("base/1/1259", 0, Instant.parse("1999-01-02T03:04:05Z"), null)),
                List.of(new WalRange(1, 0x2000028L, 0x2000100L), new WalRange(2, 0x1_0000_0000L, 0xAB_0000_00FFL)));
        String body = "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n"
                + "\"Files\": [\n"
                + "{ \"Path\": \"backup_label\", \"Size\": 226, \"Last-Modified\": \"2026-11-25 18:00:00 GMT\", "
                + "\"Checksum-Algorithm\": \"SHA256\", \"Checksum\": \"" + sha + "\" },\n"
                + "{ \"Path\": \"base/1/1259\", \"Size\": 0, \"Last-Modified\": \"1999-01-02 03:04:05 GMT\" }\n"
                + "],\n"
                + "\"WAL-Ranges\": [\n"
                + "{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" },\n"
                + "{ \"Timeline\": 2, \"Start-LSN\": \"1/0\", \"End-LSN\": \"AB/FF\" }\n"
                + "],\n";
        assertThat(new String(rendered, StandardCharsets.UTF_8)).isEqualTo(signed(body));
    }

    @Test
    void emptyListsFollowTheServersLineBreaks() throws IOException {
        byte[] rendered = PgBackupManifest.render(List.of(), List.of());
        assertThat(new String(rendered, StandardCharsets.UTF_8)).isEqualTo(signed(
                "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n],\n\"WAL-Ranges\": [\n\n],\n"));
        Parsed parsed = PgBackupManifest.parse(rendered);
        assertThat(parsed.files()).isEmpty();
        assertThat(parsed.walRanges()).isEmpty();
    }

    @Test
    void roundTrip() throws IOException {
        List<FileEntry> files = List.of(
                FileEntry.withSha256("PG_VERSION", 3, Instant.parse("2026-01-01T00:00:00Z"), sha256("15\n")),
                FileEntry.withSha256("base/5/16384", 8192L * 1000, Instant.parse("2026-11-25T18:00:00.5Z"), sha256("x")),
                FileEntry.withSha256("pg_tblspc/16400/PG_15_202209061/5/1 \"2\"\\é", 1L << 40, Instant.parse("2030-12-31T23:59:59Z"), null));
        List<WalRange> ranges = List.of(new WalRange(3, 0x5_0000_0028L, 0x5_0100_0000L), new WalRange(-1, 0, -1L));
        byte[] rendered = PgBackupManifest.render(files, ranges);
        Parsed parsed = PgBackupManifest.parse(rendered);
        assertThat(parsed.version()).isEqualTo(1);
        assertThat(parsed.walRanges()).isEqualTo(ranges);
        assertThat(parsed.files()).hasSize(3);
        assertThat(parsed.files().get(1).lastModified()).isEqualTo(Instant.parse("2026-11-25T18:00:00Z"));
        assertThat(parsed.files().get(0)).isEqualTo(files.get(0));
        assertThat(parsed.files().get(2)).isEqualTo(files.get(2));
        assertThat(parsed.manifestChecksum()).hasSize(64);
        assertThat(PgBackupManifest.render(parsed.files(), parsed.walRanges())).isEqualTo(rendered);
    }

    @Test
    void fileEntryOfDescribesAFile() throws Exception {
        Path root = Files.createDirectories(tempDir.resolve("entry/root"));
        Path file = Files.writeString(Files.createDirectories(root.resolve("base/1")).resolve("2619"), "hello");
        Files.setLastModifiedTime(file, FileTime.from(Instant.parse("2026-11-25T18:00:00.123Z")));
        assertThat(FileEntry.of(root, file)).isEqualTo(FileEntry.withSha256("base/1/2619", 5,
                Instant.parse("2026-11-25T18:00:00.123Z"), sha256("hello")));
    }

    @Test
    void rejectsBadEntries() {
        Instant t = Instant.EPOCH;
        assertThatThrownBy(() -> PgBackupManifest.render(
                List.of(FileEntry.withSha256("a", 1, t, null), FileEntry.withSha256("a", 1, t, null)), List.of()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("duplicate path");
        assertThatThrownBy(() -> FileEntry.withSha256("/etc/passwd", 1, t, null)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> FileEntry.withSha256("", 1, t, null)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> FileEntry.withSha256("a", -1, t, null)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> FileEntry.withSha256("a", 1, t, "abc")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> PgBackupManifest.render(List.of(FileEntry.withSha256("bad\ud800", 1, t, null)), List.of()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not valid Unicode");
    }

    @Test
    void parseRejectsWhatItCannotRepresent() {
        String files = "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n"
                + "{ \"Path\": \"a\", \"Size\": 1, \"Last-Modified\": \"2026-11-25 18:00:00 GMT\", "
                + "\"Checksum-Algorithm\": \"SHA512\", \"Checksum\": \"0badf00d\" }\n],\n\"WAL-Ranges\": [\n\n],\n";
        assertThatThrownBy(() -> PgBackupManifest.parse(signed(files).getBytes(StandardCharsets.UTF_8), "/m"))
                .isInstanceOf(IOException.class)
                .hasMessage("file \"/m\" has a bad file entry: checksum algorithm \"SHA512\" for \"a\": only SHA256 and CRC32C are supported");
        assertThatThrownBy(() -> PgBackupManifest.parse(
                signed(files.replace("\": 1,\n", "\": 3,\n")).getBytes(StandardCharsets.UTF_8), "/m"))
                .hasMessage("file \"/m\" has unsupported manifest version 3, supported: 1, 2");
        assertThatThrownBy(() -> PgBackupManifest.parse("{ nope".getBytes(StandardCharsets.UTF_8), "/m"))
                .isInstanceOf(IOException.class).hasMessageStartingWith("file \"/m\" is not valid JSON");
        assertThatThrownBy(() -> PgBackupManifest.parse(
                signed(files.replace("\"Size\": 1, ", "")).getBytes(StandardCharsets.UTF_8), "/m"))
                .hasMessageStartingWith("file \"/m\" is missing \"Size\"");
        assertThatThrownBy(() -> PgBackupManifest.parse(
                signed(files.replace("18:00:00 GMT", "18:00:00 UTC")).getBytes(StandardCharsets.UTF_8), "/m"))
                .hasMessageStartingWith("file \"/m\" has a bad Last-Modified for \"a\"");
        String withoutChecksum = "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n],\n\"WAL-Ranges\": [\n\n]\n}\n";
        assertThatThrownBy(() -> PgBackupManifest.parse(withoutChecksum.getBytes(StandardCharsets.UTF_8), "/m"))
                .hasMessageStartingWith("file \"/m\" is missing \"Manifest-Checksum\"");
    }

    @Test
    void parseReadsEncodedPathsThatAreUtf8() throws IOException {
        String template = "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n"
                + "{ \"Encoded-Path\": \"%s\", \"Size\": 1, \"Last-Modified\": \"2026-11-25 18:00:00 GMT\" }\n"
                + "],\n\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n],\n";
        String hex = HexFormat.of().formatHex("base/é".getBytes(StandardCharsets.UTF_8));
        Parsed parsed = PgBackupManifest.parse(signed(String.format(template, hex)).getBytes(StandardCharsets.UTF_8));
        assertThat(parsed.files()).containsExactly(FileEntry.withSha256("base/é", 1, Instant.parse("2026-11-25T18:00:00Z"), null));
        assertThat(parsed.walRanges()).containsExactly(new WalRange(1, 0x2000028L, 0x2000100L));
        assertThatThrownBy(() -> PgBackupManifest.parse(
                signed(String.format(template, "62ff")).getBytes(StandardCharsets.UTF_8), "/m"))
                .isInstanceOf(IOException.class)
                .hasMessageContaining("not UTF-8 (Encoded-Path \"62ff\"), which is not supported");
    }

    /** The regular files of a pg_basebackup directory that its manifest lists, sorted by path. */
    private static List<FileEntry> scan(Path dir) throws IOException {
        List<FileEntry> entries = new ArrayList<>();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.filter(Files::isRegularFile).sorted().collect(Collectors.toList())) {
                Path rel = dir.relativize(p);
                if (rel.toString().equals("backup_manifest") || rel.startsWith("pg_wal")) {
                    continue;
                }
                entries.add(FileEntry.of(dir, p));
            }
        }
        return entries;
    }

    private static void writeManifest(byte[] manifest) throws IOException {
        Files.write(backup.resolve("backup_manifest"), manifest); // truncates: keeps owner and mode
    }

    private static Postgres.Result verify(String... options) throws Exception {
        List<String> command = new ArrayList<>();
        command.add(Postgres.BIN.resolve("pg_verifybackup").toString());
        command.addAll(List.of(options));
        command.add(backup.toString());
        return Postgres.run(backup.getParent(), command);
    }

    /** Appends the Manifest-Checksum line to a manifest body that ends with a newline. */
    private static String signed(String body) {
        return body + "\"Manifest-Checksum\": \"" + sha256(body) + "\"}\n";
    }

    private static String sha256(String s) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
