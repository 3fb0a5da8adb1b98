package dev.pgproof.repo;

import dev.pgproof.io.Compression;
import dev.pgproof.io.Hashes;
import dev.pgproof.storage.Storage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The backups of one cluster. A backup is complete only when its "backup.complete" marker exists
 * and names the SHA-256 of its manifest; anything else under backup/ is incomplete (in progress,
 * or left by a crash) and never used for a restore.
 */
public final class BackupCatalog {
    private final Storage storage;
    private final RepoLayout layout;

    public BackupCatalog(Storage storage, RepoLayout layout) {
        this.storage = storage;
        this.layout = layout;
    }

    /** A backup found in the repository; manifest is null when it is incomplete. */
    public record Entry(String label, boolean complete, BackupManifest manifest, String problem) {
        /** An expired backup whose remaining objects are kept because newer backups reference them: not a problem, never resumed. */
        public boolean expired() {
            return problem != null && problem.startsWith(EXPIRED);
        }

        /**
         * A backup whose completion marker exists but whose marker or manifest is damaged (unparsable, or not matching):
         * never used, never resumed (that would replace objects), never removed by expire; the problem names the object.
         */
        public boolean damaged() {
            return problem != null && problem.startsWith(DAMAGED);
        }
    }

    static final String EXPIRED = "expired";
    static final String DAMAGED = "damaged: ";

    public List<Entry> list() throws IOException {
        Map<String, Boolean> labels = new TreeMap<>();
        String prefix = layout.backupPrefix();
        for (Storage.ObjectInfo o : storage.list(prefix)) {
            String rest = o.key().substring(prefix.length());
            int slash = rest.indexOf('/');
            if (slash > 0) {
                labels.putIfAbsent(rest.substring(0, slash), Boolean.TRUE);
            }
        }
        List<Entry> out = new ArrayList<>();
        for (String label : labels.keySet()) {
            out.add(load(label));
        }
        return out;
    }

    /** Oldest first: by the stop time in the manifest (parsed, not compared as text), then label. */
    public static final Comparator<BackupManifest> BY_STOP_TIME =
            Comparator.comparing((BackupManifest m) -> Instant.parse(m.stopTime())).thenComparing(BackupManifest::label);

    /** Complete backups, oldest first by stop time from their manifests. */
    public List<BackupManifest> complete() throws IOException {
        List<BackupManifest> out = new ArrayList<>();
        for (Entry e : list()) {
            if (e.complete()) {
                out.add(e.manifest());
            }
        }
        out.sort(BY_STOP_TIME);
        return out;
    }

    /**
     * The newest full backup that is neither complete nor expired (an interrupted run a new full
     * backup may resume), or null. Same judgement as {@link #list()}, but it lists one level of
     * labels and reads only the markers (and, for a backup marked complete, its manifest's checksum;
     * one that is damaged is given to onDamaged, never resumed)
     * from the newest down, instead of listing every stored object and parsing every manifest.
     */
    public String newestIncompleteFull(java.util.function.Consumer<Entry> onDamaged) throws IOException {
        List<String> labels = new ArrayList<>();
        String prefix = layout.backupPrefix();
        for (String p : storage.listPrefixes(prefix)) {
            labels.add(p.substring(prefix.length(), p.length() - 1));
        }
        labels.sort(Comparator.reverseOrder());
        for (String label : labels) {
            if (!label.endsWith("F")) {
                continue;
            }
            byte[] marker;
            try (InputStream in = storage.open(layout.completeMarker(label))) {
                marker = in.readAllBytes();
            } catch (NoSuchFileException e) {
                if (storage.exists(layout.expiredMarker(label)) || storage.list(layout.backupDir(label)).isEmpty()) {
                    continue;   // expired (kept for references), or an empty directory that list() would not show
                }
                return label;
            }
            // Marked complete: never resumed. If its marker or manifest is damaged (checked cheaply here,
            // described by load()), the caller is told, because such a backup is never used either.
            boolean sound;
            try {
                Stored stored = readStored(label);
                Map<?, ?> recorded = Json.MAPPER.readValue(marker, Map.class);
                sound = stored != null && recorded != null && Hashes.sha256Hex(stored.bytes()).equals(recorded.get("manifestSha256"));
            } catch (com.fasterxml.jackson.core.JacksonException e) {
                sound = false;
            }
            if (!sound) {
                Entry damaged = load(label);
                if (damaged.damaged()) {
                    onDamaged.accept(damaged);
                }
            }
        }
        return null;
    }

