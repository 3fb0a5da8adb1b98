package dev.pgproof.cluster;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/**
 * The postmaster.pid file of a running server (PostgreSQL 10 and later): line 1 pid, 2 data
 * directory, 3 start time, 4 port, 5 first socket directory, 6 first listen address, 8 status.
 */
public record PostmasterPid(long pid, String dataDirectory, long startTime, int port, String socketDirectory,
        String listenAddress, String status) {

    /** Reads the file, or returns null when there is none (the server is not running). */
    public static PostmasterPid read(Path dataDir) throws IOException {
        List<String> lines;
        try {
            lines = Files.readAllLines(dataDir.resolve("postmaster.pid"));
        } catch (NoSuchFileException e) {
            return null;
        }
        if (lines.size() < 4) {
            throw new IOException("\"" + dataDir.resolve("postmaster.pid") + "\" has " + lines.size()
                    + " lines: the server is still starting");
        }
        try {
            return new PostmasterPid(Long.parseLong(lines.get(0).trim()), lines.get(1), Long.parseLong(lines.get(2).trim()),
                    Integer.parseInt(lines.get(3).trim()), lines.size() > 4 ? lines.get(4).trim() : "",
                    lines.size() > 5 ? lines.get(5).trim() : "", lines.size() > 7 ? lines.get(7).trim() : "");
        } catch (NumberFormatException e) {
            throw new IOException("\"" + dataDir.resolve("postmaster.pid") + "\" is malformed: " + e.getMessage());
        }
    }

    /** Whether the process named on line 1 exists (a crashed server leaves a stale file). */
    public boolean processAlive() {
        return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }
}
