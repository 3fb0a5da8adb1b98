package dev.pgproof.cli;

import picocli.CommandLine.Option;

/** The recovery targets restore and prove share. */
final class TargetOptions {
    @Option(names = "--target-time", paramLabel = "T", description = "recover to a time: ISO 8601 with offset, or SELECT now() output; without an offset, the cluster's time zone at backup")
    String targetTime;

    @Option(names = "--target-lsn", paramLabel = "LSN", description = "recover to a WAL location, e.g. 0/3000028")
    String targetLsn;

    @Option(names = "--target-xid", paramLabel = "XID", description = "recover to a transaction id")
    String targetXid;

    @Option(names = "--target-name", paramLabel = "NAME", description = "recover to a restore point made with pg_create_restore_point()")
    String targetName;

    @Option(names = "--target-timeline", paramLabel = "TLI", description = "timeline to recover along: latest (PostgreSQL's default), current, or a "
            + "number; without it, pgproof refuses when the archive has diverging timelines (a parent that kept writing past a newer timeline's "
            + "switch point, see the README)")
    String targetTimeline;

    /** How many of the four targets are given (the timeline is not a target). */
    long count() {
        return java.util.stream.Stream.of(targetTime, targetLsn, targetXid, targetName).filter(java.util.Objects::nonNull).count();
    }
}
