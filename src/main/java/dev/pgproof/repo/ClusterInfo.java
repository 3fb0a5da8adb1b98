package dev.pgproof.repo;

import dev.pgproof.io.Hashes;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The identity pin of one cluster in the repository: "&lt;cluster&gt;/cluster.info", plain
 * "key=value" lines ending with a checksum line. It is read on every archive-push, so it is kept
 * small and parsed without a JSON library.
 */
public final class ClusterInfo {
    private ClusterInfo() {}

    public static String render(String cluster, ClusterIdentity id, String pgdata) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("format", Integer.toString(RepoLayout.FORMAT));
        m.put("cluster", cluster);
        m.put("system-identifier", id.systemIdentifierString());
        m.put("pg-version", Integer.toString(id.pgVersion()));
        m.put("wal-segment-size", Integer.toString(id.walSegmentSize()));
        m.put("block-size", Integer.toString(id.blockSize()));
        m.put("wal-block-size", Integer.toString(id.walBlockSize()));
        m.put("data-checksums", id.dataChecksums() ? "on" : "off");
        m.put("pgdata", pgdata);
        m.put("created", Instant.now().toString());
        StringBuilder body = new StringBuilder("# pgproof cluster identity; written once by pgproof init, do not edit\n");
        m.forEach((k, v) -> body.append(k).append('=').append(v).append('\n'));
        String text = body.toString();
        return text + "checksum=" + Hashes.sha256Hex(text.getBytes(StandardCharsets.UTF_8)) + "\n";
    }

    /** Reads the pin; a missing one is a "not initialised" error naming the cluster and repository. */
    public static ClusterIdentity read(Storage storage, RepoLayout layout) {
        String key = layout.clusterInfo();
        byte[] bytes;
        try (InputStream in = storage.open(key)) {
            bytes = in.readAllBytes();
        } catch (NoSuchFileException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "cluster \"" + layout.cluster() + "\" is not initialised in repository \""
                    + storage.describe() + "\"",
                    "run: pgproof init --cluster " + layout.cluster() + " --repo " + storage.location() + " --pgdata <data directory>",
                    "or check --cluster and --repo (is this the repository the cluster archives to?)");
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not read \"" + key + "\" in repository \"" + storage.describe()
                    + "\": " + e.getMessage(), "check that the repository is mounted and readable by this OS user");
        }
        return parse(new String(bytes, StandardCharsets.UTF_8), storage.describe() + "/" + key);
    }

    /**
     * Identities this cluster name had before pg_upgrade gave it a new one ({@code init --upgrade}): their
     * backups and WAL stay readable (restored with their own major version).
     */
    public static java.util.List<ClusterIdentity> formers(Storage storage, RepoLayout layout) {
        java.util.List<ClusterIdentity> out = new java.util.ArrayList<>();
        try {
            for (Storage.ObjectInfo o : storage.list(layout.formerIdentityPrefix())) {
                if (o.key().endsWith(".info")) {
                    try (InputStream in = storage.open(o.key())) {
                        out.add(parse(new String(in.readAllBytes(), StandardCharsets.UTF_8), storage.describe() + "/" + o.key()));
                    }
                }
            }
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not read the former identities of cluster \"" + layout.cluster()
                    + "\" in repository \"" + storage.describe() + "\": " + e.getMessage(), "check that the repository is readable by this OS user");
        }
        return out;
    }

    /**
     * Replaces the pin after pg_upgrade: the old pin is kept first under identity/, then cluster.info
     * is rewritten (each write whole and atomic; a crash in between leaves the old pin in force).
     */
    public static void upgrade(Storage storage, RepoLayout layout, ClusterIdentity old, String oldText, ClusterIdentity now, String pgdata,
            String lastOldSegment) throws IOException {
        if (lastOldSegment != null) {
            storage.write(layout.formerIdentityEnd(old.systemIdentifierString()), (lastOldSegment + "\n").getBytes(StandardCharsets.UTF_8), false);
        }
        try {
            storage.write(layout.formerIdentity(old.systemIdentifierString()), oldText.getBytes(StandardCharsets.UTF_8), true);
        } catch (java.nio.file.FileAlreadyExistsException e) {
            // kept by an earlier, interrupted upgrade
        }
        storage.write(layout.clusterInfo(), render(layout.cluster(), now, pgdata).getBytes(StandardCharsets.UTF_8), false);
    }

    /** The last WAL segment of a former identity's archive, or null if unknown. */
    public static String formerEnd(Storage storage, RepoLayout layout, String systemIdentifier) {
        try (InputStream in = storage.open(layout.formerIdentityEnd(systemIdentifier))) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).strip();
        } catch (java.nio.file.NoSuchFileException e) {
            return null;
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not read \"" + layout.formerIdentityEnd(systemIdentifier) + "\" in repository \""
                    + storage.describe() + "\": " + e.getMessage(), "check that the repository is readable by this OS user");
        }
    }

    /** The text of the current pin (to keep it as a former identity). */
    public static String text(Storage storage, RepoLayout layout) throws IOException {
        try (InputStream in = storage.open(layout.clusterInfo())) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    static ClusterIdentity parse(String text, String source) {
        int at = text.lastIndexOf("checksum=");
        if (at < 0 || !text.substring(at + 9).strip().equals(Hashes.sha256Hex(text.substring(0, at).getBytes(StandardCharsets.UTF_8)))) {
            throw new PgproofException(ExitCode.REPOSITORY, "cluster identity file \"" + source + "\" is damaged (checksum mismatch)",
                    "restore it from a copy of the repository; pgproof never rewrites it");
        }
        Map<String, String> m = new LinkedHashMap<>();
        for (String line : text.substring(0, at).split("\n")) {
            int eq = line.indexOf('=');
            if (!line.startsWith("#") && eq > 0) {
                m.put(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        if (!Integer.toString(RepoLayout.FORMAT).equals(m.get("format"))) {
            throw new PgproofException(ExitCode.REPOSITORY, "cluster identity file \"" + source + "\" has repository format "
                    + m.get("format") + ", this pgproof reads format " + RepoLayout.FORMAT, "use the pgproof version that wrote it");
        }
        try {
            return new ClusterIdentity(Long.parseUnsignedLong(m.get("system-identifier")), Integer.parseInt(m.get("pg-version")),
                    Integer.parseInt(m.get("wal-segment-size")), Integer.parseInt(m.get("block-size")),
                    Integer.parseInt(m.get("wal-block-size")), "on".equals(m.get("data-checksums")));
        } catch (RuntimeException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "cluster identity file \"" + source + "\" is incomplete",
                    "restore it from a copy of the repository");
        }
    }
}
