package dev.pgproof.repo;

import dev.pgproof.io.Compression;
import dev.pgproof.io.Hashes;
import dev.pgproof.storage.Storage;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.security.DigestInputStream;
import java.security.MessageDigest;
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

    /**
     * A backup found in the repository; manifest is null when it is incomplete. From {@link #list()}
     * and {@link #complete()} the manifest is a summary: every field but {@code files}, which is null
     * (stream one backup's files with {@link #files(Entry)}); {@code fileCount} counts them either way.
     * {@code manifestSha256} is the SHA-256 of the stored manifest the entry was read from (null: incomplete).
     */
    public record Entry(String label, boolean complete, BackupManifest manifest, String problem, int fileCount, String manifestSha256) {
        public Entry(String label, boolean complete, BackupManifest manifest, String problem) {
            this(label, complete, manifest, problem, manifest == null || manifest.files() == null ? 0 : manifest.files().size(), null);
        }

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
    static final String NO_MARKER = "no backup.complete marker (in progress, or interrupted)";
    static final String DAMAGED = "damaged: ";

    /**
     * Every backup, by label: one level of the repository is listed (not every object of every backup), and each
     * backup's marker and manifest are read (see {@link #read}); a directory without a marker that holds nothing is no
     * backup.
     */
    public List<Entry> list() throws IOException {
        List<String> labels = new ArrayList<>();
        String prefix = layout.backupPrefix();
        for (String p : storage.listPrefixes(prefix)) {
            labels.add(p.substring(prefix.length(), p.length() - 1));
        }
        labels.sort(Comparator.naturalOrder());
        List<Entry> out = new ArrayList<>();
        for (Entry e : readSummaries(labels)) {
            if (!e.complete() && NO_MARKER.equals(e.problem()) && storage.list(layout.backupDir(e.label())).isEmpty()) {
                continue;
            }
            out.add(e);
        }
        return out;
    }

    /**
     * How many backups' summaries are read at once: each means reading and hashing every stored byte of a manifest (a
     * round trip to an object store, and for an older marker zstd and the JSON parser), and every restore, backup and
     * info reads the whole catalog.
     */
    static final int READERS = 4;

    /** The summaries of these backups, in order, read by up to {@link #READERS} threads; the first failure is thrown. */
    private List<Entry> readSummaries(List<String> labels) throws IOException {
        List<Entry> out = new ArrayList<>();
        if (labels.size() <= 1) {
            for (String label : labels) {
                out.add(read(label, false));
            }
            return out;
        }
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(Math.min(READERS, labels.size()), r -> {
            Thread t = new Thread(r, "catalog");
            t.setDaemon(true);
            return t;
        });
        try {
            List<java.util.concurrent.Future<Entry>> reads = new ArrayList<>();
            for (String label : labels) {
                reads.add(pool.submit(() -> read(label, false)));
            }
            for (java.util.concurrent.Future<Entry> f : reads) {
                out.add(f.get());
            }
            return out;
        } catch (java.util.concurrent.ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof IOException io) {
                throw io;
            }
            if (c instanceof RuntimeException re) {
                throw re;
            }
            if (c instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException(c);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted while reading the backups of cluster \"" + layout.cluster() + "\"");
        } finally {
            pool.shutdownNow();
        }
    }

    /** Oldest first: by the stop time in the manifest (parsed, not compared as text), then label. */
    public static final Comparator<BackupManifest> BY_STOP_TIME =
            Comparator.comparing((BackupManifest m) -> Instant.parse(m.stopTime())).thenComparing(BackupManifest::label);

    /**
     * Complete backups, oldest first by stop time from their manifests, as summaries ({@code files} is
     * null): memory grows with the number of backups, not with their size.
     */
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
     * one that is damaged is given to onDamaged, never resumed) from the newest down, instead of
     * listing every stored object and parsing every manifest.
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
            if (!storage.exists(layout.completeMarker(label))) {
                if (storage.exists(layout.expiredMarker(label)) || storage.list(layout.backupDir(label)).isEmpty()) {
                    continue;   // expired (kept for references), or an empty directory that list() would not show
                }
                return label;
            }
            // Marked complete: never resumed. If its marker or manifest is damaged (checked cheaply here, by the
            // SHA-256 alone; described by read()), the caller is told, because such a backup is never used either.
            if (!soundByHash(label)) {
                Entry e = read(label, false);
                if (e.damaged()) {
                    onDamaged.accept(e);
                }
            }
        }
        return null;
    }

    /** Whether the marker of a backup marked complete parses and names the SHA-256 of its stored manifest (not parsed). */
    private boolean soundByHash(String label) throws IOException {
        Object recorded;
        try {
            recorded = markerSha256(label);
        } catch (NoSuchFileException e) {
            return false;
        }
        Opened opened = openManifest(label);
        if (opened == null) {
            return false;
        }
        MessageDigest digest = Hashes.sha256();
        try (DigestInputStream hashed = new DigestInputStream(opened.in(), digest)) {
            hashed.transferTo(OutputStream.nullOutputStream());
        }
        return Hashes.hex(digest.digest()).equals(recorded);
    }

    /** What backup label's marker records as its manifest's SHA-256 ({@link #recordedSha256(Object)}); NoSuchFileException without one. */
    private Object markerSha256(String label) throws IOException {
        try (InputStream in = storage.open(layout.completeMarker(label))) {
            return recordedSha256(parseMarker(in.readAllBytes()));
        }
    }

    /** A marker parsed once, for both {@link #recordedSha256} and {@link #summaryIn}: its JSON (null for "null"); an {@link Unreadable} when it is not a JSON object. */
    private static Object parseMarker(byte[] marker) {
        try {
            return Json.MAPPER.readValue(marker, Map.class);
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            return new Unreadable(firstLine(e.getOriginalMessage()));
        } catch (IOException e) {
            throw new IllegalStateException(e);   // reading a byte array
        }
    }

    /** What a parsed marker records as its manifest's SHA-256: a String; null when it names none; the {@link Unreadable} when it is not JSON. */
    private static Object recordedSha256(Object marker) {
        return marker instanceof Map<?, ?> m ? m.get("manifestSha256") : marker;
    }

    /**
     * The summary a parsed marker of a backup of this version holds (the manifest without its files, and their count), so that
     * listing the backups hashes each manifest's stored bytes but neither decompresses nor parses them; null when the
     * marker has none (an older pgproof's), or one that does not read as this backup's (the manifest is read instead).
     */
    private static Summary summaryIn(Object marker, String label) {
        if (!(marker instanceof Map<?, ?> m) || !(m.get("summary") instanceof Map<?, ?> summary) || !(m.get("fileCount") instanceof Integer files)) {
            return null;
        }
        try {
            BackupManifest s = Json.MAPPER.convertValue(summary, BackupManifest.class);
            return s.label() != null && s.label().equals(label) && s.files() == null ? new Summary(s, files) : null;
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /**
     * The JSON of a manifest from its stored bytes as they are hashed: decompressed unless it is the legacy plain one. Closing
     * it leaves the stored stream open, so that what the parser did not read is still hashed.
     */
    private static InputStream json(InputStream hashed, boolean compressed) throws IOException {
        InputStream shield = new FilterInputStream(hashed) {
            @Override
            public void close() {
                // the parser and zstd close what they read; the rest is still hashed
            }
        };
        return compressed ? Compression.ZSTD.decompress(shield) : shield;
    }

    /** A backup's manifest object opened for reading: its key, its stream, and whether it is zstd-compressed (not the legacy one). */
    private record Opened(String key, InputStream in, boolean compressed) {}

    /** The manifest object, or (a backup of an older pgproof) the legacy plain one; null when neither exists. */
    private Opened openManifest(String label) throws IOException {
        try {
            return new Opened(layout.manifest(label), storage.open(layout.manifest(label)), true);
        } catch (NoSuchFileException e) {
            // written by an older pgproof, or missing
        }
        try {
            return new Opened(layout.legacyManifest(label), storage.open(layout.legacyManifest(label)), false);
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    /** One backup with its whole manifest, files included (or the reason it is not usable). */
    public Entry load(String label) throws IOException {
        return read(label, true);
    }

    /** One backup as {@link #list()} gives it: the manifest without its files, which are only counted. */
    public Entry summary(String label) throws IOException {
        return read(label, false);
    }

    /**
     * The whole manifest of a backup the caller found complete (in a summary); an IOException naming the
     * problem when it is no longer usable (expired or damaged since).
     */
    public BackupManifest manifest(String label) throws IOException {
        Entry e = load(label);
        if (!e.complete()) {
            throw new IOException("backup " + label + " is no longer usable: " + e.problem());
        }
        return e.manifest();
    }

    /**
     * The files of a backup's manifest, one at a time as they stream from storage, for a caller that found the backup
     * complete (a summary; its manifest was hashed then): memory does not grow with the backup's size. The stored bytes go
     * through the SHA-256 the marker records on the way; the last {@link FileStream#next()} checks it, so a manifest
     * changed since the summary was read fails the reader before it reports success.
     */
    public FileStream files(String label) throws IOException {
        Object sha256;
        try {
            sha256 = markerSha256(label);
        } catch (NoSuchFileException e) {
            throw new IOException("backup " + label + " is no longer usable: its marker \"" + layout.completeMarker(label) + "\" is gone");
        }
        if (!(sha256 instanceof String known)) {
            throw new IOException("backup " + label + " is no longer usable: its marker \"" + layout.completeMarker(label)
                    + "\" names no manifest SHA-256");
        }
        return files(label, known);
    }

    /**
     * The files of a complete backup as {@link #files(String)} gives them, from the manifest the entry was read from (the
     * SHA-256 it had then): a reader that holds the backup streams it even once an expire has withdrawn its marker.
     */
    public FileStream files(Entry e) throws IOException {
        if (!e.complete() || e.manifestSha256() == null) {
            throw new IllegalArgumentException("backup " + e.label() + " is not complete");
        }
        return files(e.label(), e.manifestSha256());
    }

    private FileStream files(String label, String sha256) throws IOException {
        Opened opened = openManifest(label);
        if (opened == null) {
            throw new IOException("backup " + label + " is no longer usable: its manifest \"" + layout.manifest(label) + "\" is gone");
        }
        return new FileStream(label, opened, sha256);
    }

    /**
     * The stored objects among candidates that complete backup label needs (each file's
     * {@link BackupManifest.FileEntry#objectKeys()}): what of a set of objects that may go must stay for it. Its files
     * stream past; only the objects found are kept.
     */
    public java.util.Set<String> objectKeysAmong(String label, java.util.Set<String> candidates) throws IOException {
        return candidates.isEmpty() ? new java.util.HashSet<>() : objectKeysAmong(files(label), candidates);
    }

    /** {@link #objectKeysAmong(String, java.util.Set)} for a complete backup's entry, from the manifest it was read from. */
    public java.util.Set<String> objectKeysAmong(Entry e, java.util.Set<String> candidates) throws IOException {
        return candidates.isEmpty() ? new java.util.HashSet<>() : objectKeysAmong(files(e), candidates);
    }

    private static java.util.Set<String> objectKeysAmong(FileStream stream, java.util.Set<String> candidates) throws IOException {
        java.util.Set<String> out = new java.util.HashSet<>();
        try (FileStream files = stream) {
            for (BackupManifest.FileEntry f = files.next(); f != null; f = files.next()) {
                for (String key : f.objectKeys()) {
                    if (candidates.contains(key)) {
                        out.add(key);
                    }
                }
            }
        }
        return out;
    }

    /** A backup's files as its manifest lists them, parsed one by one ({@link #files(String)}). */
    public static final class FileStream implements java.io.Closeable {
        private final String label;
        private final String key;
        private final String expectedSha256;
        private final MessageDigest digest = Hashes.sha256();
        private final DigestInputStream hashed;
        private final JsonParser parser;
        private boolean inFiles;
        private boolean done;

        private FileStream(String label, Opened opened, String expectedSha256) throws IOException {
            this.label = label;
            this.key = opened.key();
            this.expectedSha256 = expectedSha256;
            this.hashed = new DigestInputStream(opened.in(), digest);
            try {
                this.parser = Json.MAPPER.createParser(json(hashed, opened.compressed()));
            } catch (IOException | RuntimeException e) {
                hashed.close();
                throw e;
            }
        }

        /** The next file, or null after the last one (once every stored byte matched the marker's SHA-256). */
        public BackupManifest.FileEntry next() throws IOException {
            if (done) {
                return null;
            }
            try {
                if (!inFiles) {
                    if (parser.nextToken() != JsonToken.START_OBJECT) {
                        throw damaged("it is not a JSON object");
                    }
                    while (!inFiles) {
                        JsonToken t = parser.nextToken();
                        if (t != JsonToken.FIELD_NAME) {
                            return end();   // no files array: no files
                        }
                        String name = parser.currentName();
                        t = parser.nextToken();
                        if (name.equals("files") && t == JsonToken.START_ARRAY) {
                            inFiles = true;
                        } else {
                            parser.skipChildren();
                        }
                    }
                }
                JsonToken t = parser.nextToken();
                if (t == JsonToken.END_ARRAY) {
                    return end();
                }
                if (t != JsonToken.START_OBJECT) {
                    throw damaged("an entry of \"files\" is not an object");
                }
                return Json.MAPPER.readValue(parser, BackupManifest.FileEntry.class);
            } catch (com.fasterxml.jackson.core.JacksonException e) {
                throw damaged("it cannot be read as a pgproof manifest (" + firstLine(e.getOriginalMessage()) + ")");
            }
        }

        /** The rest of the files as an iterator (for task queues that take one); a failure to read is an UncheckedIOException. */
        public java.util.Iterator<BackupManifest.FileEntry> iterator() {
            return iterator(f -> true);
        }

        /**
         * The rest of the files that {@code take} accepts, as an iterator; {@code take} sees every file in order (a caller
         * may set some aside for later). A failure to read is an UncheckedIOException.
         */
        public java.util.Iterator<BackupManifest.FileEntry> iterator(java.util.function.Predicate<BackupManifest.FileEntry> take) {
            return new java.util.Iterator<>() {
                private BackupManifest.FileEntry ahead;

                @Override
                public boolean hasNext() {
                    try {
                        while (ahead == null) {
                            BackupManifest.FileEntry f = FileStream.this.next();
                            if (f == null) {
                                return false;
                            }
                            if (take.test(f)) {
                                ahead = f;
                            }
                        }
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                    return true;
                }

                @Override
                public BackupManifest.FileEntry next() {
                    if (!hasNext()) {
                        throw new java.util.NoSuchElementException();
                    }
                    BackupManifest.FileEntry f = ahead;
                    ahead = null;
                    return f;
                }
            };
        }

        private BackupManifest.FileEntry end() throws IOException {
            done = true;
            hashed.transferTo(OutputStream.nullOutputStream());
            if (!Hashes.hex(digest.digest()).equals(expectedSha256)) {
                throw damaged("it does not match the SHA-256 its marker records (changed or damaged since the backup was listed)");
            }
            return null;
        }

        private IOException damaged(String why) {
            return new IOException("backup " + label + ": manifest \"" + key + "\" is damaged: " + why);
        }

        @Override
        public void close() throws IOException {
            try {
                parser.close();
            } finally {
                hashed.close();
            }
        }
    }

    /**
     * Reads and checks one backup: its marker, then its manifest streamed from storage through the
     * SHA-256 the marker records, zstd and the JSON parser, so that no copy of the manifest is held
     * whole. Without files, the summary comes from the marker when it holds one (the manifest's stored
     * bytes are then only hashed), else the files array is skipped as it streams past and only counted.
     * What was parsed is used only when the SHA-256 of every stored byte matches the marker.
     */
    private Entry read(String label, boolean withFiles) throws IOException {
        byte[] marker;
        try (InputStream in = storage.open(layout.completeMarker(label))) {
            marker = in.readAllBytes();
        } catch (NoSuchFileException e) {
            if (storage.exists(layout.expiredMarker(label))) {
                return new Entry(label, false, null, EXPIRED + "; objects kept because newer backups reference them");
            }
            return new Entry(label, false, null, NO_MARKER);
        }
        String markerKey = layout.completeMarker(label);
        Object parsedMarker = parseMarker(marker);
        Object sha256 = recordedSha256(parsedMarker);
        Opened opened = openManifest(label);
        if (opened == null) {
            return new Entry(label, false, null, DAMAGED + "\"" + markerKey + "\" exists but \"" + layout.manifest(label) + "\" is missing");
        }
        String manifestKey = opened.key();
        boolean compressed = opened.compressed();
        InputStream raw = opened.in();
        if (sha256 instanceof Unreadable u) {
            raw.close();
            return new Entry(label, false, null, DAMAGED + "\"" + markerKey + "\" is not valid JSON (" + u.why() + ")");
        }
        if (!(sha256 instanceof String)) {
            raw.close();
            return new Entry(label, false, null, DAMAGED + "\"" + markerKey + "\" names no manifestSha256");
        }
        Summary inMarker = withFiles ? null : summaryIn(parsedMarker, label);
        MessageDigest digest = Hashes.sha256();
        BackupManifest parsed = null;
        int count = 0;
        String failure = null;
        Watched watched = new Watched(raw);
        try (DigestInputStream hashed = new DigestInputStream(watched, digest)) {
            if (inMarker != null) {
                parsed = inMarker.manifest();   // the stored bytes are hashed below, neither decompressed nor parsed
                count = inMarker.files();
            } else {
                try (InputStream json = json(hashed, compressed)) {
                    if (withFiles) {
                        parsed = Json.MAPPER.readValue(json, BackupManifest.class);
                        count = parsed.files() == null ? 0 : parsed.files().size();
                    } else {
                        Summary s = summarize(json);
                        parsed = s.manifest();
                        count = s.files();
                    }
                } catch (com.fasterxml.jackson.core.JacksonException e) {
                    failure = "cannot be read as a pgproof manifest (" + firstLine(e.getOriginalMessage()) + ")";
                } catch (IOException e) {
                    if (!compressed || watched.failed != null) {
                        throw e;   // reading the repository failed: that says nothing about the backup
                    }
                    failure = "cannot be decompressed as zstd (" + firstLine(e.getMessage()) + ")";
                }
            }
            hashed.transferTo(OutputStream.nullOutputStream());   // every stored byte counts in the SHA-256
        }
        if (!Hashes.hex(digest.digest()).equals(sha256)) {
            return new Entry(label, false, null, DAMAGED + "\"" + manifestKey + "\" does not match the SHA-256 that \"" + markerKey
                    + "\" records (it was changed or damaged after the backup completed)");
        }
        if (failure != null) {
            return new Entry(label, false, null, DAMAGED + "\"" + manifestKey + "\" " + failure);
        }
        return new Entry(label, true, parsed, null, count, (String) sha256);
    }

    /**
     * The stored bytes as they are read, remembering a read that failed: an error of the repository (a
     * lost connection) must not be taken for a damaged manifest, which is never used again.
     */
    private static final class Watched extends FilterInputStream {
        IOException failed;

        Watched(InputStream in) {
            super(in);
        }

        @Override
        public int read() throws IOException {
            try {
                return super.read();
            } catch (IOException e) {
                failed = e;
                throw e;
            }
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            try {
                return super.read(b, off, len);
            } catch (IOException e) {
                failed = e;
                throw e;
            }
        }
    }

    /** A marker that is not valid JSON: why. */
    private record Unreadable(String why) {}

    private record Summary(BackupManifest manifest, int files) {}

    /** Parses a manifest but its files, which are skipped one by one and counted. */
    private static Summary summarize(InputStream json) throws IOException {
        ObjectNode root = Json.MAPPER.createObjectNode();
        int files = 0;
        try (JsonParser p = Json.MAPPER.createParser(json)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new JsonParseException(p, "a manifest is a JSON object");
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken t = p.nextToken();
                if (name.equals("files") && t == JsonToken.START_ARRAY) {
                    for (JsonToken e = p.nextToken(); e != JsonToken.END_ARRAY; e = p.nextToken()) {
                        if (e != JsonToken.START_OBJECT) {
                            throw new JsonParseException(p, "an entry of \"files\" is not an object");
                        }
                        p.skipChildren();
                        files++;
                    }
                } else {
                    root.set(name, Json.MAPPER.readTree(p));
                }
            }
            if (p.currentToken() != JsonToken.END_OBJECT) {
                throw new JsonParseException(p, "the manifest ends early");
            }
        }
        return new Summary(Json.MAPPER.treeToValue(root, BackupManifest.class), files);
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "unreadable";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    /** Deletes a backup's manifest object, and the plain one an older pgproof wrote (deleting a missing object is not an error). */
    public void deleteManifest(String label) throws IOException {
        storage.delete(layout.manifest(label));
        storage.delete(layout.legacyManifest(label));
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
        List<BackupManifest.FileEntry> files = manifest.files() == null ? List.of() : manifest.files();
        java.util.Iterator<BackupManifest.FileEntry> each = files.iterator();
        return writeManifest(manifest.withoutFiles(), new java.util.Iterator<byte[]>() {
            @Override
            public boolean hasNext() {
                return each.hasNext();
            }

            @Override
            public byte[] next() {
                try {
                    return Json.MAPPER.writeValueAsBytes(each.next());
                } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                    throw new IllegalStateException(e);
                }
            }
        });
    }

    /**
     * Writes a manifest from its summary (the manifest without its files) and its files' entries as JSON, in order, as
     * they come (a backup's {@link FileSpool}): the files array is written last, streamed through zstd and the SHA-256 to
     * storage, so that no copy of the manifest is held whole. Returns the SHA-256 of the stored bytes.
     */
    public String writeManifest(BackupManifest summary, java.util.Iterator<byte[]> files) throws IOException {
        byte[] head = Json.MAPPER.writeValueAsBytes(summary.withoutFiles());
        if (head.length < 2 || head[head.length - 1] != '}') {
            throw new IllegalStateException("a manifest's summary is not a JSON object");
        }
        MessageDigest digest = Hashes.sha256();
        try (Storage.Writer w = storage.create(layout.manifest(summary.label()))) {
            try (OutputStream z = Compression.ZSTD.compress(new java.io.FilterOutputStream(new java.security.DigestOutputStream(w.stream(),
                    digest)) {
                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    out.write(b, off, len);
                }

                @Override
                public void close() throws IOException {
                    flush();   // the writer commits, then closes, its stream
                }
            }, Compression.ZSTD.defaultLevel)) {
                z.write(head, 0, head.length - 1);
                z.write((head.length > 2 ? ",\"files\":[" : "\"files\":[").getBytes(StandardCharsets.UTF_8));
                boolean first = true;
                try {
                    while (files.hasNext()) {
                        if (!first) {
                            z.write(',');
                        }
                        z.write(files.next());
                        first = false;
                    }
                } catch (java.io.UncheckedIOException e) {
                    throw e.getCause();
                }
                z.write("]}".getBytes(StandardCharsets.UTF_8));
            }
            w.commit(false);
        }
        return Hashes.hex(digest.digest());
    }

    /**
     * Marks a backup complete (the last write of a backup), with its manifest's summary (every field but {@code files},
     * and their count) for {@link #list()}.
     */
    public void markComplete(BackupManifest manifest, String manifestSha256) throws IOException {
        markComplete(manifest, manifest.files() == null ? 0 : manifest.files().size(), manifestSha256);
    }

    /** {@link #markComplete(BackupManifest, String)} given the summary and the number of files of the manifest written. */
    public void markComplete(BackupManifest summary, int fileCount, String manifestSha256) throws IOException {
        Map<String, Object> m = new TreeMap<>();
        m.put("label", summary.label());
        m.put("manifestSha256", manifestSha256);
        m.put("completedAt", Instant.now().toString());
        m.put("fileCount", fileCount);
        m.put("summary", summary.withoutFiles());
        storage.write(layout.completeMarker(summary.label()), Json.MAPPER.writeValueAsString(m).getBytes(StandardCharsets.UTF_8), false);
    }

    /** Marks a backup complete as a pgproof before summaries in markers did (tests of reading such repositories). */
    public void markComplete(String label, String manifestSha256) throws IOException {
        Map<String, Object> m = new TreeMap<>();
        m.put("label", label);
        m.put("manifestSha256", manifestSha256);
        m.put("completedAt", Instant.now().toString());
        storage.write(layout.completeMarker(label), Json.MAPPER.writeValueAsString(m).getBytes(StandardCharsets.UTF_8), false);
    }
}
