package dev.pgproof.util;

import java.util.List;

/**
 * A failure that is the user's or the environment's, not a bug: printed as one line that names what
 * failed, then HINT lines, never with a stack trace.
 */
public class PgproofException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final ExitCode exitCode;
    private final List<String> hints;

    public PgproofException(ExitCode exitCode, String message, String... hints) {
        this(exitCode, message, null, hints);
    }

    public PgproofException(ExitCode exitCode, String message, Throwable cause, String... hints) {
        super(message, cause);
        this.exitCode = exitCode;
        this.hints = List.of(hints);
    }

    public ExitCode exitCode() {
        return exitCode;
    }

    public List<String> hints() {
        return hints;
    }
}
