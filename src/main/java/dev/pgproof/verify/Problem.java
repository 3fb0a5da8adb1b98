package dev.pgproof.verify;

/**
 * One thing wrong in a repository, as verify reports it.
 *
 * @param cluster the pgproof cluster name
 * @param kind    a stable short name: see {@link Kind}
 * @param key     the object key (or key prefix, for a missing WAL segment or a backup directory)
 * @param message what is wrong, in one line
 */
public record Problem(String cluster, String kind, String key, String message) {

    /** The kinds of problem, as written in the output (stable: scripts may match on them). */
    public static final class Kind {
        public static final String BACKUP_INCOMPLETE = "backup-incomplete";
        public static final String BACKUP_CORRUPT = "backup-corrupt";
        public static final String BACKUP_MISSING = "backup-missing-object";
        public static final String BACKUP_ORPHAN = "backup-orphan-object";
        public static final String BACKUP_IDENTITY = "backup-identity";
        public static final String WAL_CORRUPT = "wal-corrupt";
        public static final String WAL_HEADER = "wal-header";
        public static final String WAL_GAP = "wal-gap";
        public static final String WAL_CONFLICT = "wal-conflict";
        public static final String WAL_DUPLICATE = "wal-duplicate";
        public static final String WAL_HISTORY = "wal-history";
        /** A timeline branches off a parent that kept writing past the switch point (two servers archived under one name). */
        public static final String WAL_TIMELINE_FORK = "wal-timeline-fork";
        public static final String UNREADABLE = "unreadable";

        private Kind() {}
    }
}
