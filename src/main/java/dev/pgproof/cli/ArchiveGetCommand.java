package dev.pgproof.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(name = "archive-get", mixinStandardHelpOptions = true,
        description = {"Fetch one WAL file from the repository: the restore_command.",
            "  restore_command = 'pgproof archive-get --cluster main --repo /backup/pgproof %%f \"%%p\"'",
            "Exit 1 means the file is not in the repository (normal at the end of the archive). A corrupt file, a foreign segment or an "
                + "unreadable repository exits 200 or 201, which stops recovery instead of letting PostgreSQL promote early."})
final class ArchiveGetCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Parameters(index = "0", paramLabel = "WALNAME", description = "the WAL file name (%%f)")
    String name;

    @Parameters(index = "1", paramLabel = "DEST", description = "where to write it (%%p)")
    String dest;

    @Override
    public Integer call() {
        return WalCommands.get(common.settings(), name, dest);
    }
}
