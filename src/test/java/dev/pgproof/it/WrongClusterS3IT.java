package dev.pgproof.it;

import java.nio.file.Path;

/** {@link WrongCluster} with the repository in a bucket of s3proxy (archive_command through --config). */
class WrongClusterS3IT extends WrongCluster {
    @Override
    protected TestRepo repository(Path root) {
        return TestRepo.s3(root);
    }
}
