package dev.pgproof.it;

import java.nio.file.Path;

/** {@link WrongCluster} with the repository in a directory. */
class WrongClusterPosixIT extends WrongCluster {
    @Override
    protected TestRepo repository(Path root) {
        return TestRepo.posix(root.resolve("repo"));
    }
}
