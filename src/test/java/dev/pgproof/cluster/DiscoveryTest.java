package dev.pgproof.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Discovery against a fake /proc and /etc/postgresql in a temporary directory (the real ones are covered by ClustersIT). */
class DiscoveryTest {
    @TempDir
    Path tmp;

    @Test
    void confLine_postgresqlConfSyntax() {
        assertThat(DiscoveryTest.line("port = 5433")).containsExactly("port", "5433");
        assertThat(DiscoveryTest.line("port=5434 # comment")).containsExactly("port", "5434");
        assertThat(DiscoveryTest.line("data_directory = '/var/lib/postgresql/15/it''s'  # quoted")).containsExactly("data_directory",
                "/var/lib/postgresql/15/it's");
        assertThat(DiscoveryTest.line("port 5435")).containsExactly("port", "5435");
        assertThat(Discovery.confLine("# port = 1")).isNull();
        assertThat(Discovery.confLine("   ")).isNull();
    }

    private static String[] line(String s) {
        return Discovery.confLine(s);
    }

    @Test
    void debianClusters_defaultsIncludeDirAndExplicitSettings() throws IOException {
        Path etc = tmp.resolve("etc");
        Path main = Files.createDirectories(etc.resolve("15/main"));
        Files.writeString(main.resolve("postgresql.conf"), "data_directory = '/srv/pg/15/main'\nport = 5432\ninclude_dir = 'conf.d'\n");
        Files.createDirectories(main.resolve("conf.d"));
        Files.writeString(main.resolve("conf.d/10-port.conf"), "port = 5440\n");
        Path reports = Files.createDirectories(etc.resolve("16/reports"));
        Files.writeString(reports.resolve("postgresql.conf"), "# nothing set: postgresql-common's defaults\n");
        Files.createDirectories(etc.resolve("16/not-a-cluster"));

        List<Discovery.DebianCluster> found = new Discovery(tmp.resolve("proc"), etc).debianClusters();

        assertThat(found).containsExactlyInAnyOrder(new Discovery.DebianCluster(15, "main", Path.of("/srv/pg/15/main"), 5440),
                new Discovery.DebianCluster(16, "reports", Path.of("/var/lib/postgresql/16/reports"), 5432));
    }

    @Test
    void postmasters_onlyProcessesWithoutAPostgresParent_dataDirectoryFromCwdOrMinusD() throws IOException {
        Path proc = tmp.resolve("proc");
        Path dataA = Files.createDirectories(tmp.resolve("a/data"));
        Path dataB = Files.createDirectories(tmp.resolve("b/data"));
        process(proc, 1, "systemd", 0, null, "/sbin/init");
        process(proc, 100, "postgres", 1, dataA, "/usr/lib/postgresql/15/bin/postgres\0-D\0" + dataA);
        process(proc, 101, "postgres", 100, dataA, "postgres: checkpointer");
        process(proc, 200, "postmaster", 1, null, "/usr/lib/postgresql/15/bin/postgres\0-D\0" + dataB + "\0-c\0config_file=/x");
        process(proc, 300, "bash", 1, null, "bash");

        List<Discovery.Postmaster> pms = new Discovery(proc, tmp.resolve("etc")).postmasters();

        Map<Long, Path> byPid = new LinkedHashMap<>();
        pms.forEach(p -> byPid.put(p.pid(), p.dataDirectory()));
        assertThat(byPid).containsOnly(Map.entry(100L, dataA), Map.entry(200L, dataB));
    }

    @Test
    void scan_deduplicatesByRealPathAndReadsPostmasterPid() throws IOException {
        Path data = Files.createDirectories(tmp.resolve("c/data"));
        Files.writeString(data.resolve("PG_VERSION"), "15\n");
        long self = ProcessHandle.current().pid();
        Files.writeString(data.resolve("postmaster.pid"), self + "\n" + data + "\n1700000000\n5499\n/tmp/sock\n*\n  1234 5678\nready   \n");
        Path link = tmp.resolve("link");
        Files.createSymbolicLink(link, data);
        Path proc = tmp.resolve("proc");
        process(proc, self, "postgres", 1, data, "postgres");
        Path gone = tmp.resolve("gone/data");

        List<Discovery.Found> found = new Discovery(proc, tmp.resolve("etc")).scan(List.of(link, gone));

        assertThat(found).hasSize(2);
        Path real = data.toRealPath();
        Discovery.Found c = found.stream().filter(f -> f.dataDirectory().equals(real)).findFirst().orElseThrow();
        assertThat(c.foundBy()).containsExactly(Discovery.PROCESS, Discovery.CONFIGURATION);
        assertThat(c.running()).isTrue();
        assertThat(c.port()).isEqualTo(5499);
        assertThat(c.version()).isEqualTo(15);
        assertThat(c.status()).isEqualTo("ready");
        assertThat(c.pid()).isEqualTo(self);
        Discovery.Found g = found.stream().filter(f -> f.dataDirectory().equals(gone)).findFirst().orElseThrow();
        assertThat(g.exists()).isFalse();
        assertThat(g.running()).isFalse();
        assertThat(g.foundBy()).containsExactly(Discovery.CONFIGURATION);
    }

    private static void process(Path proc, long pid, String comm, long ppid, Path cwd, String cmdline) throws IOException {
        Path p = Files.createDirectories(proc.resolve(Long.toString(pid)));
        Files.writeString(p.resolve("comm"), comm + "\n");
        Files.writeString(p.resolve("stat"), pid + " (" + comm + ") S " + ppid + " " + pid + " " + pid + " 0 -1\n");
        Files.writeString(p.resolve("cmdline"), cmdline + "\0");
        if (cwd != null) {
            Files.createSymbolicLink(p.resolve("cwd"), cwd);
        }
    }
}
