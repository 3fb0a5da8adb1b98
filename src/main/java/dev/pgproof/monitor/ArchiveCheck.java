package dev.pgproof.monitor;

import dev.pgproof.cluster.Discovery;
import dev.pgproof.cluster.LiveCluster;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import dev.pgproof.wal.WalArchive;
import dev.pgproof.wal.WalFileName;
import java.io.IOException;
import java.nio.file.Path;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code pgproof check}: on a cluster that passed the identity checks, confirms the archive settings
 * name this cluster and repository, forces a WAL switch and waits until that segment is in the
 * repository. On a standby, checks what can be checked without a switch.
 */
public final class ArchiveCheck {
    /** Polling interval while waiting for the segment. */
    private static final long POLL_MILLIS = 250;
    /** How often the wait reports progress. */
    private static final long PROGRESS_MILLIS = 5000;
    /** The archiver gives up for a minute after three failures in a row: the check does not wait through that. */
    private static final int FAILURES_BEFORE_GIVING_UP = 3;

    private final LiveCluster lc;
    private final Storage storage;
    private final RepoLayout layout;
    private final String repo;
    private final int timeoutSeconds;

    /** @param repo the repository root as configured for this cluster (to compare with archive_command's) */
    public ArchiveCheck(LiveCluster lc, Storage storage, RepoLayout layout, String repo, int timeoutSeconds) {
        this.lc = lc;
        this.storage = storage;
        this.layout = layout;
        this.repo = repo;
        this.timeoutSeconds = timeoutSeconds;
    }

    /** The outcome: the segment waited for (null on a standby) and how long it took to arrive. */
    public record Result(String segment, String storedKey, double seconds, boolean standby, String newestArchived) {}

