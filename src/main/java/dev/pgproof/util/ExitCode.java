package dev.pgproof.util;

/**
 * The stable exit codes of every pgproof command. This table is API: scripts and PostgreSQL depend on it.
 * Codes 1 to 125 are "retry later" for PostgreSQL's archiver; restore_command failures other than
 * "not found" use codes above 125 so that PostgreSQL stops recovery instead of promoting early.
 */
public enum ExitCode {
    OK(0, "success"),
    NOT_FOUND(1, "archive-get: WAL file not in the repository (normal at the end of the archive)"),
    USAGE(2, "bad command line: unknown option, missing or invalid argument"),
    CONFIG(3, "configuration error: missing or invalid setting or configuration file"),
    CONNECT(4, "the cluster could not be reached or queried"),
    IDENTITY(5, "identity mismatch: server, data directory, WAL or repository disagree"),
    REPOSITORY(6, "repository missing, not initialised, unreadable, damaged (cluster.info), full, or of unknown format"),
    WAL_REJECTED(7, "archive-push refused the file (not WAL, truncated, or differs from stored)"),
    BACKUP_FAILED(8, "backup failed; nothing was marked complete"),
    RESTORE_FAILED(9, "restore failed (no usable backup, target not empty, WAL gap, diverging timelines, bad target)"),
    CORRUPT(10, "a stored file failed its checksum or could not be decompressed; verify: the repository has a problem"),
    PERMISSION(11, "wrong OS user or permissions (could not switch to the cluster owner)"),
    INTERRUPTED(12, "interrupted by SIGINT or SIGTERM; nothing partial is marked complete"),
    PROOF_FAILED(13, "prove: a check of the restored backup failed (the failed proof is recorded)"),
    UNPROTECTED(14, "clusters: at least one cluster is not protected (each problem is listed with a hint)"),
    CHECK_FAILED(15, "check: archiving does not work (archive settings wrong, or the switched WAL segment did not reach the repository)"),
    LOCKED(16, "another pgproof command holds the cluster's lock (the message names it)"),
    PAGE_CHECKSUMS(17, "backup: complete, but pages of the cluster failed their data checksums (named on stderr and by info)"),
    OUT_OF_MEMORY(18, "the Java heap was too small for the work (the message gives the heap; raise it with PGPROOF_JAVA_OPTS)"),
    INTERNAL(70, "internal error (a bug): a stack trace is printed"),
    GET_FAILED(200, "archive-get: repository unreadable; recovery must stop (never \"not found\")"),
    GET_CORRUPT(201, "archive-get: stored file corrupt or foreign; recovery must stop");

    public final int code;
    public final String meaning;

    ExitCode(int code, String meaning) {
        this.code = code;
        this.meaning = meaning;
    }

    /** The exit code table as printed in --help and the README. */
    public static String table() {
        StringBuilder sb = new StringBuilder();
        for (ExitCode c : values()) {
            sb.append(String.format("  %3d  %s%n", c.code, c.meaning));
        }
        return sb.toString();
    }
}
