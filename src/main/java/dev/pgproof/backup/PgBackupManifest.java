package dev.pgproof.backup;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pgproof.wal.WalFileName;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Writes and reads a {@code backup_manifest} in the format of PostgreSQL 15's pg_basebackup
 * (manifest version 1), so that {@code pg_verifybackup} can check a backup pgproof restored.
 *
 * <p>The output is byte-for-byte what the server writes: one JSON object per line for each file and
 * WAL range, "Last-Modified" in GMT to the second, lowercase hex checksums, uppercase {@code %X/%X}
 * LSNs, and a final "Manifest-Checksum", the SHA-256 of everything up to and including the newline
 * before that line.
 */
public final class PgBackupManifest {

    /**
     * One file of the backup.
     *
     * @param path         path relative to the data directory, with '/' separators
     * @param size         size in bytes
     * @param lastModified modification time; written to the second
     * @param algorithm    "SHA256" or "CRC32C", as PostgreSQL names them, or null for a file without a checksum
     * @param checksumHex  the checksum in hex as the manifest holds it (a CRC-32C's four bytes little-endian, as
     *                     PostgreSQL writes them on the machines it runs on), or null
     */
    public record FileEntry(String path, long size, Instant lastModified, String algorithm, String checksumHex) {
        /** Checks the fields and normalizes the checksum to lowercase. */
        public FileEntry {
            Objects.requireNonNull(path, "path");
            Objects.requireNonNull(lastModified, "lastModified");
            if (path.isEmpty() || path.startsWith("/") || path.indexOf('\0') >= 0) {
                throw new IllegalArgumentException("not a relative path with '/' separators: \"" + path + "\"");
            }
            if (size < 0) {
                throw new IllegalArgumentException("negative size " + size + " for \"" + path + "\"");
            }
            if ((algorithm == null) != (checksumHex == null)) {
                throw new IllegalArgumentException("a checksum without its algorithm, or an algorithm without a checksum, for \"" + path + "\"");
            }
            if (algorithm != null) {
                Pattern form = HEX_OF.get(algorithm);
                if (form == null) {
                    throw new IllegalArgumentException("checksum algorithm \"" + algorithm + "\" for \"" + path + "\": only SHA256 and CRC32C are "
                            + "supported");
                }
                if (!form.matcher(checksumHex).matches()) {
                    throw new IllegalArgumentException("not a " + algorithm + " hex digest for \"" + path + "\": \"" + checksumHex + "\"");
                }
                checksumHex = checksumHex.toLowerCase(Locale.ROOT);
            }
        }

        /** A file with the SHA-256 of its contents in hex (null: no checksum). */
        public static FileEntry withSha256(String path, long size, Instant lastModified, String sha256Hex) {
            return new FileEntry(path, size, lastModified, sha256Hex == null ? null : "SHA256", sha256Hex);
        }

        /** A file with the CRC-32C of its contents (null: no checksum), in hex as PostgreSQL writes it: its four bytes little-endian. */
        public static FileEntry withCrc32c(String path, long size, Instant lastModified, Long crc32c) {
            if (crc32c == null) {
                return new FileEntry(path, size, lastModified, null, null);
            }
            int v = (int) (long) crc32c;
            return new FileEntry(path, size, lastModified, "CRC32C", HEX.formatHex(new byte[] {(byte) v, (byte) (v >>> 8), (byte) (v >>> 16),
                    (byte) (v >>> 24)}));
        }

        /**
         * Describes {@code file} under the directory {@code root}: relative path, size, modification
         * time and SHA-256 of its contents.
         */
        public static FileEntry of(Path root, Path file) throws IOException {
            Path relative = root.relativize(file);
            List<String> parts = new ArrayList<>();
            relative.forEach(p -> parts.add(p.toString()));
            MessageDigest sha = sha256();
            long size = 0;
            byte[] chunk = new byte[1 << 16];
            try (InputStream in = Files.newInputStream(file)) {
                for (int n; (n = in.read(chunk)) > 0; ) {
                    sha.update(chunk, 0, n);
                    size += n;
                }
            }
            return withSha256(String.join("/", parts), size, Files.getLastModifiedTime(file).toInstant(), HEX.formatHex(sha.digest()));
        }
    }

    /**
     * A range of WAL needed to make the backup consistent.
     *
     * @param timeline timeline of the range
     * @param startLsn first LSN of the range
     * @param endLsn   LSN the range ends at
     */
    public record WalRange(int timeline, long startLsn, long endLsn) {
    }

    /**
     * A manifest read back by {@link #parse}.
     *
     * @param version          PostgreSQL-Backup-Manifest-Version
     * @param files            the files, in manifest order
     * @param walRanges        the WAL ranges, in manifest order
     * @param manifestChecksum the (verified) Manifest-Checksum in lowercase hex
     */
    public record Parsed(int version, List<FileEntry> files, List<WalRange> walRanges, String manifestChecksum) {
        /** Makes the lists unmodifiable. */
        public Parsed {
            files = List.copyOf(files);
            walRanges = List.copyOf(walRanges);
        }
    }

