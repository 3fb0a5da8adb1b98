package dev.pgproof.wal;

import dev.pgproof.io.Compression;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import dev.pgproof.util.Sizes;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyDual;

/**
 * wal-receive: streams WAL from a cluster over the replication protocol through a physical slot.
 * The segment being received is kept in memory; every few seconds what has arrived is stored as a
 * partial copy ({@link StreamedWal}), and a complete segment is stored through {@link ArchivePush}
 * (same checks, no-replace, read back). The flush position reported to the server, which is what
 * advances the slot, is only ever what is durably stored, so a killed receiver loses nothing: the
 * next one starts again at the beginning of the segment that holds the slot's restart_lsn.
 */
public final class WalReceiver {
    /** Opens a replication connection to the cluster's server, after checking it is the pinned cluster. */
    public interface Connector {
        /** A replication connection (replication=true) to the cluster. */
        Connection connect();

        /** A normal connection to the same server, for moving the slot past a timeline's end. */
        default Connection connectSql() {
            throw new UnsupportedOperationException("no SQL connection");
        }
    }

    /** Settings; intervals in milliseconds, timeouts in seconds. */
    public record Options(String slot, boolean createSlot, long partialIntervalMs, long statusIntervalMs, long reportIntervalMs, int timeoutSeconds,
            int retrySeconds) {}

    private static final long PG_EPOCH_MICROS = 946_684_800_000_000L;

    private final String cluster;
    private final ClusterIdentity identity;
    private final WalArchive archive;
    private final ArchivePush push;
    private final StreamedWal streamed;
    private final Compression compression;
    private final int level;
    private final Options o;
    private final int segSize;

    private volatile boolean stop;
    private final CountDownLatch finished = new CountDownLatch(1);
    private volatile long beat = System.nanoTime();
    private volatile String phase = "starting";

    // Stream state of one session.
    private byte[] buf;
    private int timeline;
    private long segNo;
    private int len;
    private int partialLen;
    private long received;
    private long stored;
    private long serverEnd;
    private long unstoredSince;
    private boolean lastWasPartial;
    /** When streaming a timeline the server has left: the LSN where it ends (its switch point), else 0. */
    private long historicEnd;
    private boolean statusDue;
    /** Whether the current session received anything from the server (then a failure starts a new retry period). */
    private boolean progressed;

    public WalReceiver(String cluster, ClusterIdentity identity, WalArchive archive, Compression compression, int level, Options o) {
        this.cluster = cluster;
        this.identity = identity;
        this.archive = archive;
        this.compression = compression;
        this.level = level;
        this.o = o;
        this.push = new ArchivePush(archive, identity, compression, level);
        this.streamed = new StreamedWal(archive.storage(), archive.layout());
        this.segSize = identity.walSegmentSize();
    }

    /** The default slot name of a cluster: pgproof_ and the name in the characters a slot name allows. */
    public static String defaultSlot(String cluster) {
        String s = "pgproof_" + cluster.toLowerCase(java.util.Locale.ROOT).replaceAll("[^a-z0-9_]", "_");
        return s.length() > 63 ? s.substring(0, 63) : s;
    }

