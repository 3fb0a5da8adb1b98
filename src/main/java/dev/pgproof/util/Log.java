package dev.pgproof.util;

import java.io.PrintStream;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;

/**
 * pgproof's output: plain lines on stderr (stdout is kept for results such as JSON). Under
 * archive_command the lines go to PostgreSQL's log, so they are short and carry no terminal codes.
 */
public final class Log {
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("HH:mm:ss");
    private static volatile boolean quiet = false;
    private static volatile boolean debug = System.getenv("PGPROOF_DEBUG") != null;
    private static volatile String prefix = "";
    private static final PrintStream ERR = System.err;
    private static final boolean TTY = System.console() != null;
    /** PGPROOF_TIMINGS set: every line starts with the seconds since the process started (JVM start-up included). */
    private static final long START_MS = System.getenv("PGPROOF_TIMINGS") == null ? -1
            : ProcessHandle.current().info().startInstant().map(java.time.Instant::toEpochMilli).orElse(System.currentTimeMillis());

    private Log() {}

    public static void setQuiet(boolean q) {
        quiet = q;
    }

    public static void setDebug(boolean d) {
        debug = d;
    }

    /** Set a prefix such as the command name, shown on every line (used under archive_command). */
    public static void setPrefix(String p) {
        prefix = p;
    }

    public static boolean isTerminal() {
        return TTY;
    }

    public static synchronized void info(String fmt, Object... args) {
        if (!quiet) {
            line(String.format(fmt, args));
        }
    }

    /** A phase mark, printed only with PGPROOF_TIMINGS set (for finding where a command's time goes). */
    public static synchronized void timing(String fmt, Object... args) {
        if (START_MS >= 0 && !quiet) {
            line("timing: " + String.format(fmt, args));
        }
    }

    public static synchronized void warn(String fmt, Object... args) {
        line("WARNING: " + String.format(fmt, args));
    }

    public static synchronized void debug(String fmt, Object... args) {
        if (debug) {
            line("DEBUG: " + String.format(fmt, args));
        }
    }

    /** Print an error's message and hints, the form every user-facing failure takes. */
    public static synchronized void error(String message, java.util.List<String> hints) {
        ERR.println("ERROR: " + message);
        for (String h : hints) {
            ERR.println("HINT: " + h);
        }
        ERR.flush();
    }

    /** A progress line: rewritten in place on a terminal, a plain line otherwise. */
    public static synchronized void progress(String text) {
        if (quiet) {
            return;
        }
        if (TTY) {
            ERR.print("\r" + prefix + text + "\u001b[K");
            ERR.flush();
        } else {
            line(text);
        }
    }

    /** End a progress line on a terminal. */
    public static synchronized void progressDone() {
        if (TTY && !quiet) {
            ERR.println();
        }
    }

    private static void line(String text) {
        if (START_MS >= 0) {
            text = String.format("[+%.3f s] ", (System.currentTimeMillis() - START_MS) / 1000.0) + text;
        }
        if (TTY) {
            ERR.println(LocalTime.now().format(TIME) + " " + prefix + text);
        } else {
            ERR.println(prefix + text);
        }
        ERR.flush();
    }
}
