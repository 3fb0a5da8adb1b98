package dev.pgproof.repo;

import java.time.Instant;
import java.util.List;

/**
 * The verdict of one {@code pgproof prove} run, stored in the repository as one JSON object under
 * {@code <cluster>/proof/<label>.json} (see docs/repository-format.md). A proof is written once,
 * whole, after its last check; a run that dies before that leaves no proof.
 *
 * @param label          the proof's own label, {@code YYYYMMDD-HHMMSS-<backup label>}
 * @param backupLabel    the backup that was restored
 * @param systemIdentifier the identity the restored server reported
 * @param startedAt      ISO-8601 instant the run began
 * @param finishedAt     ISO-8601 instant the verdict was reached
 * @param passed         true only when every check passed
 * @param target         the recovery target asked for, as text ("end of archive", "time 2026-...")
 * @param reachedLsn     the LSN recovery reached (pg_last_wal_replay_lsn or the promoted insert LSN), or null
 * @param reachedTime    the commit timestamp of the last replayed transaction, or null
 * @param host           the host the proof ran on
 * @param checks         every check, in the order run
 */
public record ProofRecord(
        String label,
        String backupLabel,
        String systemIdentifier,
        String startedAt,
        String finishedAt,
        boolean passed,
        String target,
        String reachedLsn,
        String reachedTime,
        String host,
        List<Check> checks) {

    /** One check and its verdict; detail says what was found (counts, the failing file or query). */
    public record Check(String name, boolean passed, String detail, double seconds) {}

    public Instant finished() {
        return Instant.parse(finishedAt);
    }
}
