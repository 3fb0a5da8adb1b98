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
                + "Exits 0 only after the stored file is durable (file and directory fsync'd) and read back."})
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
