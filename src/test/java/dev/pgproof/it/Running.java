package dev.pgproof.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * pgproof started as the cluster owner (runuser, so no setpriv re-exec), its stderr read line
 * by line, for pause points; {@link #killTree()} SIGKILLs it and all its descendants.
 */
final class Running implements AutoCloseable {
    private final Process process;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final StringBuffer stderr = new StringBuffer();
    private final StringBuffer stdout = new StringBuffer();
    private final Thread errReader;
    private final Thread outReader;
    private volatile boolean errDone;

    private Running(List<String> cmd, Map<String, String> env, Path cwd) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().keySet().removeIf(k -> k.startsWith("PG"));
        pb.environment().putAll(env);
        pb.directory(cwd.toFile());
        pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        process = pb.start();
        errReader = reader(process.getErrorStream(), line -> {
            stderr.append(line).append('\n');
            lines.add(line);
        }, () -> errDone = true);
        outReader = reader(process.getInputStream(), line -> stdout.append(line).append('\n'), () -> { });
    }

    static Running asOwner(Path cwd, Map<String, String> env, String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        if (PgCluster.isRoot()) {
            cmd.addAll(List.of("runuser", "-u", PgCluster.TEST_USER, "--"));
        }
        cmd.addAll(Pgproof.command(args));
        return new Running(cmd, new HashMap<>(env), cwd);
    }

    private static Thread reader(InputStream in, java.util.function.Consumer<String> sink, Runnable end) {
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    sink.accept(line);
                }
            } catch (IOException ignored) {
                // the process went away
            } finally {
                end.run();
            }
        }, "faults-reader");
        t.setDaemon(true);
        t.start();
        return t;
    }

    String stderr() {
        return stderr.toString();
    }

    /** Waits for a stderr line starting with prefix; fails if the process ends or time runs out first. */
    String awaitLine(String prefix, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            String line = lines.poll(100, TimeUnit.MILLISECONDS);
            if (line != null && line.startsWith(prefix)) {
                return line;
            }
            if (line == null && errDone && lines.isEmpty()) {
                process.waitFor(10, TimeUnit.SECONDS);
                fail("pgproof ended (exit " + (process.isAlive() ? "?" : process.exitValue()) + ") before \"" + prefix + "\"\n"
                        + "--- stderr ---\n" + stderr + "--- stdout ---\n" + stdout);
            }
        }
        killTree();
        fail("no \"" + prefix + "\" from pgproof within " + timeout + "\n--- stderr ---\n" + stderr);
        return null;
    }

    /** SIGKILL to the process and every descendant (runuser, the launcher's exec'd java, ...). */
    void killTree() throws InterruptedException {
        List<ProcessHandle> tree = new ArrayList<>(process.descendants().toList());
        tree.forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly();
        for (ProcessHandle h : tree) {
            h.onExit().completeOnTimeout(h, 30, TimeUnit.SECONDS).join();
            assertThat(h.isAlive()).as("process %d after SIGKILL", h.pid()).isFalse();
        }
        assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
    }

    /**
     * SIGTERM to pgproof itself, then waits for it to end. Not to runuser: that kills its child with
     * SIGKILL two seconds after passing SIGTERM on, and exits 143 itself.
     */
    PgCluster.ProcessResult terminate(Duration timeout) throws InterruptedException {
        List<ProcessHandle> tree = process.descendants().toList();
        if (tree.isEmpty()) {
            process.destroy();
        } else {
            tree.forEach(ProcessHandle::destroy);
        }
        return waitFor(timeout);
    }

    PgCluster.ProcessResult waitFor(Duration timeout) throws InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            killTree();
            fail("pgproof did not finish within " + timeout + "\n--- stderr ---\n" + stderr);
        }
        errReader.join(10_000);
        outReader.join(10_000);
        return new PgCluster.ProcessResult(process.exitValue(), stdout.toString(), stderr.toString());
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            try {
                killTree();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
