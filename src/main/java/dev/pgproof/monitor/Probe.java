package dev.pgproof.monitor;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.pgproof.cluster.LiveCluster;
import dev.pgproof.cluster.Owner;
import dev.pgproof.repo.Json;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.List;
import java.util.stream.Stream;

/**
 * What a running server says about its archiving: settings, {@code pg_stat_archiver} and the
 * {@code .ready} files waiting in pg_wal. Gathered over a connection that passed the identity check,
 * as the data directory's owner (pgproof clusters, started as root, runs it in a child as that owner).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Probe(
        String error,
        List<String> errorHints,
        Integer errorCode,
        String endpoint,
        String systemIdentifier,
        Integer serverVersionNum,
        Boolean inRecovery,
        String archiveMode,
        String archiveCommand,
        String archiveLibrary,
        Long archivedCount,
        String lastArchivedWal,
        String lastArchivedTime,
        Long failedCount,
        String lastFailedWal,
        String lastFailedTime,
        String statsReset,
        String currentWal,
        Integer readyFiles,
        Long oldestReadySeconds,
        Long pgWalBytes) {

    /** Without the WAL backlog figures. */
    public Probe(String error, List<String> errorHints, Integer errorCode, String endpoint, String systemIdentifier, Integer serverVersionNum,
            Boolean inRecovery, String archiveMode, String archiveCommand, String archiveLibrary, Long archivedCount, String lastArchivedWal,
            String lastArchivedTime, Long failedCount, String lastFailedWal, String lastFailedTime, String statsReset, String currentWal,
            Integer readyFiles) {
        this(error, errorHints, errorCode, endpoint, systemIdentifier, serverVersionNum, inRecovery, archiveMode, archiveCommand,
                archiveLibrary, archivedCount, lastArchivedWal, lastArchivedTime, failedCount, lastFailedWal, lastFailedTime, statsReset,
                currentWal, readyFiles, null, null);
    }

    /** A probe that could not be made: the one-line error and its hints. */
    public static Probe failed(String error, List<String> hints, int code) {
        return new Probe(error, hints, code, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null);
    }

    /** Connects (with the identity check, no repository pin) and reads the archiving facts. */
    public static Probe run(String name, Path pgdata, String user, int connectTimeout) {
        try (LiveCluster lc = LiveCluster.connect(name, pgdata, null, null, user, connectTimeout, null, null)) {
            boolean recovery = "t".equals(lc.query("SELECT pg_is_in_recovery()"));
            String library = lc.serverVersionNum() >= 150000 ? lc.query("SHOW archive_library") : "";
            String current = recovery ? ArchiveCheck.replayedWal(lc) : lc.query("SELECT pg_walfile_name(pg_current_wal_lsn())");
            Long archived = null;
            String lastArchived = null;
            String lastArchivedTime = null;
            Long failed = null;
            String lastFailed = null;
            String lastFailedTime = null;
            String reset = null;
            try (Statement st = lc.connection().createStatement();
                    ResultSet rs = st.executeQuery("SELECT archived_count, last_archived_wal, last_archived_time, failed_count, "
                            + "last_failed_wal, last_failed_time, stats_reset FROM pg_stat_archiver")) {
                if (rs.next()) {
                    archived = rs.getLong(1);
                    lastArchived = rs.getString(2);
                    lastArchivedTime = instant(rs.getTimestamp(3));
                    failed = rs.getLong(4);
                    lastFailed = rs.getString(5);
                    lastFailedTime = instant(rs.getTimestamp(6));
                    reset = instant(rs.getTimestamp(7));
                }
            }
            return new Probe(null, null, null, lc.endpoint().describe(), lc.identity().systemIdentifierString(), lc.serverVersionNum(),
                    recovery, lc.query("SHOW archive_mode"), lc.query("SHOW archive_command"), library, archived, lastArchived,
                    lastArchivedTime, failed, lastFailed, lastFailedTime, reset, current, readyFiles(lc.pgdata()), oldestReadySeconds(lc.pgdata()),
                    pgWalBytes(lc.pgdata()));
        } catch (PgproofException e) {
            return failed(e.getMessage(), e.hints(), e.exitCode().code);
        } catch (SQLException e) {
            return failed("cluster \"" + name + "\": archiving queries failed: " + e.getMessage().lines().findFirst().orElse(""),
                    List.of("pgproof needs a superuser (or pg_monitor and pg_read_all_settings) to read the archive settings"), 4);
        }
    }

    /**
     * Probes as the owner of the data directory: started as root, in a child pgproof run as that
     * owner (so that peer authentication lets it in as the owner's role); otherwise in this process
     * as the current OS user.
     */
    public static Probe asOwner(String name, Path pgdata, String user, int connectTimeout) {
        List<String> args = new java.util.ArrayList<>(List.of("_probe", "--name", name, "--pgdata", pgdata.toString(), "--connect-timeout",
                Integer.toString(connectTimeout)));
        if (user != null) {
            args.addAll(List.of("--user", user));
        }
        try {
            Owner.ChildResult r = Owner.runPgproofAs(pgdata, args, java.time.Duration.ofSeconds(connectTimeout + 60L));
            if (r == null) {
                return run(name, pgdata, user != null ? user : Owner.currentUser(), connectTimeout);
            }
            if (r.stdout().isBlank()) {
                return failed("cluster \"" + name + "\": the probe run as the owner of \"" + pgdata + "\" exited with code " + r.exitCode()
                        + " and no result", List.of("its messages are above; run pgproof as the cluster owner to see them alone"), 4);
            }
            return Json.MAPPER.readValue(r.stdout(), Probe.class);
        } catch (IOException e) {
            return failed("cluster \"" + name + "\": could not probe as the owner of \"" + pgdata + "\": " + e.getMessage(),
                    List.of("run pgproof clusters as root, or as the cluster owner"), 11);
        }
    }

    private static String instant(Timestamp t) {
        return t == null ? null : t.toInstant().toString();
    }

    /** Seconds since the oldest .ready file appeared (how long archiving has been behind), or null when none waits. */
    static Long oldestReadySeconds(Path pgdata) {
        try (Stream<Path> files = Files.list(pgdata.resolve("pg_wal/archive_status"))) {
            return files.filter(p -> p.getFileName().toString().endsWith(".ready")).map(p -> {
                try {
                    return Files.getLastModifiedTime(p).toInstant();
                } catch (IOException e) {
                    return java.time.Instant.now();
                }
            }).min(java.util.Comparator.naturalOrder()).map(t -> java.time.Duration.between(t, java.time.Instant.now()).getSeconds())
                    .orElse(null);
        } catch (IOException | SecurityException e) {
            return null;
        }
    }

    /** Bytes of the files in pg_wal (segments, history files), which grow while archiving is behind. */
    static Long pgWalBytes(Path pgdata) {
        try (Stream<Path> files = Files.list(pgdata.resolve("pg_wal"))) {
            return files.filter(Files::isRegularFile).mapToLong(p -> {
                try {
                    return Files.size(p);
                } catch (IOException e) {
                    return 0;
                }
            }).sum();
        } catch (IOException | SecurityException e) {
            return null;
        }
    }

    /** WAL files PostgreSQL has finished and not yet archived (pg_wal/archive_status/*.ready). */
    static Integer readyFiles(Path pgdata) {
        try (Stream<Path> files = Files.list(pgdata.resolve("pg_wal/archive_status"))) {
            return (int) files.filter(p -> p.getFileName().toString().endsWith(".ready")).count();
        } catch (IOException | SecurityException e) {
            return null;
        }
    }

    /** Whether archiving is failing now: a failure more recent than the last success. */
    public boolean failing() {
        if (lastFailedTime == null) {
            return false;
        }
        return lastArchivedTime == null || java.time.Instant.parse(lastFailedTime).isAfter(java.time.Instant.parse(lastArchivedTime));
    }
}
