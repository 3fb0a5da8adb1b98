package dev.pgproof.monitor;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/**
 * One row of {@code pgproof clusters}: a data directory found on the host, what protects it, and
 * every problem with a hint to fix it (docs/json-output.md). The verdict is {@value #PROTECTED} (covered by
 * pgproof, no problem), {@value #UNPROTECTED} (at least one problem) or {@value #IGNORED} (stopped and
 * not covered: listed, but no problem).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record ClusterStatus(
        String dataDirectory,
        Integer version,
        Integer port,
        boolean running,
        Long pid,
        String status,
        Boolean standby,
        String systemIdentifier,
        String owner,
        String debianCluster,
        List<String> foundBy,
        String pgproofCluster,
        String repository,
        Archiving archiving,
        Backup newestBackup,
        Proof newestProof,
        String verdict,
        @JsonProperty("protected") boolean isProtected,
        List<Problem> problems,
        List<String> notes) {

    public static final String PROTECTED = "protected";
    public static final String UNPROTECTED = "unprotected";
    public static final String IGNORED = "stopped-not-covered";

    /** A problem: a stable code, a one-line message naming the cluster, and hints. */
    public record Problem(String code, String message, List<String> hints) {}

    /** What the running server reports about its WAL archiving, and what its archive_command names. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Archiving(String archiveMode, String archiveCommand, String archiveLibrary, Boolean callsPgproof, String archivesAs,
            String archivesTo, Long archivedCount, String lastArchivedWal, String lastArchivedTime, Long failedCount, String lastFailedWal,
            String lastFailedTime, String currentWal, Integer readyFiles, Long oldestReadySeconds, Long pgWalBytes) {}

    /** The newest complete backup and the WAL after it. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Backup(String label, String stopTime, long ageSeconds, long maxAgeSeconds, String stopWal, String walContinuousTo,
            String walGapFirst, String walGapLast) {}

    /** The newest proof (passed or failed). */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Proof(String label, String backupLabel, String finishedAt, long ageSeconds, long maxAgeSeconds, boolean passed,
            List<String> failedChecks) {}
}
