package dev.pgproof.repo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.storage.PosixStorage;
import dev.pgproof.storage.Storage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The resumable full backup found from the markers alone is the one the whole catalog listing names. */
class BackupCatalogTest {
    @TempDir
    Path dir;

    private Storage storage;
    private final RepoLayout layout = new RepoLayout("main");

    private void put(String key, String content) throws IOException {
        try (Storage.Writer w = storage.create(key)) {
            w.stream().write(content.getBytes(StandardCharsets.UTF_8));
            w.commit(false);
        }
    }

    private static BackupManifest manifest(String label, String type, List<BackupManifest.FileEntry> files) {
        String now = Instant.now().toString();
        String wal = "000000010000000000000001";
        return new BackupManifest(1, label, type, "main", "1", 15, 150000, 16 << 20, 1, "0/1000028", "0/1000100", wal, wal, now,
                now, "UTC", "zstd", false, "/x", "postgres", 16, 8, null, null, null, List.of(), List.of(), files, null);
    }

    /** The files of a backup of one 8 KiB file in one chunk. */
    private List<BackupManifest.FileEntry> oneFile(String label) {
        return List.of(new BackupManifest.FileEntry("base/1/1", 8192, "2026-01-01T00:00:00Z", "0600", "ab".repeat(32),
                List.of(new BackupManifest.Chunk(layout.backupDir(label) + "data/base/1/1.0.zst", 0, 8192, 100, "ab".repeat(32)))));
    }

    private void complete(String label, String type) throws IOException {
        BackupManifest m = manifest(label, type, List.of());
        put(layout.backupDir(label) + "data/base/1/1.0.zst", "data");
        BackupCatalog c = new BackupCatalog(storage, layout);
        c.markComplete(label, c.writeManifest(m));
    }

    /** What resuming used before: every entry of the full listing, the newest incomplete, unexpired full backup. */
    private String fromListing() throws IOException {
        String found = null;
        for (BackupCatalog.Entry e : new BackupCatalog(storage, layout).list()) {
            if (!e.complete() && !e.expired() && !e.damaged() && e.label().endsWith("F") && (found == null || e.label().compareTo(found) > 0)) {
                found = e.label();
            }
        }
        return found;
    }

    private void check(String expected) throws IOException {
        List<String> damaged = new java.util.ArrayList<>();
        assertThat(new BackupCatalog(storage, layout).newestIncompleteFull(e -> damaged.add(e.label()))).isEqualTo(expected)
                .isEqualTo(fromListing());
        assertThat(damaged).containsExactlyElementsOf(new BackupCatalog(storage, layout).list().stream().filter(BackupCatalog.Entry::damaged)
                .map(BackupCatalog.Entry::label).filter(l -> l.endsWith("F")).sorted(java.util.Comparator.reverseOrder()).toList());
    }

    @Test
    void newestIncompleteFullMatchesTheFullListing() throws IOException {
        storage = new PosixStorage(dir);
        check(null);
        complete("20260101-000000F", "full");
        put(layout.backupDir("20260102-000000I") + "data/base/1/1.0.zst", "an interrupted incremental is never resumed");
        check(null);
        put(layout.backupDir("20260103-000000F") + "data/base/1/1.0.zst", "interrupted full");
        check("20260103-000000F");
        complete("20260104-000000F", "full");
        check("20260103-000000F");
        // Marked complete, but its manifest no longer matches the marker: damaged, never resumed (it would replace objects).
        put(layout.backupDir("20260105-000000F") + "data/x", "x");
        complete("20260105-000000F", "full");
        Files.writeString(dir.resolve(layout.manifest("20260105-000000F")), "{}");
        check("20260103-000000F");
        // Expired remains and an empty directory are never resumed.
        put(layout.expiredMarker("20260106-000000F"), "{}");
        put(layout.backupDir("20260106-000000F") + "data/base/1/1.0.zst", "kept for a reference");
        Files.createDirectories(dir.resolve(layout.backupDir("20260107-000000F")));
        check("20260103-000000F");
        // Marked complete, manifest gone: damaged too.
        complete("20260108-000000F", "full");
        Files.delete(dir.resolve(layout.manifest("20260108-000000F")));
        check("20260103-000000F");
        // A marker that is not JSON.
        complete("20260109-000000F", "full");
        Files.writeString(dir.resolve(layout.completeMarker("20260109-000000F")), "{\"label\": ");
        check("20260103-000000F");
    }

