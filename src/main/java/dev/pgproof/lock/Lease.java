package dev.pgproof.lock;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import dev.pgproof.repo.Json;
import dev.pgproof.storage.Storage;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.UUID;

/**
 * Who holds a lock or a hold: host, process, command, start time and a lease. A lease is live while
 * its holder refreshes it; it is stale when the lease has run out, or, on the holder's own host, as
 * soon as the holder process is gone (the pid is dead or belongs to a newer process).
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record Lease(String token, String host, long pid, String pidStart, String command, String startedAt, String leaseUntil) {

    static Lease mine(String command, Duration lease) {
        ProcessHandle self = ProcessHandle.current();
        return new Lease(UUID.randomUUID().toString().substring(0, 8), hostName(), self.pid(),
                self.info().startInstant().map(Instant::toString).orElse(null), command, Instant.now().toString(),
                Instant.now().plus(lease).toString());
    }

    Lease renewed(Duration lease) {
        return new Lease(token, host, pid, pidStart, command, startedAt, Instant.now().plus(lease).toString());
    }

    /** Why this lease no longer protects anything, or empty if its holder may still be working. */
    public Optional<String> staleReason(Instant now) {
        if (host.equals(hostName())) {
            Optional<ProcessHandle> p = ProcessHandle.of(pid);
            if (p.isEmpty() || !p.get().isAlive()) {
                return Optional.of("process " + pid + " on this host is gone");
            }
            String start = p.get().info().startInstant().map(Instant::toString).orElse(null);
            if (pidStart != null && start != null && !pidStart.equals(start)) {
                return Optional.of("pid " + pid + " now belongs to another process");
            }
            return Optional.empty(); // alive here: never stolen, whatever its lease says
        }
        if (Instant.parse(leaseUntil).isBefore(now)) {
            return Optional.of("its lease ran out at " + leaseUntil + " and was not renewed");
        }
        return Optional.empty();
    }

    /** For messages: "backup (pid 123 on db1, since 2026-...)". */
    public String describe() {
        return command + " (pid " + pid + " on " + host + ", since " + startedAt + ")";
    }

    static String hostName() {
        String h = System.getenv("HOSTNAME");
        try {
            h = InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            // keep $HOSTNAME
        }
        return h == null ? "localhost" : h;
    }

    static Optional<Lease> read(Storage storage, String key) throws IOException {
        try (InputStream in = storage.open(key)) {
            return Optional.of(Json.MAPPER.readValue(in, Lease.class));
        } catch (java.nio.file.NoSuchFileException e) {
            return Optional.empty();
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new IOException("lock file " + key + " in " + storage.describe() + " is not a pgproof lock: " + e.getOriginalMessage(), e);
        }
    }

    void write(Storage storage, String key, boolean noReplace) throws IOException {
        storage.write(key, Json.MAPPER.writeValueAsBytes(this), noReplace);
    }
}
