package dev.pgproof.it;

import java.nio.file.Path;

/** {@link EndToEnd} with the repository in a directory. */
class EndToEndPosixIT extends EndToEnd {
    @Override
    protected TestRepo repository(Path root) {
        return TestRepo.posix(root.resolve("repo"));
    }
}
