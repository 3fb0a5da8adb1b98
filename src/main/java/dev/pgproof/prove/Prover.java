package dev.pgproof.prove;

import dev.pgproof.cluster.PgConnection;
import dev.pgproof.cluster.PgControl;
import dev.pgproof.config.CheckQueries;
import dev.pgproof.lock.RepoLock;
import dev.pgproof.repo.BackupCatalog;
import dev.pgproof.repo.BackupManifest;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.repo.ProofCatalog;
import dev.pgproof.repo.ProofRecord;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.restore.RecoveryTarget;
import dev.pgproof.restore.Restore;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.Cleanup;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import dev.pgproof.util.Sizes;
import dev.pgproof.util.TestHooks;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Proves a backup by restoring it and running it: restore into a scratch directory, pg_verifybackup,
 * recovery from the archive on a throwaway server to the target (or the end of the archive) and
 * promotion, the system identifier, amcheck on every B-tree index and a full read of every table in
 * every database that accepts connections, the user's check queries, a clean stop and
 * pg_checksums. Every check is recorded in a {@link ProofRecord}; the throwaway server is always
 * stopped and the scratch copy removed (unless asked to keep it).
 */
public final class Prover {
    private static final DateTimeFormatter LABEL_TIME = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss").withZone(ZoneOffset.UTC);
    private static final Pattern RESTORED = Pattern.compile("restored log file \"([0-9A-F]{24}|[0-9A-F]{8}\\.history)\" from archive");

    /** What the caller chose. */
    public record Options(String set, RecoveryTarget target, Path scratchParent, boolean keep, boolean keepOnFailure, int jobs,
            String restoreCommand, List<CheckQueries.CheckQuery> checkQueries, String user, int timeoutSeconds) {}

    private final Storage storage;
    private final RepoLayout layout;
    private final ClusterIdentity pinned;
    private final List<ProofRecord.Check> checks = new ArrayList<>();
    private ThrowawayServer server;
    private String user;

    public Prover(Storage storage, RepoLayout layout, ClusterIdentity pinned) {
        this.storage = storage;
        this.layout = layout;
        this.pinned = pinned;
    }

    /** A check failed: stop the proof here (later steps make no sense). */
    private static final class StopProof extends Exception {
        private static final long serialVersionUID = 1L;
    }