    public Entry load(String label) throws IOException {
        byte[] marker;
        try (InputStream in = storage.open(layout.completeMarker(label))) {
            marker = in.readAllBytes();
        } catch (NoSuchFileException e) {
            if (storage.exists(layout.expiredMarker(label))) {
                return new Entry(label, false, null, EXPIRED + "; objects kept because newer backups reference them");
            }
            return new Entry(label, false, null, "no backup.complete marker (in progress, or interrupted)");
        }
        String markerKey = layout.completeMarker(label);
        Stored stored = readStored(label);
        if (stored == null) {
            return new Entry(label, false, null, DAMAGED + "\"" + markerKey + "\" exists but \"" + layout.manifest(label) + "\" is missing");
        }
        String manifestKey = stored.key();
        byte[] manifestBytes = stored.bytes();
        Object sha256;
        try {
            Map<?, ?> m = Json.MAPPER.readValue(marker, Map.class);
            sha256 = m == null ? null : m.get("manifestSha256");
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            return new Entry(label, false, null, DAMAGED + "\"" + markerKey + "\" is not valid JSON (" + firstLine(e.getOriginalMessage()) + ")");
        }
        if (!(sha256 instanceof String)) {
            return new Entry(label, false, null, DAMAGED + "\"" + markerKey + "\" names no manifestSha256");
        }
        String sha = Hashes.sha256Hex(manifestBytes);
        if (!sha.equals(sha256)) {
            return new Entry(label, false, null, DAMAGED + "\"" + manifestKey + "\" does not match the SHA-256 that \"" + markerKey
                    + "\" records (it was changed or damaged after the backup completed)");
        }
        byte[] json;
        if (stored.compressed()) {
            try (InputStream in = Compression.ZSTD.decompress(new ByteArrayInputStream(manifestBytes))) {
                json = in.readAllBytes();
            } catch (IOException e) {
                return new Entry(label, false, null, DAMAGED + "\"" + manifestKey + "\" cannot be decompressed as zstd ("
                        + firstLine(e.getMessage()) + ")");
            }
        } else {
            json = manifestBytes;
        }
        try {
            return new Entry(label, true, Json.MAPPER.readValue(json, BackupManifest.class), null);
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            return new Entry(label, false, null, DAMAGED + "\"" + manifestKey + "\" cannot be read as a pgproof manifest ("
                    + firstLine(e.getOriginalMessage()) + ")");
        }
    }

    /** A backup's manifest object as stored: its key, its bytes, and whether they are zstd-compressed (not in the legacy object). */
    private record Stored(String key, byte[] bytes, boolean compressed) {}

    /** The manifest object, or (a backup of an older pgproof) the legacy plain one; null when neither exists. */
    private Stored readStored(String label) throws IOException {
        String key = layout.manifest(label);
        try (InputStream in = storage.open(key)) {
            return new Stored(key, in.readAllBytes(), true);
        } catch (NoSuchFileException e) {
            // written by an older pgproof, or missing
        }
        String legacy = layout.legacyManifest(label);
        try (InputStream in = storage.open(legacy)) {
            return new Stored(legacy, in.readAllBytes(), false);
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "unreadable";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    /** Marks the remains of an expired backup (the objects newer backups reference) as such. */
    public void markExpired(String label) throws IOException {
        storage.write(layout.expiredMarker(label), ("{\"label\":\"" + label + "\",\"expiredAt\":\"" + Instant.now() + "\"}")
                .getBytes(StandardCharsets.UTF_8), false);
    }

    /**
     * Writes the manifest, zstd-compressed (step 2 of 3: data, manifest, marker); returns the SHA-256
     * of the stored (compressed) bytes, which the marker records.
     */
    public String writeManifest(BackupManifest manifest) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (OutputStream z = Compression.ZSTD.compress(buf, Compression.ZSTD.defaultLevel)) {
            Json.MAPPER.writeValue(z, manifest);
        }
        byte[] bytes = buf.toByteArray();
        storage.write(layout.manifest(manifest.label()), bytes, false);
        return Hashes.sha256Hex(bytes);
    }

    /** Marks a backup complete (the last write of a backup). */
    public void markComplete(String label, String manifestSha256) throws IOException {
        Map<String, Object> m = new TreeMap<>();
        m.put("label", label);
        m.put("manifestSha256", manifestSha256);
        m.put("completedAt", Instant.now().toString());
        storage.write(layout.completeMarker(label), Json.MAPPER.writeValueAsString(m).getBytes(StandardCharsets.UTF_8), false);
    }
}
