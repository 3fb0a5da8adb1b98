package dev.pgproof.cli;

import dev.pgproof.cluster.Discovery;
import dev.pgproof.config.ConfigFile;
import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.monitor.ClusterStatus;
import dev.pgproof.monitor.Probe;
import dev.pgproof.monitor.Survey;
import dev.pgproof.repo.Json;
import dev.pgproof.util.Durations;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "clusters", mixinStandardHelpOptions = true,
        description = {"Find every PostgreSQL cluster on this host and judge whether pgproof protects it.",
            "Finds running servers (postmaster processes and their postmaster.pid), clusters registered with postgresql-common "
                + "(/etc/postgresql/<version>/<name>) and every section of the configuration file with a pgdata; one row per data directory. "
                + "For each: version, port, data directory, system identifier, running or not, the pgproof cluster (section) that covers it, "
                + "WAL archiving (archive_mode, archive_command and pg_stat_archiver, read as the cluster owner), the newest complete backup "
                + "and the WAL after it, and the newest proof. Every problem is named with a hint. Exits 0 only when no cluster has a "
                + "problem (a stopped cluster that pgproof does not cover is listed, not judged), 14 otherwise: fit for cron or a "
                + "monitoring check. JSON: docs/json-output.md."})
final class ClustersCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Option(names = "--output", paramLabel = "FORMAT", defaultValue = "text", description = "text (default) or json")
    String output;

    @Option(names = "--configured-only", description = "only the clusters named in the configuration file (or by --cluster/--pgdata); "
            + "others running on the host are not listed")
    boolean configuredOnly;

    @Option(names = "--backup-max-age", paramLabel = "DURATION", description = "a newest complete backup older than this is a problem "
            + "(default 26h; units s, m, h, d, w) ($PGPROOF_BACKUP_MAX_AGE)")
    String backupMaxAge;

    @Option(names = "--proof-max-age", paramLabel = "DURATION", description = "a newest proof older than this is a problem "
            + "(default 8d) ($PGPROOF_PROOF_MAX_AGE)")
    String proofMaxAge;

    @Override
    public Integer call() throws Exception {
        if (!output.equals("text") && !output.equals("json")) {
            throw new PgproofException(ExitCode.USAGE, "invalid --output \"" + output + "\"", "use text or json");
        }
        Map<Setting, String> extra = new EnumMap<>(Setting.class);
        if (backupMaxAge != null) {
            extra.put(Setting.BACKUP_MAX_AGE, backupMaxAge);
        }
        if (proofMaxAge != null) {
            extra.put(Setting.PROOF_MAX_AGE, proofMaxAge);
        }
        Settings s = common.settings(extra);
        ConfigFile cf = s.configFile();
        String only = s.get(Setting.CLUSTER) == null ? null : s.cluster();
        List<Survey.Section> sections = sections(s, cf, only);
        String configPath = cf.path() == null ? null : cf.path().toString();
        Log.info("looking for PostgreSQL clusters on this host: postmaster processes, /etc/postgresql and %d configured cluster(s)%s",
                sections.size(), configPath == null ? " (no configuration file)" : " in \"" + configPath + "\"");
        // Each repository is opened with its cluster's settings: an encrypted one needs that cluster's secret.
        Survey survey = new Survey(sections, (name, repo) -> repo.startsWith("s3://") ? new Context(s.forCluster(name)).storage()
                : new Context(s.forCluster(name)).storageAt(Path.of(repo).toAbsolutePath().normalize()),
                configPath, Instant.now(), s.duration(Setting.BACKUP_MAX_AGE), s.duration(Setting.PROOF_MAX_AGE));
        List<Discovery.Found> found = new ArrayList<>();
        for (Discovery.Found f : Discovery.host().scan(sections.stream().map(Survey.Section::pgdata).toList())) {
            Survey.Section cover = f.dataDirectory() == null ? null : survey.coveringSection(f.dataDirectory());
            if ((configuredOnly || only != null) && cover == null) {
                continue;
            }
            found.add(f);
        }
        List<ClusterStatus> rows = judge(s, survey, found);
        long bad = rows.stream().filter(r -> !r.problems().isEmpty()).count();
        long ok = rows.stream().filter(ClusterStatus::isProtected).count();
        if (output.equals("json")) {
            Map<String, Object> doc = new LinkedHashMap<>();
            doc.put("host", host());
            doc.put("checkedAt", Instant.now().toString());
            doc.put("configFile", configPath);
            doc.put("protected", bad == 0);
            doc.put("clusters", rows);
            System.out.println(Json.MAPPER.writeValueAsString(doc));
        } else {
            for (ClusterStatus r : rows) {
                print(r);
            }
            System.out.printf("%d cluster(s) on %s: %d protected, %d with problems, %d stopped and not covered%n", rows.size(), host(), ok, bad,
                    rows.size() - ok - bad);
        }
        if (bad > 0) {
            Log.error(bad + " of " + rows.size() + " cluster(s) on this host are not protected (listed above with their problems)",
                    List.of("fix each problem as its hint says; pgproof check --cluster <name> tests archiving end to end"));
            return ExitCode.UNPROTECTED.code;
        }
        return 0;
    }

    /** Every section with a pgdata (or only the one named by --cluster), plus --cluster/--pgdata given without a section. */
    private static List<Survey.Section> sections(Settings s, ConfigFile cf, String only) {
        List<Survey.Section> out = new ArrayList<>();
        for (String name : cf.clusterNames()) {
            String pgdata = cf.get(name, Setting.PGDATA.key);
            if (pgdata == null || only != null && !only.equals(name)) {
                continue;
            }
            String pd = only != null && s.get(Setting.PGDATA) != null ? s.get(Setting.PGDATA) : pgdata;
            out.add(section(s.forCluster(name), name, pd));
        }
        if (only != null && out.isEmpty()) {
            out.add(section(s, only, s.require(Setting.PGDATA)));
        }
        return out;
    }

    private static Survey.Section section(Settings cs, String name, String pgdata) {
        String repo = cs.get(Setting.REPO);
        return new Survey.Section(name, Path.of(pgdata).toAbsolutePath().normalize(),
                repo == null ? null : repo.startsWith("s3://") ? repo : Path.of(repo).toAbsolutePath().normalize().toString(),
                cs.duration(Setting.BACKUP_MAX_AGE),
                cs.duration(Setting.PROOF_MAX_AGE));
    }

    /** Probes the running clusters (as their owners, a few at a time) and judges every row; keeps the order. */
    private static List<ClusterStatus> judge(Settings s, Survey survey, List<Discovery.Found> found) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(3);
        try {
            List<Future<ClusterStatus>> futures = new ArrayList<>();
            for (Discovery.Found f : found) {
                futures.add(pool.submit(() -> {
                    Survey.Section sec = f.dataDirectory() == null ? null : survey.coveringSection(f.dataDirectory());
                    Probe probe = null;
                    if (f.running() && f.dataDirectory() != null && f.exists()) {
                        Settings cs = sec == null ? null : s.forCluster(sec.name());
                        Log.info("%s: PostgreSQL %s running on port %s, data directory \"%s\": probing its archiving",
                                Survey.displayName(f, sec), f.version(), f.port(), f.dataDirectory());
                        probe = Probe.asOwner(Survey.probeName(f, sec), f.dataDirectory(), cs == null ? null : cs.get(Setting.USER),
                                (cs == null ? s : cs).intValue(Setting.CONNECT_TIMEOUT, 10));
                    }
                    return survey.judge(f, probe);
                }));
            }
            List<ClusterStatus> rows = new ArrayList<>();
            for (Future<ClusterStatus> fu : futures) {
                rows.add(fu.get());
            }
            return rows;
        } finally {
            pool.shutdownNow();
        }
    }

    private static void print(ClusterStatus r) {
        System.out.printf("%s  %s  port %s  %s  %s%n", r.verdict().toUpperCase(java.util.Locale.ROOT), r.version() == null ? "?" : r.version(),
                r.port() == null ? "?" : r.port(), r.running() ? Boolean.TRUE.equals(r.standby()) ? "running (standby)" : "running" : "stopped",
                r.dataDirectory() == null ? "(data directory unknown, postmaster " + r.pid() + ")" : r.dataDirectory());
        System.out.printf("    system identifier %s, owner %s%s, found by %s%n", r.systemIdentifier() == null ? "unknown" : r.systemIdentifier(),
                r.owner() == null ? "unknown" : r.owner(), r.debianCluster() == null ? "" : ", postgresql-common cluster " + r.debianCluster(),
                String.join(", ", r.foundBy()));
        System.out.println("    pgproof: " + (r.pgproofCluster() == null ? "not covered"
                : "cluster \"" + r.pgproofCluster() + "\", repository " + (r.repository() == null ? "not set" : "\"" + r.repository() + "\"")));
        ClusterStatus.Archiving a = r.archiving();
        if (a != null) {
            System.out.printf("    archiving: archive_mode %s, archive_command %s; last archived %s, %d failure(s)%s%s%n", a.archiveMode(),
                    Boolean.TRUE.equals(a.callsPgproof()) ? "archives as \"" + a.archivesAs() + "\" to " + (a.archivesTo() == null ? "?" : "\"" + a.archivesTo() + "\"")
                            : "off".equals(a.archiveMode()) ? "unused" : a.archiveCommand() == null || a.archiveCommand().isEmpty() ? "not set"
                            : "'" + a.archiveCommand() + "' (not pgproof)",
                    a.lastArchivedWal() == null ? "never" : a.lastArchivedWal() + " at " + a.lastArchivedTime(),
                    a.failedCount() == null ? 0 : a.failedCount(),
                    a.lastFailedWal() == null ? "" : " (last " + a.lastFailedWal() + " at " + a.lastFailedTime() + ")",
                    a.readyFiles() == null ? "" : ", " + a.readyFiles() + " waiting");
        }
        ClusterStatus.Backup b = r.newestBackup();
        if (b != null) {
            System.out.printf("    newest backup: %s, finished %s ago (limit %s); WAL continuous to %s%n", b.label(),
                    Durations.human(Duration.ofSeconds(b.ageSeconds())), Durations.setting(Duration.ofSeconds(b.maxAgeSeconds())),
                    b.walContinuousTo() == null ? "-" : b.walContinuousTo());
        }
        ClusterStatus.Proof p = r.newestProof();
        if (p != null) {
            System.out.printf("    newest proof: %s %s, %s ago (backup %s, limit %s)%n", p.label(), p.passed() ? "passed" : "FAILED",
                    Durations.human(Duration.ofSeconds(p.ageSeconds())), p.backupLabel(), Durations.setting(Duration.ofSeconds(p.maxAgeSeconds())));
        }
        for (String n : r.notes()) {
            System.out.println("    note: " + n);
        }
        for (ClusterStatus.Problem pr : r.problems()) {
            System.out.println("    PROBLEM [" + pr.code() + "]: " + pr.message());
            for (String h : pr.hints()) {
                System.out.println("      HINT: " + h);
            }
        }
    }

    private static String host() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.io.IOException e) {
            return "localhost";
        }
    }
}
