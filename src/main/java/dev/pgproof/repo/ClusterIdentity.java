package dev.pgproof.repo;

/**
 * What makes a cluster that cluster: the identity pinned in the repository and checked against the
 * data directory, the server and every WAL segment.
 */
public record ClusterIdentity(long systemIdentifier, int pgVersion, int walSegmentSize, int blockSize,
        int walBlockSize, boolean dataChecksums) {

    public String systemIdentifierString() {
        return Long.toUnsignedString(systemIdentifier);
    }

    /** Short form for messages: "system identifier 7301..., PostgreSQL 15". */
    public String describe() {
        return "system identifier " + systemIdentifierString() + ", PostgreSQL " + pgVersion;
    }
}
