package dev.pgproof.repo;

import dev.pgproof.io.Compression;

/**
 * Keys of everything in a repository (see docs/repository-format.md). One repository root holds
 * several clusters, each under its name.
 */
public final class RepoLayout {
    public static final int FORMAT = 1;
    /**
     * A temporary file of a write (posix) older than this is a leftover of a killed writer: no
     * archive-push or backup chunk write takes that long. expire removes such files; verify lists them.
     */
    public static final java.time.Duration LEFTOVER_AGE = java.time.Duration.ofHours(1);
    private final String cluster;

    public RepoLayout(String cluster) {
        this.cluster = cluster;
    }

    public String cluster() {
        return cluster;
    }

    public String clusterInfo() {
        return cluster + "/cluster.info";
    }

    public String walPrefix() {
        return cluster + "/wal/";
    }

    /** The directory-like prefix of a WAL file: timeline+log for segments, "history" for history files. */
    public String walDir(String walFileName) {
        if (walFileName.endsWith(".history")) {
            return walPrefix() + "history/";
        }
        return walPrefix() + walFileName.substring(0, 16) + "/";
    }

    /** Prefix that finds every stored copy of one WAL file: "name-" then its SHA-256 and extension. */
    public String walSearchPrefix(String walFileName) {
        return walDir(walFileName) + walFileName + "-";
    }

    public String walKey(String walFileName, String sha256, Compression c) {
        return walSearchPrefix(walFileName) + sha256 + "." + c.extension;
    }

    /** Where wal-receive keeps the segment it is streaming, as partial copies (see docs/repository-format.md). */
    public String streamPrefix() {
        return cluster + "/stream/";
    }

    /** Prefix that finds every streamed partial copy of one segment. */
    public String streamSearchPrefix(String segment) {
        return streamPrefix() + segment + ".";
    }

    /** A streamed partial copy: the first {@code length} bytes of a segment, with their SHA-256. */
    public String streamKey(String segment, long length, String sha256, Compression c) {
        return streamSearchPrefix(segment) + String.format("%08X", length) + ".partial-" + sha256 + "." + c.extension;
    }

    public String backupPrefix() {
        return cluster + "/backup/";
    }

    public String backupDir(String label) {
        return backupPrefix() + label + "/";
    }

    /** pgproof's manifest of a backup, zstd-compressed JSON. */
    public String manifest(String label) {
        return backupDir(label) + "manifest.json.zst";
    }

    /** The plain JSON manifest older pgproof wrote instead of {@link #manifest}; still read. */
    public String legacyManifest(String label) {
        return backupDir(label) + "manifest.json";
    }

    /** Written when expire removed a backup but kept objects that newer backups reference. */
    public String expiredMarker(String label) {
        return backupDir(label) + "backup.expired";
    }

    public String completeMarker(String label) {
        return backupDir(label) + "backup.complete";
    }

    public String pgManifest(String label, Compression c) {
        return backupDir(label) + "backup_manifest." + c.extension;
    }

    public String dataChunk(String label, String path, int chunk, Compression c) {
        return backupDir(label) + "data/" + path + "." + chunk + "." + c.extension;
    }

    /** The block hashes of a large file of a backup (16 bytes per block, uncompressed: hashes do not compress). */
    public String blockHashes(String label, String path) {
        return backupDir(label) + "data/" + path + ".hashes." + Compression.NONE.extension;
    }

    public String proofPrefix() {
        return cluster + "/proof/";
    }

    /** A proof's record; label is YYYYMMDD-HHMMSS-<backup label>. */
    public String proof(String label) {
        return proofPrefix() + label + ".json";
    }

    public String lockPrefix() {
        return cluster + "/lock/";
    }

    /** An exclusive lock of the cluster: "backup" (backup and expire) or "prove". */
    public String lock(String name) {
        return lockPrefix() + name + ".lock";
    }

    public String holdPrefix() {
        return lockPrefix() + "hold/";
    }

    /** A shared hold on one backup by a reader (restore, prove): expire leaves a held backup alone. */
    public String hold(String label, String token) {
        return holdPrefix() + label + "." + token + ".json";
    }

    public String formerIdentityPrefix() {
        return cluster + "/identity/";
    }

    /** The last WAL segment archived under a former identity (its archive ends there). */
    public String formerIdentityEnd(String systemIdentifier) {
        return formerIdentityPrefix() + systemIdentifier + ".end";
    }

    /** The pin of an identity this cluster name had before an upgrade (pgproof init --upgrade). */
    public String formerIdentity(String systemIdentifier) {
        return formerIdentityPrefix() + systemIdentifier + ".info";
    }
}
