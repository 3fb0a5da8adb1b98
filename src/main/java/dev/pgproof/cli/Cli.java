package dev.pgproof.cli;

import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The command line. archive-push and archive-get take a lean path that parses their few options by
 * hand (PostgreSQL starts them once per WAL segment); everything else, and --help, goes through
 * picocli.
 */
@Command(name = "pgproof", mixinStandardHelpOptions = true, versionProvider = Cli.Version.class,
        description = "Continuous backup for PostgreSQL that talks to the right cluster, or to none.",
        subcommands = {InitCommand.class, ArchivePushCommand.class, ArchiveGetCommand.class, AgentCommand.class, WalReceiveCommand.class, BackupCommand.class, RestoreCommand.class,
            ExpireCommand.class, InfoCommand.class, VerifyCommand.class, ProveCommand.class, ClustersCommand.class, CheckCommand.class,
            DemoCommand.class, ProbeCommand.class, CommandLine.HelpCommand.class},
        footerHeading = "%nExit codes:%n", footer = "%s")
public final class Cli implements Runnable {
    static volatile boolean finished;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(new CommandLine(this), "a command is required");
    }

    /**
     * backup and check read the repository's JSON and connect first thing after parsing: a daemon
     * thread loads Jackson, pgjdbc and junixsocket meanwhile, on a core picocli leaves idle (the
     * gain was within the noise of a shared 2-core machine; see docs/benchmarks.md). Class
     * initialisation is thread-safe; nothing here can fail the command.
     */
    private static void warmUp() {
        Thread t = new Thread(() -> {
            try {
                dev.pgproof.repo.Json.MAPPER.readTree("{\"warm\":[1]}");
            } catch (Throwable ignored) {
                // only a head start
            }
            dev.pgproof.cluster.PgConnection.preload();
        }, "warm-up");
        t.setDaemon(true);
        t.start();
    }

    /** Runs a command line and returns the exit code. */
    public static int run(String[] args) {
        Log.timing("JVM started, main entered");
        if (args.length > 0 && (args[0].equals("backup") || args[0].equals("check"))) {
            warmUp();
        }
        installInterruptHandler();
        try {
            Integer fast = fastPath(args);
            int code = fast != null ? fast : picocli(args);
            if (args.length > 0 && args[0].equals("archive-get") && code != ExitCode.OK.code && code != ExitCode.NOT_FOUND.code
                    && code <= 125) {
                // restore_command: anything but "not found" must stop recovery, never read as "not archived".
                return ExitCode.GET_FAILED.code;
            }
            return code;
        } catch (OutOfMemoryError e) {
            int code = outOfMemory(args.length > 0 ? args[0] : "");
            return args.length > 0 && args[0].equals("archive-get") ? ExitCode.GET_FAILED.code : code;
        } finally {
            finished = true;
        }
    }

    /**
     * The heap was too small: not a bug, and not a stack trace. What ran out of memory was abandoned with
     * the stack, so there is room to say so. Nothing partial is marked complete (the markers come last).
     */
    static int outOfMemory(String command) {
        long mib = Runtime.getRuntime().maxMemory() >> 20;
        List<String> hints = new ArrayList<>();
        hints.add("give the JVM more heap: PGPROOF_JAVA_OPTS=-Xmx" + Math.max(512, 2 * mib) + "m pgproof " + command + " ...");
        if (command.equals("backup") || command.equals("restore") || command.equals("verify")) {
            hints.add("or lower --jobs: each job holds its own buffers");
        }
        Log.error("pgproof " + command + " ran out of Java heap (at most " + mib + " MiB; the launcher's cap is 64 MiB + 40 MiB x "
                + "(cores + 2), at least 384 MiB)", hints);
        return ExitCode.OUT_OF_MEMORY.code;
    }

    /**
     * picocli builds every subcommand's model by reflection when the full tree is made (about 0.2 s
     * of a command's start-up here). When the first argument names a subcommand, only that one is
     * built, under a bare "pgproof" parent so that usage lines and messages read the same; "help",
     * top-level options and unknown commands get the full tree.
     */
    private static int picocli(String[] args) {
        CommandLine cl = args.length == 0 ? null : onlySubcommand(args[0]);
        if (cl == null) {
            cl = new CommandLine(new Cli());
        }
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> handle(ex, cmd.getCommandName()));
        cl.setParameterExceptionHandler((ex, a) -> {
            String name = ex.getCommandLine().getCommandName();
            Log.error(ex.getMessage(), List.of("see: pgproof " + (name.equals("pgproof") ? "" : name + " ") + "--help"));
            return ExitCode.USAGE.code;
        });
        setFooters(cl);
        return cl.execute(args);
    }

    static CommandLine onlySubcommand(String name) {
        for (Class<?> c : Cli.class.getAnnotation(Command.class).subcommands()) {
            Command a = c.getAnnotation(Command.class);
            if (c != CommandLine.HelpCommand.class && a != null && a.name().equals(name)) {
                CommandLine top = new CommandLine(CommandLine.Model.CommandSpec.create().name("pgproof"));
                top.addSubcommand(name, new CommandLine(c));
                return top;
            }
        }
        return null;
    }

    private static void setFooters(CommandLine cl) {
        String table = ExitCode.table().replace("%", "%%");
        cl.getCommandSpec().usageMessage().footer(table);
        for (CommandLine sub : cl.getSubcommands().values()) {
            sub.getCommandSpec().usageMessage().footerHeading("%nExit codes:%n").footer(table);
        }
    }

    static int handle(Exception ex, String command) {
        for (Throwable t = ex; t != null; t = t.getCause()) {
            if (t instanceof OutOfMemoryError) {   // in a worker thread, handed on wrapped
                return outOfMemory(command);
            }
        }
        if (ex instanceof PgproofException) {
            PgproofException e = (PgproofException) ex;
            if (e.exitCode() != ExitCode.NOT_FOUND || !command.equals("archive-get")) {
                Log.error(e.getMessage(), e.hints());
            } else {
                Log.info("archive-get: %s", e.getMessage());
            }
            return e.exitCode().code;
        }
        System.err.println("ERROR: internal error in pgproof " + command + " (a bug; please report it with this trace): " + ex);
        ex.printStackTrace(System.err);
        return ExitCode.INTERNAL.code; // Cli.run turns it into GET_FAILED for archive-get
    }

    /** SIGINT/SIGTERM: say so and exit with the documented code; nothing partial reads as complete. */
    private static void installInterruptHandler() {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (!finished && !dev.pgproof.cluster.Owner.delegated()) {
                System.err.println("ERROR: pgproof was interrupted by a signal; nothing unfinished was marked complete");
                System.err.flush();
                dev.pgproof.util.Cleanup.runAll();
                System.err.flush();
                Runtime.getRuntime().halt(ExitCode.INTERRUPTED.code);
            }
        }, "interrupt"));
    }

    /** The hand-parsed path for archive-push and archive-get; null means "use picocli". */
    static Integer fastPath(String[] args) {
        if (args.length == 0 || !(args[0].equals("archive-push") || args[0].equals("archive-get") || args[0].equals("_prefetch"))) {
            return null;
        }
        Map<Setting, String> flags = new EnumMap<>(Setting.class);
        String config = null;
        List<String> positional = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--") || a.equals("--")) {
                if (a.equals("--")) {
                    for (int j = i + 1; j < args.length; j++) {
                        positional.add(args[j]);
                    }
                    break;
                }
                positional.add(a);
                continue;
            }
            String name = a.substring(2);
            String value = null;
            int eq = name.indexOf('=');
            if (eq > 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            }
            Setting s = Setting.byKey(name);
            if (s == null && !name.equals("config")) {
                return null; // --help, unknown options: picocli explains
            }
            if (value == null) {
                if (i + 1 >= args.length) {
                    return null;
                }
                value = args[++i];
            }
            if (s == null) {
                config = value;
            } else {
                flags.put(s, value);
            }
        }
        String cmd = args[0];
        int want = cmd.equals("archive-get") ? 2 : 1;
        if (positional.size() != want) {
            return null;
        }
        Log.setPrefix("");
        try {
            Settings settings = Settings.load(config, flags, System.getenv());
            switch (cmd) {
                case "archive-push":
                    return WalCommands.push(settings, positional.get(0));
                case "archive-get":
                    return WalCommands.get(settings, positional.get(0), positional.get(1));
                default:
                    Log.setPrefix("prefetch[" + ProcessHandle.current().pid() + "] ");
                    return WalCommands.prefetchDaemon(settings, positional.get(0));
            }
        } catch (PgproofException e) {
            return handle(e, cmd);
        } catch (RuntimeException e) {
            return handle(e, cmd);
        }
    }

    /** --version. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Cli.class.getPackage().getImplementationVersion();
            return new String[] {"pgproof " + (v == null ? "(development build)" : v)};
        }
    }
}