    private void putBytes(String key, byte[] content) throws IOException {
        try (Storage.Writer w = storage.create(key)) {
            w.stream().write(content);
            w.commit(false);
        }
    }

    @Test
    void aManifestWrittenIsStoredCompressedAndReadsBackEqual() throws IOException {
        storage = new PosixStorage(dir);
        List<BackupManifest.FileEntry> files = new java.util.ArrayList<>();
        for (int i = 0; i < 2000; i++) {
            String key = layout.backupDir("20260101-000000F") + "data/base/1/" + (16384 + i) + ".0.zst";
            files.add(new BackupManifest.FileEntry("base/1/" + (16384 + i), 8192, "2026-01-01T00:00:00Z", "0600", "ab".repeat(32),
                    List.of(new BackupManifest.Chunk(key, 0, 8192, 100, "cd".repeat(32)))));
        }
        BackupManifest m = manifest("20260101-000000F", "full", files);
        BackupCatalog c = new BackupCatalog(storage, layout);
        String sha = c.writeManifest(m);
        c.markComplete(m.label(), sha);

        assertThat(layout.manifest(m.label())).isEqualTo("main/backup/20260101-000000F/manifest.json.zst");
        byte[] stored = Files.readAllBytes(dir.resolve(layout.manifest(m.label())));
        assertThat(sha).isEqualTo(dev.pgproof.io.Hashes.sha256Hex(stored));
        assertThat(stored.length).isLessThan(Json.MAPPER.writeValueAsBytes(m).length / 4);
        assertThat(storage.exists(layout.legacyManifest(m.label()))).isFalse();
        BackupCatalog.Entry e = c.load(m.label());
        assertThat(e.problem()).isNull();
        assertThat(e.complete()).isTrue();
        assertThat(e.manifest()).isEqualTo(m);
        assertThat(e.fileCount()).isEqualTo(2000);

        // A summary is everything but the files, which are counted: what list() and complete() give.
        BackupCatalog.Entry s = c.summary(m.label());
        assertThat(s.complete()).isTrue();
        assertThat(s.manifest()).isEqualTo(withoutFiles(m));
        assertThat(s.fileCount()).isEqualTo(2000);
        assertThat(c.list()).containsExactly(s);
        assertThat(c.complete()).containsExactly(withoutFiles(m));
        assertThat(c.manifest(m.label())).isEqualTo(m);
    }

