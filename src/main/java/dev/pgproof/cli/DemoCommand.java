package dev.pgproof.cli;

import dev.pgproof.cluster.Owner;
import dev.pgproof.demo.Demo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"Show the whole loop on a throwaway cluster: archive, back up, write, drop a table, restore to the moment "
            + "before the drop, start the copy and show the table is back. Run as root, it runs as the OS user postgres."})
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--keep", description = "keep the demo directory (clusters stopped) for a look")
    boolean keep;

    @Override
    public Integer call() throws Exception {
        Owner.becomeUser("postgres");
        Path dir = Files.createTempDirectory("pgproof-demo-");
        String launcher = Context.launcher();
        return new Demo(List.of(launcher.split(" ")), dir, keep).run();
    }
}
