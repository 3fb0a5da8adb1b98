package dev.pgproof.it;

import java.nio.file.Path;

/**
 * {@link EndToEnd} with the repository in a bucket of s3proxy: archive_command and restore_command
 * reach it through --config (a 0600 file of the cluster OS user holding endpoint and keys).
 */
class EndToEndS3IT extends EndToEnd {
    @Override
    protected TestRepo repository(Path root) {
        return TestRepo.s3(root);
    }

    /** WAL through the spool on S3: push-ahead and acknowledgements, and the prefetcher in recovery. */
    @Override
    protected boolean useSpool() {
        return true;
    }

    @Override
    protected int scale() {
        return 1;
    }
}