    /** Runs the proof; returns the record written to the repository (passed or not). */
    public ProofRecord run(Options o) {
        String cluster = layout.cluster();
        Instant started = Instant.now();
        user = o.user();
        Restore restore = new Restore(storage, layout);
        List<BackupManifest> complete;
        try {
            complete = new BackupCatalog(storage, layout).complete();
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not read the backups of cluster \"" + cluster + "\" in repository \""
                    + storage.describe() + "\": " + e.getMessage(), "check that the repository is mounted and readable");
        }
        RecoveryTarget rt = o.target();
        BackupCatalog.Entry chosen = restore.choose(o.set(), rt, complete);
        BackupManifest m = chosen.manifest();
        String targetText = rt.isSet() ? rt.kind() + " " + rt.value() : "end of archive";
        Log.info("prove: cluster \"%s\", repository \"%s\": backup %s (finished %s, %s in %d files), recovery to %s", cluster,
                storage.describe(), m.label(), m.stopTime(), Sizes.bytes(m.size()), chosen.fileCount(), targetText);
        Path bin = Path.of("/usr/lib/postgresql/" + m.pgVersion() + "/bin");
        if (!Files.isExecutable(bin.resolve("postgres"))) {
            throw new PgproofException(ExitCode.CONFIG, "backup " + m.label() + " of cluster \"" + cluster + "\" is PostgreSQL " + m.pgVersion()
                    + ", but \"" + bin.resolve("postgres") + "\" is not installed", "install it: apt-get install postgresql-" + m.pgVersion());
        }
        RepoLock hold = holdQuietly(m.label());
        Path scratch;
        try {
            if (hold != null) {
                restore.checkStillComplete(m.label(), "prove");
            }
            scratch = makeScratch(o.scratchParent(), m);
        } catch (RuntimeException e) {
            if (hold != null) {
                hold.close();
            }
            throw e;
        }
        boolean passed = false;
        Object cleanup = Cleanup.register(() -> {
            Log.warn("prove interrupted: stopping the throwaway server and removing \"%s\"", scratch);
            if (server != null) {
                server.stop(20);
                server.removeSocketDir();
            }
            if (!o.keep() && !o.keepOnFailure()) {
                deleteTree(scratch);
            }
            if (hold != null) {
                hold.close();
            }
        });
        ProofRecord record;
        RuntimeException bug = null;
        try {
            try {
                prove(o, chosen, rt, bin, scratch);
            } catch (StopProof e) {
                // recorded as a failed check
            } catch (PgproofException e) {
                if (e.exitCode() == ExitCode.INTERRUPTED) {
                    throw e;
                }
                checks.add(new ProofRecord.Check("prove", false, e.getMessage(), 0));
            } catch (IOException | SQLException e) {
                checks.add(new ProofRecord.Check("prove", false, e.toString(), 0));
            } catch (RuntimeException e) {
                // A bug: recorded as a failed proof, then reported with its stack trace (exit 70).
                checks.add(new ProofRecord.Check("prove", false, "internal error: " + e, 0));
                bug = e;
            } finally {
                if (server != null && server.isAlive()) {
                    Log.info("prove: stopping the throwaway server");
                    server.stop(60);
                }
                if (server != null) {
                    server.removeSocketDir();
                }
            }
            passed = !checks.isEmpty() && checks.stream().allMatch(ProofRecord.Check::passed);
            Instant finished = Instant.now();
            record = new ProofRecord(LABEL_TIME.format(started) + "-" + m.label(), m.label(), reportedSysid, started.toString(),
                    finished.toString(), passed, targetText, reachedLsn, reachedTime, hostName(), List.copyOf(checks));
            try {
                new ProofCatalog(storage, layout).write(record);
                Log.info("prove: proof %s recorded in repository \"%s\" (%s)", record.label(), storage.describe(), layout.proof(record.label()));
                if (bug != null) {
                    throw bug;
                }
            } catch (IOException e) {
                throw new PgproofException(ExitCode.REPOSITORY, "could not record proof " + record.label() + " of cluster \"" + cluster
                        + "\" in repository \"" + storage.describe() + "\": " + e.getMessage(), "check that the repository is writable by this OS user");
            }
        } finally {
            if (hold != null) {
                hold.close();
            }
            Cleanup.unregister(cleanup);
            if (o.keep() || (!passed && o.keepOnFailure())) {
                Log.info("prove: scratch copy kept in \"%s\" (server log: %s)", scratch, scratch.resolve("postgres.log"));
            } else {
                deleteTree(scratch);
                Log.info("prove: scratch copy \"%s\" removed", scratch);
            }
        }
        return record;
    }

    /** A hold keeps expire away from the backup (and so its WAL) while it is proven; a read-only repository only gets a warning. */
    private RepoLock holdQuietly(String label) {
        try {
            return RepoLock.hold(storage, layout, label, "prove");
        } catch (PgproofException e) {
            Log.warn("could not put a hold on backup %s (%s): an expire running meanwhile could remove it", label, e.getMessage());
            return null;
        }
    }

    /** What the running step works on, for its heartbeat line. */
    private volatile String activity;
    private String reportedSysid;
    private String reachedLsn;
    private String reachedTime;

    private void prove(Options o, BackupCatalog.Entry chosen, RecoveryTarget rt, Path bin, Path scratch) throws StopProof, IOException, SQLException {
        BackupManifest m = chosen.manifest();
        Restore restore = new Restore(storage, layout);
        Path data = scratch.resolve("data");
        step("WAL needed by backup " + m.label(), () -> {
            restore.checkWal(m, rt);
            return "WAL from " + m.startWal() + " on is in the repository without a gap";
        }, true);
        Map<Integer, Path> ts = new HashMap<>();
        for (BackupManifest.Tablespace t : m.tablespaces()) {
            ts.put(t.oid(), scratch.resolve("tablespaces").resolve(Integer.toString(t.oid())));
        }
        step("restore", () -> {
            restore.run(chosen, new Restore.Options(o.set(), data, rt, o.restoreCommand(), true, o.jobs(), ts));
            return "restored " + Sizes.bytes(m.size()) + " in " + chosen.fileCount() + " files, every chunk checked"
                    + (ts.isEmpty() ? "" : ", " + ts.size() + " tablespace(s) remapped into the scratch directory");
        }, true);
        step("pg_verifybackup", () -> {
            Tool r = tool(List.of(bin.resolve("pg_verifybackup").toString(), "-n", data.toString()), scratch.resolve("pg_verifybackup.out"),
                    o.timeoutSeconds());
            if (r.code != 0) {
                throw new CheckFailed("pg_verifybackup -n exited with " + r.code + ": " + lastLines(r.output, 3));
            }
            return lastLines(r.output, 1) + " (WAL is checked by recovery from the archive)";
        }, true);
        step("system identifier of the restored pg_control", () -> {
            PgControl c = PgControl.read(data);
            if (c.systemIdentifier() != pinned.systemIdentifier()) {
                throw new CheckFailed("pg_control has system identifier " + Long.toUnsignedString(c.systemIdentifier()) + ", the cluster is pinned to "
                        + pinned.systemIdentifierString());
            }
            return Long.toUnsignedString(c.systemIdentifier());
        }, true);
        server = new ThrowawayServer(bin, data, scratch, layout.cluster());
        server.writeConfig();
        Log.info("prove: throwaway server: socket \"%s\" (0700), port %d, no TCP, archive_mode off, no preloaded libraries, "
                + "no WAL senders or logical replication workers, configuration \"%s\"", server.socketDir(), server.port(),
                scratch.resolve("conf/postgresql.conf"));
        step("recovery", () -> recover(o, rt), true);
        TestHooks.pause("prove-recovered", scratch + " pid " + server.pid());
        step("system identifier", () -> {
            try (Connection c = connect("postgres")) {
                reportedSysid = PgConnection.queryString(c, "SELECT system_identifier FROM pg_control_system()");
            }
            if (!pinned.systemIdentifierString().equals(reportedSysid)) {
                throw new CheckFailed("the restored server reports system identifier " + reportedSysid + ", the cluster is pinned to "
                        + pinned.systemIdentifierString());
            }
            return reportedSysid;
        }, true);
        List<String> databases = new ArrayList<>();
        step("list databases", () -> {
            int refusing = 0;
            try (Connection c = connect("postgres"); Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("SELECT datname, datallowconn FROM pg_database ORDER BY datname")) {
                while (rs.next()) {
                    if (rs.getBoolean(2)) {
                        databases.add(rs.getString(1));
                    } else {
                        refusing++;
                    }
                }
            }
            return databases.size() + " database(s) accept connections and are checked: " + String.join(", ", databases)
                    + (refusing > 0 ? "; " + refusing + " do not (datallowconn false, such as template0)" : "");
        }, true);
        for (String db : databases) {
            step("amcheck " + db, () -> amcheck(db), false);
            step("read tables " + db, () -> readTables(db), false);
        }
        for (CheckQueries.CheckQuery q : o.checkQueries()) {
            step("check query " + q.name(), () -> checkQuery(q, o.timeoutSeconds()), false);
        }
        step("clean stop", () -> {
            if (!server.stop(120)) {
                throw new CheckFailed("the server did not shut down cleanly (pg_ctl -m fast stop): " + server.failureLines());
            }
            PgControl c = PgControl.read(data);
            if (c.state() != 1) {
                throw new CheckFailed("after the stop, pg_control says \"" + c.stateName() + "\", not \"shut down\"");
            }
            return "pg_ctl -m fast stop; pg_control says shut down";
        }, true);
        if (m.dataChecksums() || pinned.dataChecksums()) {
            step("pg_checksums", () -> {
                Tool r = tool(List.of(bin.resolve("pg_checksums").toString(), "--check", "-D", data.toString()), scratch.resolve("pg_checksums.out"),
                        o.timeoutSeconds());
                Matcher bad = Pattern.compile("Bad checksums:\\s+(\\d+)").matcher(r.output);
                Matcher blocks = Pattern.compile("Blocks scanned:\\s+(\\d+)").matcher(r.output);
                if (r.code != 0) {
                    throw new CheckFailed("pg_checksums --check exited with " + r.code + ": " + lastLines(r.output, 3));
                }
                return (blocks.find() ? blocks.group(1) + " blocks scanned, " : "") + (bad.find() ? bad.group(1) : "0") + " bad checksums";
            }, false);
        } else {
            Log.info("prove: data checksums are off for this cluster: pg_checksums is skipped");
        }
    }

    /** Starts the throwaway server and waits until recovery has reached its target and the server promoted. */
    private String recover(Options o, RecoveryTarget rt) throws IOException, CheckFailed {
        server.start();
        long begin = System.nanoTime();
        long deadline = begin + TimeUnit.SECONDS.toNanos(o.timeoutSeconds());
        long[] logOffset = {0};
        String lastRestored = null;
        int restored = 0;
        long lastReport = System.nanoTime();
        Log.info("prove: recovering from the archive%s (restore_command = '%s')", rt.isSet() ? " to " + rt.kind() + " " + rt.value() : " to its end",
                o.restoreCommand());
        while (true) {
            for (String line : server.newLogLines(logOffset)) {
                Matcher mt = RESTORED.matcher(line);
                if (mt.find()) {
                    restored++;
                    if (mt.group(1).length() == 24) {
                        lastRestored = mt.group(1);
                    }
                }
            }
            if (!server.isAlive()) {
                throw new CheckFailed("the server stopped during recovery (exit code " + server.exitCode() + "): " + server.failureLines());
            }
            try (Connection c = open("postgres", 5)) {
                if ("f".equals(PgConnection.queryString(c, "SELECT pg_is_in_recovery()"))) {
                    try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(
                            "SELECT pg_last_wal_replay_lsn(), pg_last_xact_replay_timestamp(), timeline_id FROM pg_control_checkpoint()")) {
                        rs.next();
                        reachedLsn = rs.getString(1);
                        reachedTime = rs.getString(2);
                        return restored + " WAL file(s) restored from the archive" + (lastRestored == null ? "" : ", the last segment " + lastRestored)
                                + "; replayed to LSN " + reachedLsn + (reachedTime == null ? "" : " (last transaction " + reachedTime + ")")
                                + "; promoted to timeline " + rs.getInt(3) + " in " + Sizes.seconds(System.nanoTime() - begin);
                    }
                }
            } catch (SQLException e) {
                // starting up, or recovering (hot_standby is off): not accepting connections yet
                Log.debug("prove: not accepting connections yet: %s", e.getMessage());
            }
            if (System.nanoTime() > deadline) {
                throw new CheckFailed("recovery did not finish within " + o.timeoutSeconds() + " s (setting prove-timeout); " + restored
                        + " WAL file(s) restored so far, the last " + lastRestored);
            }
            if (System.nanoTime() - lastReport > TimeUnit.SECONDS.toNanos(3)) {
                Log.info("prove: recovering: %d WAL file(s) restored from the archive so far%s, %s", restored,
                        lastRestored == null ? "" : ", the last " + lastRestored, Sizes.seconds(System.nanoTime() - begin));
                lastReport = System.nanoTime();
            }
            sleep(300);
        }
    }

    private String amcheck(String db) throws SQLException, CheckFailed {
        List<String> failures = new ArrayList<>();
        int checked = 0;
        int skipped = 0;
        try (Connection c = connect(db); Statement st = c.createStatement()) {
            st.execute("SET default_transaction_read_only = off");
            st.execute("CREATE SCHEMA IF NOT EXISTS pgproof_prove");
            st.execute("CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA pgproof_prove");
            String schema = PgConnection.queryString(c, "SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n "
                    + "ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'");
            List<long[]> oids = new ArrayList<>();
            List<String> names = new ArrayList<>();
            try (ResultSet rs = st.executeQuery("SELECT c.oid, c.oid::regclass::text, c.relpersistence = 't' OR NOT i.indisvalid OR NOT i.indisready "
                    + "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
                    + "WHERE a.amname = 'btree' ORDER BY 2")) {
                while (rs.next()) {
                    if (rs.getBoolean(3)) {
                        skipped++;
                    } else {
                        oids.add(new long[] {rs.getLong(1)});
                        names.add(rs.getString(2));
                    }
                }
            }
            for (int i = 0; i < oids.size(); i++) {
                activity = "index " + (i + 1) + " of " + oids.size() + ", " + names.get(i);
                try {
                    st.execute("SELECT " + schema + ".bt_index_check(" + oids.get(i)[0] + "::oid::regclass, true)");
                    checked++;
                } catch (SQLException e) {
                    failures.add("index " + names.get(i) + ": " + firstLine(e.getMessage()));
                }
            }
        }
        String detail = checked + " B-tree index(es) checked with bt_index_check (heapallindexed)"
                + (skipped > 0 ? ", " + skipped + " temporary or invalid skipped" : "");
        if (!failures.isEmpty()) {
            throw new CheckFailed(failures.size() + " index(es) failed: " + String.join("; ", failures.subList(0, Math.min(5, failures.size())))
                    + "; " + detail);
        }
        return detail;
    }

    private String readTables(String db) throws SQLException, CheckFailed {
        List<String> failures = new ArrayList<>();
        long rows = 0;
        long textBytes = 0;
        int read = 0;
        int temp = 0;
        int unpopulated = 0;
        int inCatalog;
        try (Connection c = connect(db); Statement st = c.createStatement()) {
            st.execute("SET enable_indexscan = off");
            st.execute("SET enable_indexonlyscan = off");
            st.execute("SET enable_bitmapscan = off");
            st.execute("SET max_parallel_workers_per_gather = 0");
            List<String[]> rels = new ArrayList<>();
            try (ResultSet rs = st.executeQuery("SELECT c.oid::regclass::text, c.relkind, c.relpersistence, c.relispopulated FROM pg_class c "
                    + "WHERE c.relkind IN ('r', 't', 'm') ORDER BY 1")) {
                while (rs.next()) {
                    rels.add(new String[] {rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4)});
                }
            }
            int k = 0;
            for (String[] r : rels) {
                k++;
                activity = "table " + k + " of " + rels.size() + ", " + r[0] + " (" + rows + " rows read so far)";
                if (r[2].equals("t")) {
                    temp++; // another session's temporary table: its file was never backed up, and nobody may read it
                    continue;
                }
                if (r[1].equals("m") && r[3].equals("f")) {
                    unpopulated++;
                    continue;
                }
                String sql = r[1].equals("t") ? "SELECT count(*), 0 FROM " + r[0]
                        : "SELECT count(*), coalesce(sum(length(x::text)), 0) FROM ONLY " + r[0] + " x";
                try (ResultSet rs = st.executeQuery(sql)) {
                    rs.next();
                    rows += rs.getLong(1);
                    textBytes += rs.getLong(2);
                    read++;
                } catch (SQLException e) {
                    failures.add("table " + r[0] + ": " + firstLine(e.getMessage()));
                }
            }
            inCatalog = Integer.parseInt(PgConnection.queryString(c, "SELECT count(*) FROM pg_class WHERE relkind IN ('r', 't', 'm')"));
            if (inCatalog != rels.size()) {
                failures.add("pg_class lists " + inCatalog + " relations with storage now, " + rels.size() + " when reading began");
            }
        }
        int accounted = read + failures.size() + temp + unpopulated;
        if (accounted != inCatalog) {
            failures.add(accounted + " relations accounted for, pg_class lists " + inCatalog);
        }
        String detail = read + " of " + inCatalog + " tables in pg_class read in full (" + rows + " rows, " + Sizes.bytes(textBytes)
                + " as text, TOAST included)" + (temp > 0 ? ", " + temp + " temporary table(s) of ended sessions skipped" : "")
                + (unpopulated > 0 ? ", " + unpopulated + " unpopulated materialized view(s) skipped" : "");
        if (!failures.isEmpty()) {
            throw new CheckFailed(failures.size() + " table(s) could not be read: " + String.join("; ", failures.subList(0, Math.min(5,
                    failures.size()))) + "; " + detail);
        }
        return detail;
    }

    private String checkQuery(CheckQueries.CheckQuery q, int timeoutSeconds) throws CheckFailed {
        try (Connection c = connect(q.database()); Statement st = c.createStatement()) {
            st.execute("SET statement_timeout = '" + timeoutSeconds + "s'");
            try (ResultSet rs = st.executeQuery(q.sql())) {
                if (!rs.next()) {
                    throw new CheckFailed("returned no row (database " + q.database() + "): " + q.sql());
                }
                int type = rs.getMetaData().getColumnType(1);
                if (type != Types.BOOLEAN && type != Types.BIT) {
                    throw new CheckFailed("returned a " + rs.getMetaData().getColumnTypeName(1) + ", not a boolean (database " + q.database() + "): "
                            + q.sql());
                }
                boolean v = rs.getBoolean(1);
                boolean isNull = rs.wasNull();
                if (rs.next()) {
                    throw new CheckFailed("returned more than one row (database " + q.database() + "): " + q.sql());
                }
                if (isNull || !v) {
                    throw new CheckFailed("returned " + (isNull ? "null" : "false") + " (database " + q.database() + "): " + q.sql());
                }
                return "returned true (database " + q.database() + "): " + q.sql();
            }
        } catch (SQLException e) {
            throw new CheckFailed("failed (database " + q.database() + "): " + firstLine(e.getMessage()) + ": " + q.sql());
        }
    }

    // ------------------------------------------------------------------ steps

    /** A check that failed, with what was found. */
    private static final class CheckFailed extends Exception {
        private static final long serialVersionUID = 1L;

        CheckFailed(String message) {
            super(message);
        }
    }

    private interface Body {
        String run() throws Exception;
    }

    /** Runs one check, narrates and records it; a failed {@code essential} check stops the proof. */
    private void step(String name, Body body, boolean essential) throws StopProof {
        Log.info("prove: %s ...", name);
        long t0 = System.nanoTime();
        activity = null;
        // restore and recovery report their own progress; every other step says every 5 s that it still runs, and on what.
        java.util.concurrent.ScheduledExecutorService heartbeat = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "prove-heartbeat");
            t.setDaemon(true);
            return t;
        });
        if (!name.equals("restore") && !name.equals("recovery")) {
            heartbeat.scheduleAtFixedRate(() -> {
                String a = activity;
                Log.info("prove: %s: still running after %s%s", name, Sizes.seconds(System.nanoTime() - t0), a == null ? "" : ", at " + a);
            }, 5, 5, TimeUnit.SECONDS);
        }
        String detail;
        boolean ok;
        try {
            detail = body.run();
            ok = true;
        } catch (CheckFailed e) {
            detail = e.getMessage();
            ok = false;
        } catch (PgproofException e) {
            if (e.exitCode() == ExitCode.INTERRUPTED) {
                throw e;
            }
            detail = e.getMessage();
            ok = false;
        } catch (SQLException e) {
            detail = "SQL error: " + firstLine(e.getMessage());
            ok = false;
        } catch (Exception e) {
            detail = e.toString();
            ok = false;
        }
        heartbeat.shutdownNow();
        double secs = (System.nanoTime() - t0) / 1e9;
        checks.add(new ProofRecord.Check(name, ok, detail, Math.round(secs * 1000) / 1000.0));
        if (ok) {
            Log.info("prove: PASS %s (%.1f s): %s", name, secs, detail);
        } else {
            Log.info("prove: FAIL %s (%.1f s): %s", name, secs, detail);
            if (essential) {
                throw new StopProof();
            }
        }
    }

    private Connection connect(String db) throws SQLException {
        return open(db, 10);
    }

    /**
     * Connects as the configured role; if the restored cluster has no such role (SQLSTATE 28000),
     * as postgres from then on.
     */
    private Connection open(String db, int timeout) throws SQLException {
        try {
            return PgConnection.open(server.endpoint(), user, timeout, db);
        } catch (SQLException e) {
            if ("28000".equals(e.getSQLState()) && !user.equals("postgres")) {
                Log.info("prove: role \"%s\" does not exist in the restored cluster (%s); connecting as postgres", user, firstLine(e.getMessage()));
                user = "postgres";
                return PgConnection.open(server.endpoint(), user, timeout, db);
            }
            throw e;
        }
    }

    private record Tool(int code, String output) {}

    /** Runs a PostgreSQL program, its output into {@code out}; a program still running after the timeout is killed. */
    private static Tool tool(List<String> cmd, Path out, int timeoutSeconds) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile());
        pb.environment().put("LC_ALL", "C");
        pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        Process p = pb.start();
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return new Tool(-1, "timed out after " + timeoutSeconds + " s");
        }
        return new Tool(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
    }

    private static String lastLines(String text, int n) {
        String[] lines = text.strip().split("\n");
        return String.join(" | ", java.util.Arrays.copyOfRange(lines, Math.max(0, lines.length - n), lines.length)).strip();
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "unknown error";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    /** Creates the scratch directory after checking there is room for the backup. */
    private Path makeScratch(Path parent, BackupManifest m) {
        try {
            Files.createDirectories(parent);
        } catch (IOException e) {
            throw new PgproofException(ExitCode.CONFIG, "cannot create prove-dir \"" + parent + "\": " + e.getMessage(),
                    "set prove-dir (--prove-dir, PGPROOF_PROVE_DIR or the configuration file) to a directory this OS user can write");
        }
        long need = m.size() + m.size() / 10 + 4L * m.walSegmentSize();
        long free;
        try {
            free = Files.getFileStore(parent).getUsableSpace();
        } catch (IOException e) {
            throw new PgproofException(ExitCode.CONFIG, "cannot read the free space of prove-dir \"" + parent + "\": " + e.getMessage(),
                    "set prove-dir to a local directory");
        }
        if (free < need) {
            throw new PgproofException(ExitCode.CONFIG, "not enough free space to prove backup " + m.label() + " of cluster \"" + layout.cluster()
                    + "\" in prove-dir \"" + parent + "\": " + Sizes.bytes(free) + " free, " + Sizes.bytes(need) + " needed (the backup's "
                    + Sizes.bytes(m.size()) + " plus 10% and 4 WAL segments)",
                    "set prove-dir (--prove-dir, PGPROOF_PROVE_DIR or the configuration file) to a file system with more room");
        }
        Log.info("prove: free space in \"%s\": %s, %s needed", parent, Sizes.bytes(free), Sizes.bytes(need));
        try {
            String base = "pgproof-prove-" + layout.cluster() + "-" + LABEL_TIME.format(Instant.now());
            for (int i = 0;; i++) {
                try {
                    return Files.createDirectory(parent.resolve(i == 0 ? base : base + "-" + i),
                            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
                } catch (java.nio.file.FileAlreadyExistsException e) {
                    // another proof started in the same second: next name
                }
            }
        } catch (IOException e) {
            throw new PgproofException(ExitCode.CONFIG, "cannot create a scratch directory in prove-dir \"" + parent + "\": " + e.getMessage(),
                    "set prove-dir (--prove-dir, PGPROOF_PROVE_DIR or the configuration file) to a directory this OS user can write");
        }
    }

    private static void deleteTree(Path p) {
        if (!Files.exists(p)) {
            return;
        }
        try (var s = Files.walk(p)) {
            for (Path x : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(x);
            }
        } catch (IOException e) {
            Log.warn("could not remove scratch directory \"%s\": %s", p, e.getMessage());
        }
    }

    private static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            String h = System.getenv("HOSTNAME");
            return h == null ? "unknown" : h;
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PgproofException(ExitCode.INTERRUPTED, "prove interrupted");
        }
    }
}
