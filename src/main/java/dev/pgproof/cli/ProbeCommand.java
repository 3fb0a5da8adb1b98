package dev.pgproof.cli;

import dev.pgproof.monitor.Probe;
import dev.pgproof.repo.Json;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Internal: what `clusters`, started as root, runs as each cluster's owner. Prints a {@link Probe} as JSON. */
@Command(name = "_probe", hidden = true, description = "internal: probe one running cluster's archiving as its owner (JSON on stdout)")
final class ProbeCommand implements Callable<Integer> {
    @Option(names = "--name", required = true)
    String name;

    @Option(names = "--pgdata", required = true)
    String pgdata;

    @Option(names = "--user")
    String user;

    @Option(names = "--connect-timeout", defaultValue = "10")
    int connectTimeout;

    @Override
    public Integer call() throws Exception {
        Probe p = Probe.run(name, Path.of(pgdata), user != null ? user : dev.pgproof.cluster.Owner.currentUser(), connectTimeout);
        System.out.println(Json.MAPPER.writeValueAsString(p));
        return 0;
    }
}