    /** Asks the loop to store what it has and stop; waits up to {@code timeoutMs} for it. */
    public void requestStop(long timeoutMs) {
        stop = true;
        try {
            finished.await(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Streams until stopped; reconnects after a lost connection or a server restart for up to
     * retrySeconds without a working session, then fails with exit code 4. Identity, slot and
     * repository content problems fail at once.
     */
    public void run(Connector connector) {
        startWatchdog();
        long failingSince = 0;
        String slotBusy = null;
        long backoff = 1000;
        try {
            while (!stop) {
                progressed = false;
                try {
                    beat("connecting");
                    session(connector);
                    if (stop) {
                        return;
                    }
                } catch (PgproofException e) {
                    ExitCode c = e.exitCode();
                    if (c != ExitCode.CONNECT && c != ExitCode.REPOSITORY) {
                        throw e;
                    }
                    retryNote(e.getMessage());
                } catch (SQLException | IOException e) {
                    if (stop) {
                        return;
                    }
                    if (e instanceof SQLException && "55006".equals(((SQLException) e).getSQLState())) {
                        // Another receiver, or the server process of our own previous connection that has not noticed it is gone.
                        slotBusy = firstLine(e.getMessage());
                        retryNote("replication slot \"" + o.slot() + "\" is in use (" + slotBusy + ")");
                    } else {
                        slotBusy = null;
                        retryNote((e instanceof SQLException ? "replication connection lost: " : "") + firstLine(e.getMessage()));
                    }
                }
                if (stop) {
                    return;
                }
                long now = System.nanoTime();
                if (progressed) {
                    // The connection worked before it failed: the retry limit counts from now.
                    failingSince = 0;
                    backoff = 1000;
                }
                if (failingSince == 0) {
                    failingSince = now;
                }
                if (now - failingSince > o.retrySeconds() * 1_000_000_000L && slotBusy != null) {
                    throw new PgproofException(ExitCode.LOCKED, "wal-receive for cluster \"" + cluster + "\" gave up after " + o.retrySeconds()
                            + " s: " + slotBusy, "another wal-receive (or a standby) uses replication slot \"" + o.slot()
                                    + "\"; stop it, or give this one its own --slot");
                }
                if (now - failingSince > o.retrySeconds() * 1_000_000_000L) {
                    throw new PgproofException(ExitCode.CONNECT, "wal-receive for cluster \"" + cluster + "\" gave up: no working replication "
                            + "connection for " + o.retrySeconds() + " s", "start the cluster, check pg_hba.conf (local replication) and max_wal_senders, "
                                    + "then start wal-receive again: it resumes from replication slot \"" + o.slot() + "\" without a gap");
                }
                sleep(backoff);
                backoff = Math.min(10_000, backoff * 2);
            }
        } finally {
            finished.countDown();
        }
    }

    private void retryNote(String why) {
        Log.warn("wal-receive: cluster \"%s\": %s; reconnecting (resumes from replication slot \"%s\", nothing is lost)", cluster, why, o.slot());
    }

    /** One replication connection, from its start to its end (a stop request); a failure throws. */
    private void session(Connector connector) throws SQLException, IOException {
        try (Connection conn = connector.connect()) {
            beat("identifying the server");
            long sysid;
            int serverTli;
            long xlogpos;
            try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("IDENTIFY_SYSTEM")) {
                rs.next();
                sysid = Long.parseUnsignedLong(rs.getString(1));
                serverTli = rs.getInt(2);
                xlogpos = WalFileName.parseLsn(rs.getString(3));
            }
            if (sysid != identity.systemIdentifier()) {
                throw new PgproofException(ExitCode.IDENTITY, "cluster \"" + cluster + "\": the replication connection reached system identifier "
                        + Long.toUnsignedString(sysid) + ", but the repository pins system identifier " + identity.systemIdentifierString(),
                        "the server answering on this socket is not the pinned cluster; check --pgdata and --host/--port");
            }
            long[] slot = readSlot(conn);
            if (slot == null) {
                if (!o.createSlot()) {
                    throw new PgproofException(ExitCode.CONFIG, "cluster \"" + cluster + "\": replication slot \"" + o.slot() + "\" does not exist",
                            "create it by adding --create-slot (a physical slot that keeps WAL on the server until wal-receive has stored it; "
                                    + "drop it with pg_drop_replication_slot('" + o.slot() + "') when you stop streaming for good)");
                }
                try (Statement st = conn.createStatement()) {
                    st.execute("CREATE_REPLICATION_SLOT " + o.slot() + " PHYSICAL RESERVE_WAL");
                }
                Log.info("wal-receive: cluster \"%s\": created physical replication slot \"%s\"", cluster, o.slot());
                slot = readSlot(conn);
                if (slot == null) {
                    throw new IOException("replication slot \"" + o.slot() + "\" vanished right after it was created");
                }
            }
            if (slot[0] == 0) {
                Log.warn("wal-receive: cluster \"%s\": replication slot \"%s\" has no restart_lsn (created without reserving WAL, or "
                        + "invalidated by max_slot_wal_keep_size); streaming from the server's position %s: WAL before it is only in the archive",
                        cluster, o.slot(), WalFileName.formatLsn(xlogpos));
            }
            long start = slot[0] != 0 ? slot[0] : xlogpos;
            timeline = slot[1] != 0 ? (int) slot[1] : serverTli;
            historicEnd = 0;
            if (timeline != serverTli) {
                // The server was promoted since the slot last moved: stream the rest of the slot's timeline (the
                // server ends it at the switch point), then move the slot to the switch point and go on with the next one.
                historicEnd = switchPoint(conn, serverTli, timeline, start);
                Log.info("wal-receive: cluster \"%s\": replication slot \"%s\" is on timeline %d, which the server left at %s (it is on "
                        + "timeline %d now): streaming the rest of timeline %d first", cluster, o.slot(), timeline, WalFileName.formatLsn(historicEnd),
                        serverTli, timeline);
            }
            if (timeline > 1) {
                storeHistory(conn, timeline);
            }
            segNo = WalFileName.segmentOf(start, segSize);
            long segStart = WalFileName.segmentStartLsn(segNo, segSize);
            buf = buf == null ? new byte[segSize] : buf;
            len = 0;
            partialLen = 0;
            received = segStart;
            stored = start;
            serverEnd = Math.max(xlogpos, start);
            unstoredSince = 0;
            String sql = "START_REPLICATION SLOT " + o.slot() + " PHYSICAL " + WalFileName.formatLsn(segStart) + " TIMELINE " + timeline;
            if (!oldTimelineStored()) {
                beat("starting replication");
                CopyDual copy = conn.unwrap(PGConnection.class).getCopyAPI().copyDual(sql);
                Log.info("wal-receive: cluster \"%s\": streaming from %s on timeline %d (segment %s) through slot \"%s\" (slot restart_lsn %s, server at %s)",
                        cluster, WalFileName.formatLsn(segStart), timeline, segName(), o.slot(), slot[0] == 0 ? "none" : WalFileName.formatLsn(slot[0]),
                        WalFileName.formatLsn(xlogpos));
                stream(copy); // the connection is closed without ending the copy: nothing to wait for from a server that may be gone
            }
        }
        if (oldTimelineStored()) {
            advanceSlot(connector, historicEnd);
        }
    }

    /** Whether the session streams a timeline the server has left and everything of it up to the switch point is stored. */
    private boolean oldTimelineStored() {
        return historicEnd != 0 && stored >= historicEnd;
    }

    /**
     * Where the server left {@code tli} on its way to {@code serverTli}, from the server's history
     * file; refuses a slot on a timeline that is not an ancestor of the server's.
     */
    private long switchPoint(Connection conn, int serverTli, int tli, long start) throws SQLException {
        String text;
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("TIMELINE_HISTORY " + serverTli)) {
            rs.next();
            text = new String(rs.getBytes(2), java.nio.charset.StandardCharsets.UTF_8);
        }
        for (TimelineHistory.Entry e : TimelineHistory.parse(serverTli, text)) {
            if (e.timeline() == tli) {
                return e.switchLsn();
            }
        }
        throw new PgproofException(ExitCode.CONFIG, "cluster \"" + cluster + "\": replication slot \"" + o.slot() + "\" is at "
                + WalFileName.formatLsn(start) + " on timeline " + tli + ", which is not in the history of the server's timeline " + serverTli,
                "the slot belongs to another line of history: drop it, SELECT pg_drop_replication_slot('" + o.slot()
                        + "'), and start again with pgproof wal-receive --cluster " + cluster + " --create-slot");
    }

    /**
     * Moves the slot to the switch point once everything of the old timeline before it is stored, so that
     * the server reports the slot on the next timeline (the replication connection is closed by now, so
     * the slot is free).
     */
    private void advanceSlot(Connector connector, long to) throws SQLException {
        beat("moving the slot past the end of timeline " + timeline);
        try (Connection sql = connector.connectSql();
                java.sql.PreparedStatement ps = sql.prepareStatement("SELECT end_lsn FROM pg_replication_slot_advance(?, ?::pg_lsn)")) {
            ps.setString(1, o.slot());
            ps.setString(2, WalFileName.formatLsn(to));
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                Log.info("wal-receive: cluster \"%s\": timeline %d is stored up to its end at %s; replication slot \"%s\" moved to %s, "
                        + "following the server onto the next timeline", cluster, timeline, WalFileName.formatLsn(to), o.slot(), rs.getString(1));
            }
        }
        progressed = true;
    }