    /** A read of the repository that fails midway is an error of the repository, never a damaged backup (never used again). */
    @Test
    void aManifestReadThatFailsIsAnErrorNotDamage() throws IOException {
        Storage real = new PosixStorage(dir);
        storage = real;
        BackupManifest m = manifest("20260101-000000F", "full", List.of());
        BackupCatalog written = new BackupCatalog(real, layout);
        written.markComplete(m.label(), written.writeManifest(m));
        String manifestKey = layout.manifest(m.label());
        Storage failing = (Storage) java.lang.reflect.Proxy.newProxyInstance(Storage.class.getClassLoader(), new Class<?>[] {Storage.class},
                (proxy, method, args) -> {
                    Object out;
                    try {
                        out = method.invoke(real, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                    if (method.getName().equals("open") && args[0].equals(manifestKey)) {
                        java.io.InputStream in = (java.io.InputStream) out;
                        return new java.io.FilterInputStream(in) {
                            private int left = 20;
                            private boolean thrown;

                            @Override
                            public int read() throws IOException {
                                byte[] one = new byte[1];
                                return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
                            }

                            @Override
                            public int read(byte[] b, int off, int len) throws IOException {
                                if (left <= 0 && !thrown) {
                                    thrown = true;
                                    throw new IOException("connection reset");
                                }
                                if (left <= 0) {
                                    return -1;   // as a broken stream may, after its error: what follows must not be read as the end
                                }
                                int n = super.read(b, off, Math.min(len, left));
                                left -= Math.max(n, 0);
                                return n;
                            }
                        };
                    }
                    return out;
                });
        BackupCatalog c = new BackupCatalog(failing, layout);
        assertThatThrownBy(() -> c.summary(m.label())).isInstanceOf(IOException.class).hasMessage("connection reset");
        assertThatThrownBy(() -> c.load(m.label())).isInstanceOf(IOException.class).hasMessage("connection reset");
        assertThatThrownBy(c::list).isInstanceOf(IOException.class).hasMessage("connection reset");
        assertThat(written.summary(m.label()).complete()).isTrue();
    }

    /** The manifest as a summary reads it: files null. */
    private static BackupManifest withoutFiles(BackupManifest m) throws IOException {
        com.fasterxml.jackson.databind.node.ObjectNode tree = Json.MAPPER.valueToTree(m);
        tree.remove("files");
        return Json.MAPPER.treeToValue(tree, BackupManifest.class);
    }

    @Test
    void aSummaryChecksTheWholeStoredManifestLikeALoad() throws IOException {
        storage = new PosixStorage(dir);
        String label = "20260101-000000F";
        List<BackupManifest.FileEntry> files = oneFile(label);
        BackupCatalog c = new BackupCatalog(storage, layout);
        c.markComplete(label, c.writeManifest(manifest(label, "full", files)));
        Path stored = dir.resolve(layout.manifest(label));
        byte[] good = Files.readAllBytes(stored);

        // One byte changed in the last (skipped) part of the stored object: a summary still hashes every byte.
        byte[] changed = good.clone();
        changed[changed.length - 1] ^= 1;
        Files.write(stored, changed);
        assertThat(c.summary(label).problem()).isEqualTo("damaged: \"main/backup/20260101-000000F/manifest.json.zst\" does not match the "
                + "SHA-256 that \"main/backup/20260101-000000F/backup.complete\" records (it was changed or damaged after the backup completed)");
        assertThat(c.list()).singleElement().satisfies(e -> assertThat(e.damaged()).isTrue());
        assertThatThrownBy(() -> c.manifest(label)).isInstanceOf(IOException.class).hasMessageContaining("is no longer usable: damaged: ");

        // A files array that is cut short, or holds something else than entries: damaged, for a summary too.
        for (String json : List.of("{\"label\":\"x\",\"files\":[{\"path\":\"a\"},", "{\"label\":\"x\",\"files\":[1]}", "[]")) {
            byte[] z = zstd(json.getBytes(StandardCharsets.UTF_8));
            Files.write(stored, z);
            c.markComplete(label, dev.pgproof.io.Hashes.sha256Hex(z));
            assertThat(c.summary(label).problem()).as(json)
                    .startsWith("damaged: \"main/backup/20260101-000000F/manifest.json.zst\" cannot be read as a pgproof manifest (");
            assertThat(c.load(label).damaged()).as(json).isTrue();
        }
    }

    /**
     * A marker of this version holds the summary: listing hashes the stored manifest but neither decompresses nor parses it
     * (a manifest that would not parse is listed from its marker, and refused when loaded whole), still finds a changed
     * one, and reads a marker's summary that is not this backup's from the manifest instead.
     */
    @Test
    void aSummaryInTheMarkerSparesParsingTheManifestButNotHashingIt() throws IOException {
        storage = new PosixStorage(dir);
        String label = "20260101-000000F";
        List<BackupManifest.FileEntry> files = oneFile(label);
        BackupManifest m = manifest(label, "full", files);
        BackupCatalog c = new BackupCatalog(storage, layout);
        String sha = c.writeManifest(m);
        c.markComplete(m, sha);
        assertThat(c.list()).singleElement().satisfies(e -> {
            assertThat(e.complete()).isTrue();
            assertThat(e.manifest()).isEqualTo(withoutFiles(m));
            assertThat(e.fileCount()).isOne();
        });
        assertThat(c.manifest(label)).isEqualTo(m);

        // Stored bytes that hash right but are no manifest: listed from the marker, never parsed; refused when loaded.
        byte[] notJson = zstd("not a manifest".getBytes(StandardCharsets.UTF_8));
        putBytes(layout.manifest(label), notJson);
        c.markComplete(m, dev.pgproof.io.Hashes.sha256Hex(notJson));
        assertThat(c.summary(label).complete()).isTrue();
        assertThat(c.load(label).problem()).startsWith("damaged: \"main/backup/20260101-000000F/manifest.json.zst\" cannot be read as a "
                + "pgproof manifest (");

        // Changed after completion: damaged, from the hash alone.
        c.writeManifest(m);
        c.markComplete(m, sha);
        Path stored = dir.resolve(layout.manifest(label));
        byte[] changed = Files.readAllBytes(stored);
        changed[changed.length / 2] ^= 1;
        Files.write(stored, changed);
        assertThat(c.summary(label).problem()).isEqualTo("damaged: \"main/backup/20260101-000000F/manifest.json.zst\" does not match the "
                + "SHA-256 that \"main/backup/20260101-000000F/backup.complete\" records (it was changed or damaged after the backup completed)");

        // A marker whose summary names another backup: the manifest is read instead.
        c.writeManifest(m);
        c.markComplete(manifest("20260101-000001F", "full", List.of()).withoutFiles(), sha);
        Files.move(dir.resolve(layout.completeMarker("20260101-000001F")), dir.resolve(layout.completeMarker(label)),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertThat(c.summary(label).manifest()).isEqualTo(withoutFiles(m));
        assertThat(c.summary(label).fileCount()).isOne();
    }

    @Test
    void aBackupOfAnOlderPgproofWithAPlainManifestIsComplete() throws IOException {
        storage = new PosixStorage(dir);
        BackupManifest m = manifest("20260101-000000F", "full", List.of());
        byte[] json = Json.MAPPER.writeValueAsBytes(m);
        putBytes(layout.legacyManifest(m.label()), json);
        BackupCatalog c = new BackupCatalog(storage, layout);
        c.markComplete(m.label(), dev.pgproof.io.Hashes.sha256Hex(json));

        BackupCatalog.Entry e = c.load(m.label());
        assertThat(e.problem()).isNull();
        assertThat(e.complete()).isTrue();
        assertThat(e.manifest()).isEqualTo(m);
        assertThat(c.complete()).containsExactly(withoutFiles(m));
        // Neither resumed nor reported damaged.
        check(null);

        // Changed after completion: damaged, naming the plain manifest.
        Files.writeString(dir.resolve(layout.legacyManifest(m.label())), "{}");
        assertThat(c.load(m.label()).problem()).isEqualTo("damaged: \"main/backup/20260101-000000F/manifest.json\" does not match the "
                + "SHA-256 that \"main/backup/20260101-000000F/backup.complete\" records (it was changed or damaged after the backup completed)");
        check(null);
    }

    @Test
    void aCompressedManifestThatIsNotZstdIsDamagedNamingIt() throws IOException {
        storage = new PosixStorage(dir);
        String label = "20260101-000000F";
        byte[] garbage = "this is not a zstd frame".getBytes(StandardCharsets.UTF_8);
        putBytes(layout.manifest(label), garbage);
        BackupCatalog c = new BackupCatalog(storage, layout);
        c.markComplete(label, dev.pgproof.io.Hashes.sha256Hex(garbage));

        BackupCatalog.Entry e = c.load(label);
        assertThat(e.complete()).isFalse();
        assertThat(e.damaged()).isTrue();
        assertThat(e.problem()).startsWith("damaged: \"main/backup/20260101-000000F/manifest.json.zst\" cannot be decompressed as zstd (");

        // zstd, but not a manifest.
        byte[] notJson = zstd("not a manifest".getBytes(StandardCharsets.UTF_8));
        putBytes(layout.manifest(label), notJson);
        c.markComplete(label, dev.pgproof.io.Hashes.sha256Hex(notJson));
        assertThat(c.load(label).problem())
                .startsWith("damaged: \"main/backup/20260101-000000F/manifest.json.zst\" cannot be read as a pgproof manifest (");

        // Neither object: the missing one named is the current manifest.
        Files.delete(dir.resolve(layout.manifest(label)));
        assertThat(c.load(label).problem()).isEqualTo("damaged: \"main/backup/20260101-000000F/backup.complete\" exists but "
                + "\"main/backup/20260101-000000F/manifest.json.zst\" is missing");
    }

    /**
     * A backup's files stream from its manifest one at a time, equal to what a whole load gives and in the same order,
     * whether the manifest was written whole or from a spool; the objects a backup needs among candidates come from the
     * same stream.
     */
    @Test
    void filesStreamFromTheManifestAsALoadGivesThem() throws IOException {
        storage = new PosixStorage(dir);
        String label = "20260101-000000F";
        List<BackupManifest.FileEntry> files = new java.util.ArrayList<>();
        try (FileSpool spool = FileSpool.create("test")) {
            for (int i = 999; i >= 0; i--) {   // spooled in any order, written in path order
                String key = layout.backupDir(label) + "data/base/1/" + (16384 + i) + ".0.zst";
                BackupManifest.FileEntry f = new BackupManifest.FileEntry("base/1/" + (16384 + i), 8192, "2026-01-01T00:00:00Z", "0600",
                        "ab".repeat(32), List.of(new BackupManifest.Chunk(key, 0, 8192, 100, "cd".repeat(32))));
                files.add(0, f);
                spool.add(f);
            }
            assertThat(spool.size()).isEqualTo(1000);
            assertThat(spool.get("base/1/16390")).isEqualTo(files.get(6));
            assertThat(spool.get("base/1/nope")).isNull();
            assertThatThrownBy(() -> spool.add(files.get(0))).isInstanceOf(IllegalStateException.class);
            BackupManifest m = manifest(label, "full", files);
            BackupCatalog c = new BackupCatalog(storage, layout);
            String sha = c.writeManifest(m.withoutFiles(), spool.rawInPathOrder());
            c.markComplete(m, spool.size(), sha);
            assertThat(c.load(label).manifest()).isEqualTo(m);
            assertThat(c.summary(label).fileCount()).isEqualTo(1000);
            assertThat(c.summary(label).manifest()).isEqualTo(withoutFiles(m));
            assertThat(spool.take("base/1/16384")).isEqualTo(files.get(0));
            assertThat(spool.take("base/1/16384")).isNull();
        }
        BackupCatalog c = new BackupCatalog(storage, layout);
        List<BackupManifest.FileEntry> streamed = new java.util.ArrayList<>();
        try (BackupCatalog.FileStream fs = c.files(label)) {
            fs.iterator().forEachRemaining(streamed::add);
            assertThat(fs.next()).isNull();
        }
        assertThat(streamed).isEqualTo(c.load(label).manifest().files()).isEqualTo(files);
        String wanted = files.get(5).chunks().get(0).key();
        assertThat(c.objectKeysAmong(label, java.util.Set.of(wanted, "main/backup/other"))).containsExactly(wanted);
    }

    /** A manifest changed after its backup was listed fails the reader that streams it at its end, naming it; it never ends quietly. */
    @Test
    void aManifestChangedSinceTheListingFailsItsStream() throws IOException {
        storage = new PosixStorage(dir);
        String label = "20260101-000000F";
        BackupCatalog c = new BackupCatalog(storage, layout);
        BackupManifest m = manifest(label, "full", oneFile(label));
        c.markComplete(m, c.writeManifest(m));
        assertThat(c.summary(label).complete()).isTrue();
        BackupManifest other = manifest(label, "full", List.of());
        Files.delete(dir.resolve(layout.manifest(label)));
        c.writeManifest(other);   // another manifest, the marker unchanged
        try (BackupCatalog.FileStream fs = c.files(label)) {
            assertThatThrownBy(fs::next).isInstanceOf(IOException.class).hasMessage("backup " + label + ": manifest \""
                    + layout.manifest(label) + "\" is damaged: it does not match the SHA-256 its marker records (changed or damaged since "
                    + "the backup was listed)");
        }
        storage.delete(layout.completeMarker(label));
        assertThatThrownBy(() -> c.files(label)).isInstanceOf(IOException.class).hasMessageContaining("is no longer usable");
    }

    private static byte[] zstd(byte[] plain) throws IOException {
        java.io.ByteArrayOutputStream buf = new java.io.ByteArrayOutputStream();
        try (java.io.OutputStream z = dev.pgproof.io.Compression.ZSTD.compress(buf, 3)) {
            z.write(plain);
        }
        return buf.toByteArray();
    }
}
