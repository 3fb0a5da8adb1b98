package dev.pgproof.cluster;

/** How a server is reached: a unix socket directory, or a TCP host, and a port. */
public record Endpoint(String socketDirectory, String host, int port) {

    public boolean isSocket() {
        return socketDirectory != null;
    }

    /** For messages: 'port 5433 (socket "/run/postgresql")' or 'port 5433 on host "db1"'. */
    public String describe() {
        return isSocket() ? "port " + port + " (socket \"" + socketDirectory + "\")" : "port " + port + " on host \"" + host + "\"";
    }
}