    public Result run() {
        String name = lc.name();
        try {
            boolean standby = "t".equals(lc.query("SELECT pg_is_in_recovery()"));
            String mode = lc.query("SHOW archive_mode");
            String command = lc.query("SHOW archive_command");
            String library = lc.query("SHOW archive_library");
            Log.info("cluster \"%s\": %s, archive_mode = %s, archive_command = '%s'", name, standby ? "standby (in recovery)" : "primary", mode,
                    command);
            if (standby && !"always".equals(mode)) {
                Log.info("cluster \"%s\": a standby with archive_mode = %s does not archive: its primary does", name, mode);
            } else {
                checkSettings(mode, command, library);
            }
            if (standby) {
                return standby();
            }
            return switchAndWait();
        } catch (SQLException e) {
            String msg = e.getMessage() == null ? e.toString() : e.getMessage().lines().findFirst().orElse("");
            throw new PgproofException(ExitCode.CONNECT, "cluster \"" + name + "\": check failed on " + lc.endpoint().describe() + ": " + msg,
                    "pgproof check runs pg_switch_wal(), pg_create_restore_point() and reads pg_stat_archiver: it needs a superuser "
                            + "(by default it connects as the cluster owner's role)");
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "cluster \"" + name + "\": could not read repository \"" + storage.describe()
                    + "\": " + e.getMessage(), "check that it is mounted and readable by the cluster owner");
        }
    }

    private void checkSettings(String mode, String command, String library) {
        String name = lc.name();
        String fix = "run: pgproof init --cluster " + name + " --repo " + repo + " --configure (sets archive_mode and archive_command)";
        if ("off".equals(mode)) {
            throw new PgproofException(ExitCode.CHECK_FAILED, "cluster \"" + name + "\": archive_mode is off, so no WAL is archived",
                    fix + ", then restart PostgreSQL");
        }
        if (library != null && !library.isEmpty()) {
            throw new PgproofException(ExitCode.CHECK_FAILED, "cluster \"" + name + "\": archive_library is \"" + library
                    + "\", so archive_command is not used", "ALTER SYSTEM RESET archive_library; then " + fix);
        }
        ArchiveCommand ac = ArchiveCommand.parse(command);
        if (command == null || command.isBlank() || command.equals("(disabled)")) {
            throw new PgproofException(ExitCode.CHECK_FAILED, "cluster \"" + name + "\": archive_command is not set", fix);
        }
        if (!ac.callsPgproof()) {
            throw new PgproofException(ExitCode.CHECK_FAILED, "cluster \"" + name + "\": archive_command does not call pgproof archive-push: '"
                    + command + "'", fix);
        }
        if (!name.equals(ac.cluster())) {
            throw new PgproofException(ExitCode.CHECK_FAILED, "cluster \"" + name + "\": archive_command archives as "
                    + (ac.cluster() == null ? "no cluster (it has no --cluster)" : "cluster \"" + ac.cluster() + "\"") + ", not as \"" + name
                    + "\": '" + command + "'", fix);
        }
        String to = Survey.resolveRepo(ac);
        if (to == null) {
            throw new PgproofException(ExitCode.CHECK_FAILED, "cluster \"" + name + "\": archive_command names no repository (no --repo, and no "
                    + "repo in " + (ac.config() == null ? "the default configuration file" : "\"" + ac.config() + "\"") + "): '" + command + "'", fix);
        }
        if (!Discovery.sameRepository(to, repo)) {
            throw new PgproofException(ExitCode.CHECK_FAILED, "cluster \"" + name + "\": archive_command archives to repository \"" + to
                    + "\", not to \"" + repo + "\": '" + command + "'", fix);
        }
        Log.info("cluster \"%s\": archive_command calls pgproof archive-push for cluster \"%s\" and repository \"%s\"", name, name, to);
    }

    private Result switchAndWait() throws SQLException, IOException {
        String name = lc.name();
        int segSize = lc.control().walSegmentSize();
        long insert = WalFileName.parseLsn(lc.query("SELECT pg_current_wal_insert_lsn()"));
        // A switch of a segment with nothing in it does nothing, and the "switched" segment would be an old one.
        if (insert % segSize <= 40) {
            lc.query("SELECT pg_create_restore_point('pgproof check')");
            Log.info("cluster \"%s\": the current WAL segment is empty; wrote a restore point \"pgproof check\" into it", name);
        }
        Map<String, Object> before = archiver();
        long t0 = System.nanoTime();
        String segment = lc.query("SELECT pg_walfile_name(pg_switch_wal())");
        Log.info("cluster \"%s\": switched WAL; waiting up to %d s for segment %s to reach repository \"%s\"", name, timeoutSeconds, segment,
                storage.describe());
        WalArchive archive = new WalArchive(storage, layout);
        long deadline = t0 + timeoutSeconds * 1_000_000_000L;
        long nextProgress = System.nanoTime() + PROGRESS_MILLIS * 1_000_000L;
        long failedBefore = (Long) before.get("failed_count");
        while (true) {
            List<WalArchive.StoredWal> found = archive.find(segment);
            if (!found.isEmpty()) {
                double secs = (System.nanoTime() - t0) / 1e9;
                return new Result(segment, found.get(0).key(), secs, false, segment);
            }
            Map<String, Object> now = archiver();
            long failures = (Long) now.get("failed_count") - failedBefore;
            String lastFailed = (String) now.get("last_failed_wal");
            // The archiver works in order: a failing earlier segment holds ours back as surely as our own failing.
            if (failures >= FAILURES_BEFORE_GIVING_UP && lastFailed != null && WalFileName.kindOf(lastFailed) == WalFileName.Kind.SEGMENT
                    && lastFailed.compareTo(segment) <= 0) {
                throw notArchived(segment, now, String.format("archive_command failed %d times since the switch (%.1f s ago), on %s", failures,
                        (System.nanoTime() - t0) / 1e9, lastFailed.equals(segment) ? "this segment" : lastFailed + ", which comes before it"));
            }
            if (System.nanoTime() > deadline) {
                throw notArchived(segment, now, "it did not arrive within archive-timeout (" + timeoutSeconds + " s)");
            }
            if (System.nanoTime() > nextProgress) {
                Log.info("cluster \"%s\": still waiting for %s (%.0f s of %d s); archiver: last archived %s, %s", name, segment,
                        (System.nanoTime() - t0) / 1e9, timeoutSeconds, now.get("last_archived_wal"),
                        failures == 0 ? "no new failures" : failures + " new failure(s), last " + now.get("last_failed_wal"));
                nextProgress = System.nanoTime() + PROGRESS_MILLIS * 1_000_000L;
            }
            try {
                Thread.sleep(POLL_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new PgproofException(ExitCode.INTERRUPTED, "cluster \"" + name + "\": check interrupted while waiting for " + segment);
            }
        }
    }

    private PgproofException notArchived(String segment, Map<String, Object> st, String why) {
        String failed = st.get("last_failed_wal") == null ? "pg_stat_archiver reports no failure"
                : "pg_stat_archiver: last failed " + st.get("last_failed_wal") + " at " + st.get("last_failed_time") + ", " + st.get("failed_count")
                        + " failures; " + (st.get("last_archived_wal") == null ? "nothing archived yet"
                                : "last archived " + st.get("last_archived_wal") + " at " + st.get("last_archived_time"));
        return new PgproofException(ExitCode.CHECK_FAILED, "cluster \"" + lc.name() + "\": WAL segment " + segment
                + " did not reach repository \"" + storage.describe() + "\": " + why + " (" + failed + ")",
                "the server log (" + lc.pgdata() + "/log, or /var/log/postgresql) shows archive_command's error",
                "try the archive_command by hand as the cluster owner from the data directory, with %p replaced by pg_wal/" + segment);
    }

    private Map<String, Object> archiver() throws SQLException {
        Map<String, Object> m = new TreeMap<>();
        try (Statement st = lc.connection().createStatement();
                ResultSet rs = st.executeQuery("SELECT failed_count, last_failed_wal, last_failed_time, last_archived_wal, last_archived_time "
                        + "FROM pg_stat_archiver")) {
            rs.next();
            m.put("failed_count", rs.getLong(1));
            m.put("last_failed_wal", rs.getString(2));
            m.put("last_failed_time", rs.getTimestamp(3) == null ? null : rs.getTimestamp(3).toInstant().toString());
            m.put("last_archived_wal", rs.getString(4));
            m.put("last_archived_time", rs.getTimestamp(5) == null ? null : rs.getTimestamp(5).toInstant().toString());
        }
        return m;
    }

    /** The WAL file a standby has replayed up to (pg_walfile_name() refuses to run during recovery). */
    static String replayedWal(LiveCluster lc) throws SQLException {
        String lsn = lc.query("SELECT pg_last_wal_replay_lsn()");
        String tli = lc.query("SELECT timeline_id FROM pg_control_checkpoint()");
        if (lsn == null || tli == null) {
            return null;
        }
        int segSize = lc.control().walSegmentSize();
        return WalFileName.segmentName(Integer.parseInt(tli), WalFileName.segmentOf(WalFileName.parseLsn(lsn), segSize), segSize);
    }

    /** On a standby: the repository's newest segment against the standby's replay position. */
    private Result standby() throws SQLException, IOException {
        String name = lc.name();
        int segSize = lc.control().walSegmentSize();
        String replayed = replayedWal(lc);
        TreeMap<String, List<WalArchive.StoredWal>> all = new WalArchive(storage, layout).listAll();
        String newest = null;
        for (String n : all.keySet()) {
            if (WalFileName.kindOf(n) == WalFileName.Kind.SEGMENT) {
                newest = n;
            }
        }
        if (newest == null) {
            Log.warn("cluster \"%s\": repository \"%s\" holds no WAL segment of it", name, storage.describe());
        } else {
            long behind = replayed == null ? 0 : WalFileName.segmentNumber(replayed, segSize) - WalFileName.segmentNumber(newest, segSize);
            Log.info("cluster \"%s\": the repository's newest WAL segment is %s; this standby has replayed up to %s (%s)", name, newest, replayed,
                    behind <= 0 ? "the archive is not behind" : behind + " segment(s) not yet in the archive");
        }
        Log.info("cluster \"%s\": on a standby pgproof cannot force a WAL switch (pg_switch_wal() runs only on a primary): "
                + "run pgproof check on the primary to test archiving end to end", name);
        return new Result(null, null, 0, true, newest);
    }
}