    /** The only manifest version {@link #render} writes. */
    public static final int VERSION = 1;

    private static final HexFormat HEX = HexFormat.of();
    private static final java.util.Map<String, Pattern> HEX_OF = java.util.Map.of("SHA256", Pattern.compile("[0-9a-fA-F]{64}"), "CRC32C",
            Pattern.compile("[0-9a-fA-F]{8}"));
    private static final DateTimeFormatter LAST_MODIFIED =
            DateTimeFormatter.ofPattern("uuuu-MM-dd HH:mm:ss 'GMT'").withZone(ZoneOffset.UTC);
    private static final ObjectMapper JSON = new ObjectMapper();

    private PgBackupManifest() {
    }

    /**
     * Renders a manifest listing {@code files} and {@code walRanges} in the given order.
     *
     * @throws IllegalArgumentException if a path occurs twice or is not valid Unicode
     */
    public static byte[] render(List<FileEntry> files, List<WalRange> walRanges) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(256 + files.size() * 200);
        write(out, "{ \"PostgreSQL-Backup-Manifest-Version\": " + VERSION + ",\n\"Files\": [");
        Set<String> seen = new HashSet<>();
        boolean first = true;
        for (FileEntry f : files) {
            if (!seen.add(f.path())) {
                throw new IllegalArgumentException("duplicate path in backup manifest: \"" + f.path() + "\"");
            }
            StringBuilder line = new StringBuilder(first ? "\n" : ",\n");
            first = false;
            line.append("{ \"Path\": ");
            appendJsonString(line, f.path());
            line.append(", \"Size\": ").append(f.size());
            line.append(", \"Last-Modified\": \"").append(LAST_MODIFIED.format(f.lastModified())).append('"');
            if (f.algorithm() != null) {
                line.append(", \"Checksum-Algorithm\": \"").append(f.algorithm()).append("\", \"Checksum\": \"").append(f.checksumHex())
                        .append('"');
            }
            line.append(" }");
            write(out, line.toString());
        }
        write(out, "\n],\n\"WAL-Ranges\": [\n");
        first = true;
        for (WalRange r : walRanges) {
            write(out, (first ? "" : ",\n") + "{ \"Timeline\": " + Integer.toUnsignedString(r.timeline())
                    + ", \"Start-LSN\": \"" + WalFileName.formatLsn(r.startLsn())
                    + "\", \"End-LSN\": \"" + WalFileName.formatLsn(r.endLsn()) + "\" }");
            first = false;
        }
        write(out, "\n],\n");
        MessageDigest sha = sha256();
        sha.update(out.toByteArray());
        write(out, "\"Manifest-Checksum\": \"" + HEX.formatHex(sha.digest()) + "\"}\n");
        return out.toByteArray();
    }

    /** Parses a manifest; see {@link #parse(byte[], String)}. */
    public static Parsed parse(byte[] bytes) throws IOException {
        return parse(bytes, "backup_manifest");
    }

    /**
     * Parses a manifest and verifies its Manifest-Checksum; {@code source} names it in error messages.
     * Versions 1 and 2 are read (version 2, from PostgreSQL 17, adds a System-Identifier that is
     * ignored). File checksums must be SHA256, CRC32C or absent.
     *
     * @throws IOException if the manifest is not valid JSON, lacks required keys, has a bad checksum,
     *                     uses another checksum algorithm, or names a path that is not UTF-8
     */
    public static Parsed parse(byte[] bytes, String source) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(bytes);
        } catch (JsonProcessingException e) {
            throw new IOException("file \"" + source + "\" is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new IOException("file \"" + source + "\" is not a backup manifest: expected a JSON object");
        }
        int version = requireInt(root, "PostgreSQL-Backup-Manifest-Version", source);
        if (version != 1 && version != 2) {
            throw new IOException("file \"" + source + "\" has unsupported manifest version " + version
                    + ", supported: 1, 2");
        }
        String stored = requireText(root, "Manifest-Checksum", source).toLowerCase(Locale.ROOT);
        String computed = computeManifestChecksum(bytes, source);
        if (!computed.equals(stored)) {
            throw new IOException("file \"" + source + "\" has a bad checksum: computed " + computed
                    + ", stored " + stored);
        }

        List<FileEntry> files = new ArrayList<>();
        for (JsonNode f : requireArray(root, "Files", source)) {
            String path;
            if (f.has("Path")) {
                path = requireText(f, "Path", source);
            } else {
                path = decodeEncodedPath(requireText(f, "Encoded-Path", source), source);
            }
            long size = requireLong(f, "Size", source);
            String lastModifiedText = requireText(f, "Last-Modified", source);
            Instant lastModified;
            try {
                lastModified = Instant.from(LAST_MODIFIED.parse(lastModifiedText));
            } catch (DateTimeParseException e) {
                throw new IOException("file \"" + source + "\" has a bad Last-Modified for \"" + path + "\": \""
                        + lastModifiedText + "\"", e);
            }
            String algorithm = null;
            String checksum = null;
            if (f.has("Checksum-Algorithm")) {
                algorithm = requireText(f, "Checksum-Algorithm", source);
                checksum = requireText(f, "Checksum", source);
            }
            try {
                files.add(new FileEntry(path, size, lastModified, algorithm, checksum));
            } catch (IllegalArgumentException e) {
                throw new IOException("file \"" + source + "\" has a bad file entry: " + e.getMessage(), e);
            }
        }
        List<WalRange> ranges = new ArrayList<>();
        for (JsonNode r : requireArray(root, "WAL-Ranges", source)) {
            long tli = requireLong(r, "Timeline", source);
            if (tli < 0 || tli > 0xFFFFFFFFL) {
                throw new IOException("file \"" + source + "\" has a bad Timeline " + tli);
            }
            ranges.add(new WalRange((int) tli, requireLsn(r, "Start-LSN", source), requireLsn(r, "End-LSN", source)));
        }
        return new Parsed(version, files, ranges, stored);
    }

    /**
     * Appends {@code s} as a JSON string the way PostgreSQL's escape_json does: the short escapes
     * for backspace, form feed, newline, carriage return, tab, quote and backslash, a backslash-u
     * escape with 4 lowercase hex digits for other control characters, everything else as is.
     */
    private static void appendJsonString(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                default -> {
                    if (c < ' ') {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    private static void write(ByteArrayOutputStream out, String s) {
        ByteBuffer encoded;
        try {
            encoded = StandardCharsets.UTF_8.newEncoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .encode(CharBuffer.wrap(s));
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException("not valid Unicode (unpaired surrogate): " + s.strip(), e);
        }
        out.write(encoded.array(), encoded.arrayOffset() + encoded.position(), encoded.remaining());
    }

    /** SHA-256 of everything up to and including the second-to-last newline, as pg_verifybackup checks. */
    private static String computeManifestChecksum(byte[] bytes, String source) throws IOException {
        int newlines = 0;
        int i = bytes.length - 1;
        for (; i >= 0; i--) {
            if (bytes[i] == '\n' && ++newlines == 2) {
                break;
            }
        }
        if (i < 0) {
            throw new IOException("file \"" + source + "\" is not a backup manifest: expected at least 2 lines");
        }
        MessageDigest sha = sha256();
        sha.update(bytes, 0, i + 1);
        return HEX.formatHex(sha.digest());
    }

    private static String decodeEncodedPath(String hex, String source) throws IOException {
        byte[] raw;
        try {
            raw = HEX.parseHex(hex);
        } catch (IllegalArgumentException e) {
            throw new IOException("file \"" + source + "\" has a bad Encoded-Path \"" + hex + "\"", e);
        }
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(raw)).toString();
        } catch (CharacterCodingException e) {
            throw new IOException("file \"" + source + "\" names a file whose name is not UTF-8 (Encoded-Path \""
                    + hex + "\"), which is not supported", e);
        }
    }

    private static JsonNode require(JsonNode node, String key, String source) throws IOException {
        JsonNode v = node.get(key);
        if (v == null || v.isNull()) {
            throw new IOException("file \"" + source + "\" is missing \"" + key + "\" in " + abbreviate(node));
        }
        return v;
    }

    private static String requireText(JsonNode node, String key, String source) throws IOException {
        JsonNode v = require(node, key, source);
        if (!v.isTextual()) {
            throw new IOException("file \"" + source + "\" has a non-string \"" + key + "\" in " + abbreviate(node));
        }
        return v.textValue();
    }

    private static long requireLong(JsonNode node, String key, String source) throws IOException {
        JsonNode v = require(node, key, source);
        if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
            throw new IOException("file \"" + source + "\" has a bad \"" + key + "\" in " + abbreviate(node));
        }
        return v.longValue();
    }

    private static int requireInt(JsonNode node, String key, String source) throws IOException {
        long v = requireLong(node, key, source);
        if (v > Integer.MAX_VALUE) {
            throw new IOException("file \"" + source + "\" has a bad \"" + key + "\": " + v);
        }
        return (int) v;
    }

    private static long requireLsn(JsonNode node, String key, String source) throws IOException {
        String text = requireText(node, key, source);
        try {
            return WalFileName.parseLsn(text);
        } catch (IllegalArgumentException e) {
            throw new IOException("file \"" + source + "\" has a bad \"" + key + "\": \"" + text + "\"", e);
        }
    }

    private static Iterable<JsonNode> requireArray(JsonNode node, String key, String source) throws IOException {
        JsonNode v = require(node, key, source);
        if (!v.isArray()) {
            throw new IOException("file \"" + source + "\" has a non-array \"" + key + "\"");
        }
        for (JsonNode element : v) {
            if (!element.isObject()) {
                throw new IOException("file \"" + source + "\" has a non-object in \"" + key + "\"");
            }
        }
        return v;
    }

    private static String abbreviate(JsonNode node) {
        String s = node.isObject() && node.size() > 8 ? "the top-level object" : node.toString();
        return s.length() > 200 ? s.substring(0, 200) + "..." : s;
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is not available", e);
        }
    }
}
