package dev.pgproof;

import dev.pgproof.cli.Cli;

/** Entry point; all the work is in {@link Cli}. */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        System.exit(Cli.run(args));
    }
}
