package dev.pgproof.cluster;

import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Commands that touch a cluster run as the owner of its data directory. Started as root, pgproof
 * runs itself again as that owner (through setpriv) and passes on its exit code.
 */
public final class Owner {
    static final String SWITCHED = "PGPROOF_SWITCHED_USER";
    private static volatile boolean delegated;

    private Owner() {}

    public static int currentUid() {
        try {
            return (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
        } catch (IOException | UnsupportedOperationException e) {
            return "root".equals(System.getProperty("user.name")) ? 0 : 1;
        }
    }

    /** Whether this process handed the command to a child running as the owner. */
    public static boolean delegated() {
        return delegated;
    }

    public static boolean isRoot() {
        return currentUid() == 0;
    }

    /** The OS user name running pgproof: the default database user. */
    public static String currentUser() {
        return System.getProperty("user.name");
    }

    /**
     * If running as root, re-runs this very command as the owner of {@code ownedPath} and exits
     * with its status. Returns normally when no switch is needed.
     */
    public static void becomeOwnerOf(Path ownedPath, String what) {
        if (!isRoot() || System.getenv(SWITCHED) != null) {
            return;
        }
        int uid;
        int gid;
        String name;
        try {
            uid = (Integer) Files.getAttribute(ownedPath, "unix:uid");
            gid = (Integer) Files.getAttribute(ownedPath, "unix:gid");
            name = Files.getOwner(ownedPath).getName();
        } catch (IOException e) {
            throw new PgproofException(ExitCode.PERMISSION, "could not find the owner of " + what + " \"" + ownedPath + "\": " + e.getMessage(),
                    "run pgproof as the cluster owner, e.g. sudo -u postgres pgproof ...");
        }
        if (uid == 0) {
            throw new PgproofException(ExitCode.PERMISSION, what + " \"" + ownedPath + "\" is owned by root; pgproof will not work on it as root",
                    "PostgreSQL data and repositories belong to the cluster owner: chown it to that user (e.g. postgres), or run pgproof as that user");
        }
        runAs(uid, gid, name, "the owner of " + what + " \"" + ownedPath + "\"");
    }

    /** If running as root, re-runs this command as the named OS user (for the demo's throwaway cluster). */
    public static void becomeUser(String name) {
        if (!isRoot() || System.getenv(SWITCHED) != null) {
            return;
        }
        try {
            for (String line : Files.readAllLines(Path.of("/etc/passwd"))) {
                String[] f = line.split(":");
                if (f.length > 3 && f[0].equals(name)) {
                    runAs(Integer.parseInt(f[2]), Integer.parseInt(f[3]), name, "an unprivileged user (PostgreSQL refuses to run as root)");
                }
            }
        } catch (IOException e) {
            // fall through to the error
        }
        throw new PgproofException(ExitCode.PERMISSION, "PostgreSQL refuses to run as root and OS user \"" + name + "\" does not exist",
                "install PostgreSQL (apt-get install postgresql-15), which creates it, or run as an unprivileged user");
    }

    /** What a pgproof child process printed on stdout, and its exit code. */
    public record ChildResult(int exitCode, String stdout) {}

    /**
     * Runs a pgproof command in a child JVM as the owner of {@code ownedPath} (root only: through
     * setpriv), e.g. to reach a cluster by peer authentication as its owner. Its stderr goes to ours,
     * its stdout is returned. Returns null when no switch is needed (not root, or owned by root).
     */
    public static ChildResult runPgproofAs(Path ownedPath, List<String> args, java.time.Duration timeout) throws IOException {
        if (!isRoot()) {
            return null;
        }
        int uid = (Integer) Files.getAttribute(ownedPath, "unix:uid");
        int gid = (Integer) Files.getAttribute(ownedPath, "unix:gid");
        if (uid == 0) {
            return null;
        }
        String name = Files.getOwner(ownedPath).getName();
        List<String> cmd = new ArrayList<>(List.of("setpriv", "--reuid=" + uid, "--regid=" + gid, "--init-groups", "--"));
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.addAll(List.of("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-XX:-UsePerfData", "-cp",
                System.getProperty("java.class.path"), "dev.pgproof.Main"));
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        pb.environment().put(SWITCHED, name);
        pb.environment().put("USER", name);
        pb.environment().put("LOGNAME", name);
        pb.directory(new java.io.File("/"));
        Process p = pb.start();
        byte[] out;
        try (java.io.InputStream in = p.getInputStream()) {
            java.util.concurrent.CompletableFuture<byte[]> f = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                try {
                    return in.readAllBytes();
                } catch (IOException e) {
                    return new byte[0];
                }
            });
            if (!p.waitFor(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                throw new IOException("pgproof " + args.get(0) + " as \"" + name + "\" did not finish within " + timeout.toSeconds() + " s");
            }
            out = f.get(10, java.util.concurrent.TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            throw new IOException("could not read the output of pgproof " + args.get(0) + " as \"" + name + "\": " + e);
        }
        return new ChildResult(p.exitValue(), new String(out, java.nio.charset.StandardCharsets.UTF_8));
    }

    private static void runAs(int uid, int gid, String name, String why) {
        ProcessHandle.Info info = ProcessHandle.current().info();
        List<String> cmd = new ArrayList<>(List.of("setpriv", "--reuid=" + uid, "--regid=" + gid, "--init-groups", "--"));
        cmd.add(info.command().orElse("java"));
        cmd.addAll(List.of(info.arguments().orElse(new String[0])));
        ProcessBuilder pb = new ProcessBuilder(cmd).inheritIO();
        pb.environment().put(SWITCHED, name);
        String home = "/";
        try {
            for (String line : Files.readAllLines(Path.of("/etc/passwd"))) {
                String[] f = line.split(":");
                if (f.length > 5 && f[0].equals(name)) {
                    home = f[5];
                }
            }
        } catch (IOException ignored) {
            // keep "/"
        }
        pb.environment().put("HOME", home);
        pb.environment().put("USER", name);
        pb.environment().put("LOGNAME", name);
        Log.info("running as %s, %s", name, why);
        delegated = true;
        try {
            Process p = pb.start();
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                if (p.isAlive()) {
                    p.destroy();
                }
            }));
            int rc = p.waitFor();
            System.exit(rc);
        } catch (IOException e) {
            throw new PgproofException(ExitCode.PERMISSION, "could not switch to user \"" + name + "\" with setpriv: " + e.getMessage(),
                    "install util-linux, or run pgproof as the cluster owner: sudo -u " + name + " pgproof ...");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            System.exit(ExitCode.INTERRUPTED.code);
        }
    }
}
