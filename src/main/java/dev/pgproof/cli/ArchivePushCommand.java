package dev.pgproof.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(name = "archive-push", mixinStandardHelpOptions = true,
        description = {"Store one WAL file in the repository: the archive_command.",
            "  archive_command = 'pgproof archive-push --cluster main --repo /backup/pgproof %%p'",
            "Checks a segment's page header against the cluster's pinned identity (system identifier, segment size) and stores nothing on a mismatch. "
                + "A file already stored with identical content succeeds; different content under the same name fails and the stored copy is kept. "
                + "Exits 0 only after the stored file is durable (posix: file and directory fsync'd; S3: the upload confirmed by size and SHA-256) "
                + "and read back. Any failure exits 1 to 125, so PostgreSQL keeps the segment and retries."})
final class ArchivePushCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Parameters(index = "0", paramLabel = "WALPATH", description = "the file to archive (%%p: relative to the data directory)")
    String path;

    @Override
    public Integer call() {
        return WalCommands.push(common.settings(), path);
    }
}