    /** restart_lsn and restart_tli of the slot (0 when unset), or null when it does not exist. */
    private long[] readSlot(Connection conn) throws SQLException {
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("READ_REPLICATION_SLOT " + o.slot())) {
            if (!rs.next() || rs.getString(1) == null) {
                return null;
            }
            if (!"physical".equals(rs.getString(1))) {
                throw new PgproofException(ExitCode.CONFIG, "cluster \"" + cluster + "\": replication slot \"" + o.slot() + "\" is a "
                        + rs.getString(1) + " slot", "wal-receive needs a physical slot: give another --slot name");
            }
            String lsn = rs.getString(2);
            String tli = rs.getString(3);
            return new long[] {lsn == null ? 0 : WalFileName.parseLsn(lsn), tli == null ? 0 : Long.parseLong(tli)};
        }
    }

    /** Stores the timeline's history file (needed to restore across the switch) unless the repository has it. */
    private void storeHistory(Connection conn, int tli) throws SQLException {
        String name = String.format("%08X.history", tli);
        try {
            if (!archive.find(name).isEmpty()) {
                return;
            }
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not list repository \"" + archive.storage().describe() + "\": " + e.getMessage());
        }
        byte[] content;
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("TIMELINE_HISTORY " + tli)) {
            rs.next();
            content = rs.getBytes(2);
        }
        ArchivePush.Result r = push.push(name, content, "timeline history " + name + " from the server");
        Log.info("wal-receive: cluster \"%s\": stored %s%s", cluster, name, r.alreadyStored() ? " (already stored)" : "");
    }

    private void stream(CopyDual copy) throws SQLException, IOException {
        long lastHeard = System.nanoTime();
        long lastStatus = 0;
        long lastPartial = System.nanoTime();
        long lastReport = System.nanoTime();
        boolean pinged = false;
        sendStatus(copy, false);
        while (true) {
            beat("streaming");
            if (stop) {
                storePartial();
                sendStatus(copy, false);
                Log.info("wal-receive: cluster \"%s\": stopped; stored through %s (%s)", cluster, WalFileName.formatLsn(stored), storedWhat());
                return;
            }
            byte[] msg = copy.readFromCopy(false);
            long now = System.nanoTime();
            if (historicEnd != 0 && received >= historicEnd) {
                // All of the timeline the server left is here (it sends no more of it): store it and end this
                // session without waiting for the end of the copy.
                storePartial();
                sendStatus(copy, false);
                Log.info("wal-receive: cluster \"%s\": received timeline %d to its end at %s; stored through %s", cluster, timeline,
                        WalFileName.formatLsn(received), WalFileName.formatLsn(stored));
                return;
            }
            if (msg == null) {
                if (!copy.isActive()) {
                    storePartial();
                    throw new IOException("the server ended streaming at " + WalFileName.formatLsn(received) + " on timeline " + timeline
                            + " (a shutdown, or the end of the timeline); stored through " + WalFileName.formatLsn(stored));
                }
                if (len > partialLen && now - lastPartial >= o.partialIntervalMs() * 1_000_000L) {
                    storePartial();
                    lastPartial = System.nanoTime();
                    sendStatus(copy, false);
                    lastStatus = System.nanoTime();
                }
                if (now - lastStatus >= o.statusIntervalMs() * 1_000_000L) {
                    sendStatus(copy, false);
                    lastStatus = now;
                }
                if (now - lastReport >= o.reportIntervalMs() * 1_000_000L) {
                    report();
                    lastReport = now;
                }
                long silent = now - lastHeard;
                if (!pinged && silent > o.timeoutSeconds() * 500_000_000L) {
                    sendStatus(copy, true); // the server answers a reply request at once
                    pinged = true;
                }
                if (silent > o.timeoutSeconds() * 1_000_000_000L) {
                    throw new IOException("no message from the server for " + o.timeoutSeconds() + " s (it did not answer a reply request)");
                }
                sleep(20);
                continue;
            }
            lastHeard = now;
            pinged = false;
            progressed = true;
            ByteBuffer b = ByteBuffer.wrap(msg);
            byte type = b.get();
            if (type == 'w') {
                long start = b.getLong();
                long walEnd = b.getLong();
                b.getLong();
                if (start != received) {
                    throw new IOException("the server sent WAL at " + WalFileName.formatLsn(start) + " while " + WalFileName.formatLsn(received)
                            + " was expected");
                }
                serverEnd = Math.max(serverEnd, walEnd);
                append(msg, b.position(), msg.length - b.position());
                if (len > partialLen && System.nanoTime() - lastPartial >= o.partialIntervalMs() * 1_000_000L) {
                    storePartial();
                    lastPartial = System.nanoTime();
                    sendStatus(copy, false);
                    lastStatus = System.nanoTime();
                }
            } else if (type == 'k') {
                serverEnd = Math.max(serverEnd, b.getLong());
                b.getLong();
                boolean reply = b.get() != 0;
                if (reply) {
                    // A shutting-down server waits until what it sent is flushed: store it now.
                    storePartial();
                    sendStatus(copy, false);
                    lastStatus = System.nanoTime();
                }
            } else {
                throw new IOException("unexpected replication message type '" + (char) type + "'");
            }
            if (statusDue || System.nanoTime() - lastStatus >= o.statusIntervalMs() * 1_000_000L) {
                sendStatus(copy, false); // at once after a segment is stored: the slot moves on
                lastStatus = System.nanoTime();
            }
            if (System.nanoTime() - lastReport >= o.reportIntervalMs() * 1_000_000L) {
                report();
                lastReport = System.nanoTime();
            }
        }
    }

    private void append(byte[] data, int off, int n) throws IOException {
        while (n > 0) {
            if (unstoredSince == 0) {
                unstoredSince = System.nanoTime();
            }
            int take = Math.min(n, segSize - len);
            System.arraycopy(data, off, buf, len, take);
            len += take;
            received += take;
            off += take;
            n -= take;
            if (len == segSize) {
                completeSegment();
            }
        }
    }

    private void completeSegment() throws IOException {
        String name = segName();
        beat("storing segment " + name);
        ArchivePush.Result r = push.push(name, buf, "streamed segment " + name);
        stored = received;
        lastWasPartial = false;
        unstoredSince = 0;
        Log.info("wal-receive: cluster \"%s\": stored segment %s%s", cluster, name,
                r.alreadyStored() ? " (already in the repository with identical content)" : " (" + Sizes.bytes(r.storedSize()) + " stored)");
        beat("removing partial copies");
        for (StreamedWal.Partial p : streamed.all()) {
            if (WalFileName.timeline(p.segment()) == timeline && WalFileName.segmentNumber(p.segment(), segSize) <= segNo) {
                streamed.delete(p);
            }
        }
        segNo++;
        len = 0;
        partialLen = 0;
        statusDue = true;
    }

    private void storePartial() throws IOException {
        if (len <= partialLen || len == 0) {
            return;
        }
        String name = segName();
        beat("storing partial " + name);
        StreamedWal.Partial p = streamed.store(name, buf, len, compression, level);
        for (StreamedWal.Partial old : streamed.of(name)) {
            if (old.length() < len) {
                streamed.delete(old);
            }
        }
        partialLen = len;
        long segStart = WalFileName.segmentStartLsn(segNo, segSize);
        stored = Math.max(stored, segStart + len);
        lastWasPartial = true;
        unstoredSince = received > stored ? unstoredSince : 0;
        Log.debug("wal-receive: stored partial %s up to %s (%s)", p.key(), WalFileName.formatLsn(stored), Sizes.bytes(len));
    }

    private void sendStatus(CopyDual copy, boolean replyRequested) throws SQLException {
        ByteBuffer b = ByteBuffer.allocate(34);
        long micros = System.currentTimeMillis() * 1000L - PG_EPOCH_MICROS;
        b.put((byte) 'r').putLong(received).putLong(stored).putLong(0L).putLong(micros).put((byte) (replyRequested ? 1 : 0));
        copy.writeToCopy(b.array(), 0, b.capacity());
        copy.flushCopy();
        statusDue = false;
    }

    private void report() {
        long lag = Math.max(0, serverEnd - stored);
        double secs = unstoredSince == 0 || received <= stored ? 0 : (System.nanoTime() - unstoredSince) / 1e9;
        Log.info("wal-receive: cluster \"%s\": received %s, stored %s (%s), server at %s; lag %s, %.1f s", cluster, WalFileName.formatLsn(received),
                WalFileName.formatLsn(stored), storedWhat(), WalFileName.formatLsn(serverEnd), Sizes.bytes(lag), secs);
    }

    private String storedWhat() {
        return lastWasPartial ? "partial " + segName() : "complete segments";
    }

    private String segName() {
        return WalFileName.segmentName(timeline, segNo, segSize);
    }

    private void beat(String what) {
        phase = what;
        beat = System.nanoTime();
    }

    /** A hang is a bug: if the loop makes no progress for three timeouts, say where and exit. */
    private void startWatchdog() {
        long limit = Math.max(120, 3L * o.timeoutSeconds()) * 1_000_000_000L;
        Thread t = new Thread(() -> {
            while (finished.getCount() > 0) {
                sleep(1000);
                if (System.nanoTime() - beat > limit && finished.getCount() > 0 && !stop) {
                    Log.error("wal-receive for cluster \"" + cluster + "\" made no progress for " + limit / 1_000_000_000L + " s while " + phase,
                            List.of("exiting so that a supervisor restarts it; nothing is lost: replication slot \"" + o.slot()
                                    + "\" keeps the WAL not yet stored"));
                    System.err.flush();
                    Runtime.getRuntime().halt(ExitCode.CONNECT.code);
                }
            }
        }, "wal-receive-watchdog");
        t.setDaemon(true);
        t.start();
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "unknown error";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
