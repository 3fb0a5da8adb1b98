package dev.pgproof.monitor;

import dev.pgproof.cluster.Discovery;
import dev.pgproof.cluster.LiveCluster;
import dev.pgproof.config.ConfigFile;
import dev.pgproof.repo.BackupCatalog;
import dev.pgproof.repo.BackupManifest;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.repo.ClusterInfo;
import dev.pgproof.repo.ProofCatalog;
import dev.pgproof.repo.ProofRecord;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.Durations;
import dev.pgproof.util.PgproofException;
import dev.pgproof.wal.WalArchive;
import dev.pgproof.wal.WalFileName;
import dev.pgproof.wal.WalRanges;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.BiFunction;

/**
 * Judges every cluster found on a host: is it covered by a pgproof section, does its server archive
 * WAL to that section's repository, is there a recent complete backup with continuous WAL after it,
 * and a recent passing proof. Each shortfall is a {@link ClusterStatus.Problem} with a hint.
 */
public final class Survey {
    /**
     * A cluster section of pgproof's configuration (or the cluster named on the command line).
     *
     * @param repo null when no repository is configured for it
     */
    public record Section(String name, Path pgdata, String repo, Duration backupMaxAge, Duration proofMaxAge) {}

    private final List<Section> sections;
    private final BiFunction<String, String, Storage> repos;
    private final String configPath;
    private final Instant now;
    private final Duration backupMaxAge;
    private final Duration proofMaxAge;

    /**
     * @param repos      opens a repository root for a cluster (its name, the root), with that cluster's settings
     *                   (an encrypted repository needs its secret); throws {@link PgproofException} when it cannot
     * @param configPath the configuration file the sections came from, for hints (null: none)
     * @param backupMaxAge the limit for clusters covered only through their archive_command
     * @param proofMaxAge  likewise
     */
    public Survey(List<Section> sections, BiFunction<String, String, Storage> repos, String configPath, Instant now, Duration backupMaxAge,
            Duration proofMaxAge) {
        this.sections = sections;
        this.repos = repos;
        this.configPath = configPath;
        this.now = now;
        this.backupMaxAge = backupMaxAge;
        this.proofMaxAge = proofMaxAge;
    }

    /** The section whose data directory is this one (by real path), or null. */
    public Section coveringSection(Path dataDirectory) {
        for (Section s : sections) {
            if (Discovery.real(s.pgdata()).equals(dataDirectory)) {
                return s;
            }
        }
        return null;
    }

    /** A name for messages: the pgproof cluster, else the postgresql-common name, else the data directory. */
    public static String displayName(Discovery.Found f, Section s) {
        if (s != null) {
            return "cluster \"" + s.name() + "\"";
        }
        if (f.debianCluster() != null) {
            return "cluster " + f.debianCluster();
        }
        if (f.dataDirectory() == null) {
            return "postmaster process " + f.pid();
        }
        return "cluster in \"" + f.dataDirectory() + "\"";
    }

    /** The name a probe logs with: the section name, the postgresql-common name, or the directory's. */
    public static String probeName(Discovery.Found f, Section s) {
        return s != null ? s.name() : f.debianCluster() != null ? f.debianCluster() : String.valueOf(f.dataDirectory());
    }

    /** Judges one cluster; {@code probe} is null when it is not running (or could not be reached at all). */
    public ClusterStatus judge(Discovery.Found f, Probe probe) {
        Section section = f.dataDirectory() == null ? null : coveringSection(f.dataDirectory());
        String who = displayName(f, section);
        List<ClusterStatus.Problem> problems = new ArrayList<>();
        List<String> notes = new ArrayList<>();
        if (f.note() != null) {
            notes.add(f.note());
        }
        String owner = null;
        String sysid = null;
        ClusterIdentity onDisk = null;
        if (f.dataDirectory() == null) {
            problems.add(problem("unreadable", who + ": its data directory cannot be read, so its protection cannot be judged",
                    "run pgproof clusters as root"));
        } else if (!f.exists()) {
            problems.add(problem("data-directory-missing", who + ": data directory \"" + f.dataDirectory() + "\" does not exist",
                    section != null ? "fix pgdata in section [" + section.name() + "]" + inConfig() + ", or remove the section"
                            : "remove the cluster's registration (pg_dropcluster) if it is gone"));
        } else if (!LiveCluster.looksLikeDataDir(f.dataDirectory())) {
            problems.add(problem("not-a-data-directory", who + ": \"" + f.dataDirectory() + "\" is not a PostgreSQL data directory (no PG_VERSION, "
                    + "no global/pg_control)", section != null ? "fix pgdata in section [" + section.name() + "]" + inConfig()
                            : "check what this directory is"));
        } else {
            try {
                owner = Files.getOwner(f.dataDirectory()).getName();
            } catch (IOException e) {
                notes.add("owner of \"" + f.dataDirectory() + "\" unknown: " + e.getMessage());
            }
            try {
                onDisk = LiveCluster.identityOf(dev.pgproof.cluster.PgControl.read(f.dataDirectory()), f.version() == null ? 0 : f.version());
                sysid = onDisk.systemIdentifierString();
            } catch (IOException | SecurityException e) {
                notes.add("system identifier unknown: " + e.getMessage() + " (run as root or as the owner)");
            }
        }
        if (section == null && onDisk != null && probe != null && probe.error() == null) {
            section = coveredByArchiveCommand(f, probe, onDisk);
            if (section != null) {
                who = displayName(f, section);
                notes.add("covered through its archive_command (cluster \"" + section.name() + "\", repository \"" + section.repo()
                        + "\" pins this system identifier); no section" + inConfig() + " names this data directory"
                        + (sectionNamed(section.name()) != null ? " (section [" + section.name() + "] names its primary's)" : ""));
            }
        }
        List<String> alsoNaming = new ArrayList<>();
        for (Section other : sections) {
            if (section != null && other != section && f.dataDirectory() != null && Discovery.real(other.pgdata()).equals(f.dataDirectory())) {
                alsoNaming.add("[" + other.name() + "]");
            }
        }
        if (!alsoNaming.isEmpty()) {
            problems.add(problem("duplicate-section", who + ": sections [" + section.name() + "] and " + String.join(", ", alsoNaming)
                    + inConfig() + " name the same data directory \"" + f.dataDirectory() + "\"; it is judged as [" + section.name() + "]",
                    "keep one section per data directory: a cluster has one name, one identity pin and one archive"));
        }
        boolean standby = "standby".equals(f.status()) || probe != null && Boolean.TRUE.equals(probe.inRecovery());
        ClusterStatus.Archiving archiving = null;
        if (probe != null && probe.error() != null) {
            // The identity check of the connection failed (exit code 5): the server found is not this data directory's.
            String code = Integer.valueOf(5).equals(probe.errorCode()) ? "identity-mismatch" : "unreachable";
            problems.add(new ClusterStatus.Problem(code, who + ": " + stripPrefix(probe.error(), who),
                    probe.errorHints() == null ? List.of() : probe.errorHints()));
        } else if (probe != null) {
            if (sysid == null) {
                sysid = probe.systemIdentifier();
            }
            archiving = archiving(probe, section, who, standby, problems, notes);
        }
        if (section == null) {
            if (f.dataDirectory() != null && f.running()) {
                String name = suggestedName(f);
                problems.add(problem("not-covered", "PostgreSQL " + (f.version() == null ? "?" : f.version()) + " cluster "
                        + (f.debianCluster() == null ? "" : f.debianCluster() + " ") + "on port " + (f.port() == null ? "?" : f.port())
                        + ", data directory \"" + f.dataDirectory() + "\", runs without pgproof: no section" + inConfig()
                        + " names its data directory, and its archive_command does not push to a pgproof repository that pins it",
                        "add a section to " + (configPath == null ? ConfigFile.DEFAULT_PATH : configPath) + ": [" + name + "] pgdata = "
                                + f.dataDirectory()
                                + ", then: pgproof init --cluster " + name + " --configure; pgproof backup --cluster " + name,
                        "to judge only the clusters configured in pgproof: pgproof clusters --configured-only"));
            } else if (f.dataDirectory() != null) {
                notes.add("stopped, and not covered by pgproof");
            }
            return status(f, standby, sysid, owner, null, null, archiving, null, null, problems, notes);
        }
        if (!f.running() && f.exists()) {
            notes.add("not running: WAL archiving cannot be checked");
        }
        ClusterStatus.Backup backup = null;
        ClusterStatus.Proof proof = null;
        if (section.repo() == null) {
            problems.add(problem("repository-not-set", who + ": no repository is configured", "set repo in section [" + section.name()
                    + "] or [global]" + inConfig()));
        } else {
            Storage storage = null;
            try {
                storage = repos.apply(section.name(), section.repo());
            } catch (PgproofException e) {
                problems.add(new ClusterStatus.Problem("repository-missing", prefixed(who, e.getMessage()), e.hints()));
            }
            if (storage != null) {
                RepoLayout layout = new RepoLayout(section.name());
                ClusterIdentity pinned = null;
                try {
                    pinned = ClusterInfo.read(storage, layout);
                } catch (PgproofException e) {
                    problems.add(new ClusterStatus.Problem("not-initialised", prefixed(who, e.getMessage()), e.hints()));
                }
                if (pinned != null && onDisk != null && (pinned.systemIdentifier() != onDisk.systemIdentifier()
                        || pinned.pgVersion() != onDisk.pgVersion())) {
                    problems.add(problem("identity-mismatch", who + ": data directory \"" + f.dataDirectory() + "\" has " + onDisk.describe()
                            + ", but repository \"" + storage.describe() + "\" pins cluster \"" + section.name() + "\" to " + pinned.describe(),
                            "pgdata of section [" + section.name() + "] names another cluster's data directory, or the cluster was "
                                    + "re-created (initdb, pg_upgrade): fix pgdata, or give the new cluster a new name: pgproof init --cluster <new name>"));
                }
                if (pinned != null) {
                    try {
                        backup = backup(storage, layout, pinned, section, who, problems);
                    } catch (IOException | RuntimeException e) {
                        problems.add(problem("repository-unreadable", who + ": cannot read the backups in repository \"" + storage.describe()
                                + "\": " + e.getMessage(), "check that the repository is mounted and readable"));
                    }
                    try {
                        proof = proof(storage, layout, section, who, problems);
                    } catch (IOException | RuntimeException e) {
                        problems.add(problem("repository-unreadable", who + ": cannot read the proofs in repository \"" + storage.describe()
                                + "\": " + e.getMessage(), "check that the repository is mounted and readable"));
                    }
                }
            }
        }
        return status(f, standby, sysid, owner, section, section.repo(), archiving, backup, proof, problems, notes);
    }

    private ClusterStatus status(Discovery.Found f, boolean standby, String sysid, String owner, Section section, String repo,
            ClusterStatus.Archiving archiving, ClusterStatus.Backup backup, ClusterStatus.Proof proof, List<ClusterStatus.Problem> problems,
            List<String> notes) {
        String verdict = !problems.isEmpty() ? ClusterStatus.UNPROTECTED : section == null ? ClusterStatus.IGNORED : ClusterStatus.PROTECTED;
        return new ClusterStatus(f.dataDirectory() == null ? null : f.dataDirectory().toString(), f.version(), f.port(), f.running(), f.pid(),
                f.status(), f.running() ? standby : null, sysid, owner, f.debianCluster(), new ArrayList<>(f.foundBy()),
                section == null ? null : section.name(), repo, archiving, backup, proof, verdict, verdict.equals(ClusterStatus.PROTECTED),
                problems, notes);
    }

    // ------------------------------------------------------------------ archiving

    private ClusterStatus.Archiving archiving(Probe p, Section section, String who, boolean standby, List<ClusterStatus.Problem> problems,
            List<String> notes) {
        ArchiveCommand ac = ArchiveCommand.parse(p.archiveCommand());
        String archivesTo = ac.callsPgproof() ? resolveRepo(ac) : null;
        ClusterStatus.Archiving a = new ClusterStatus.Archiving(p.archiveMode(), p.archiveCommand(),
                p.archiveLibrary() == null || p.archiveLibrary().isEmpty() ? null : p.archiveLibrary(), ac.callsPgproof(), ac.cluster(),
                archivesTo, p.archivedCount(), p.lastArchivedWal(), p.lastArchivedTime(), p.failedCount(), p.lastFailedWal(),
                p.lastFailedTime(), p.currentWal(), p.readyFiles(), p.oldestReadySeconds(), p.pgWalBytes());
        // Another section's name in archive_command is wrong whether or not this cluster is covered.
        Section named = ac.cluster() == null ? null : sectionNamed(ac.cluster());
        boolean otherCluster = ac.cluster() != null && (section != null ? !ac.cluster().equals(section.name()) : named != null);
        if (section == null) {
            if (otherCluster) {
                problems.add(problem("archive-command-other-cluster", who + ": archive_command archives its WAL as cluster \"" + ac.cluster()
                        + "\", which is section [" + ac.cluster() + "] for data directory \"" + named.pgdata() + "\"",
                        "give this cluster its own section and name: pgproof init --cluster <name> --configure"));
            }
            return a;
        }
        if (standby && !"always".equals(p.archiveMode())) {
            notes.add("standby: WAL is archived by its primary (archive_mode is " + p.archiveMode() + ", not always)");
            return a;
        }
        String fix = "pgproof init --cluster " + section.name() + " --configure" + (section.repo() == null ? "" : " --repo " + section.repo())
                + " sets archive_mode and archive_command";
        if ("off".equals(p.archiveMode())) {
            // With archive_mode off the server shows archive_command as "(disabled)": there is nothing more to judge.
            problems.add(problem("archive-mode-off", who + ": archive_mode is off: no WAL is archived, so no backup can be restored "
                    + "past its end", fix + "; then restart PostgreSQL"));
        } else if (a.archiveLibrary() != null) {
            problems.add(problem("archive-library", who + ": archive_library is \"" + a.archiveLibrary()
                    + "\", so archive_command (pgproof) is not used", "ALTER SYSTEM RESET archive_library; then " + fix));
        } else if (p.archiveCommand() == null || p.archiveCommand().isBlank() || p.archiveCommand().equals("(disabled)")) {
            problems.add(problem("archive-command-missing", who + ": archive_command is not set", fix));
        } else if (!ac.callsPgproof()) {
            problems.add(problem("archive-command-not-pgproof", who + ": archive_command does not call pgproof archive-push: \""
                    + p.archiveCommand() + "\"", fix));
        } else if (ac.cluster() == null) {
            problems.add(problem("archive-command-no-cluster", who + ": archive_command names no --cluster: \"" + p.archiveCommand() + "\"",
                    fix));
        } else if (otherCluster) {
            problems.add(problem("archive-command-other-cluster", who + ": archive_command archives its WAL as cluster \"" + ac.cluster()
                    + "\"" + (named != null ? " (section [" + ac.cluster() + "], data directory \"" + named.pgdata() + "\")" : "")
                    + ", not as \"" + section.name() + "\"", fix));
        } else if (archivesTo != null && section.repo() != null && !Discovery.sameRepository(archivesTo, section.repo())) {
            problems.add(problem("archive-command-other-repository", who + ": archive_command archives to repository \"" + archivesTo
                    + "\", but section [" + section.name() + "] uses repository \"" + section.repo() + "\"", fix));
        }
        if (p.failing()) {
            problems.add(problem("archive-failing", who + ": WAL archiving is failing: " + p.lastFailedWal() + " failed at "
                    + p.lastFailedTime() + " (" + p.failedCount() + " failures since statistics reset), last success "
                    + (p.lastArchivedWal() == null ? "never" : p.lastArchivedWal() + " at " + p.lastArchivedTime())
                    + (p.readyFiles() == null ? "" : ", " + p.readyFiles() + " WAL files waiting"),
                    "the server log shows archive_command's error; pgproof check --cluster " + section.name() + " tests archiving end to end"));
        }
        if (!standby && p.oldestReadySeconds() != null && p.oldestReadySeconds() > BACKLOG_SECONDS) {
            problems.add(problem("archive-backlog", who + ": " + p.readyFiles() + " WAL file" + (p.readyFiles() == null || p.readyFiles() == 1 ? "" : "s")
                    + " wait for archiving, the oldest for " + Durations.setting(Duration.ofSeconds(p.oldestReadySeconds()))
                    + (p.pgWalBytes() == null ? "" : "; pg_wal holds " + (p.pgWalBytes() >> 20) + " MiB"),
                    "PostgreSQL keeps every segment not yet archived: pg_wal grows until its file system is full and the server stops",
                    "find why archive_command is slow or failing (the server log; pgproof check" + (section == null ? "" : " --cluster "
                            + section.name()) + "), or run pgproof agent to push WAL ahead"));
        }
        return a;
    }

    /** A WAL file waiting longer than this for archive_command means archiving is falling behind. */
    static final long BACKLOG_SECONDS = 600;

    /**
     * Without a configuration section, a cluster is still covered when its archive_command pushes to a
     * pgproof cluster whose repository pins this data directory's system identifier (pgproof works
     * with no configuration file: init prints an archive_command with --cluster and --repo).
     */
    private Section coveredByArchiveCommand(Discovery.Found f, Probe probe, ClusterIdentity onDisk) {
        ArchiveCommand ac = ArchiveCommand.parse(probe.archiveCommand());
        String repo = ac.callsPgproof() ? resolveRepo(ac) : null;
        Section named = ac.cluster() == null ? null : sectionNamed(ac.cluster());
        // A section names its primary's data directory: its standby is covered by it, but another primary
        // with its system identifier (a promoted copy) archiving into it is not: two primaries would write one archive.
        if (repo == null || ac.cluster() == null || named != null && !Boolean.TRUE.equals(probe.inRecovery())) {
            return null;
        }
        try {
            ClusterIdentity pinned = ClusterInfo.read(repos.apply(ac.cluster(), repo), new RepoLayout(ac.cluster()));
            if (pinned.systemIdentifier() == onDisk.systemIdentifier()) {
                return named != null ? new Section(named.name(), f.dataDirectory(), named.repo(), named.backupMaxAge(), named.proofMaxAge())
                        : new Section(ac.cluster(), f.dataDirectory(), repo, backupMaxAge, proofMaxAge);
            }
        } catch (PgproofException e) {
            // not initialised there, or no repository: not covered
        }
        return null;
    }

    /** The repository an archive_command writes to: its --repo, else the configuration file it reads. */
    static String resolveRepo(ArchiveCommand ac) {
        if (ac.repo() != null) {
            return ac.repo();
        }
        if (ac.cluster() == null) {
            return null;
        }
        try {
            ConfigFile cf = ConfigFile.load(Path.of(ac.config() != null ? ac.config() : ConfigFile.DEFAULT_PATH), false);
            String r = cf.get(ac.cluster(), "repo");
            return r != null ? r : cf.get("global", "repo");
        } catch (PgproofException e) {
            return null;
        }
    }

    private Section sectionNamed(String name) {
        for (Section s : sections) {
            if (s.name().equals(name)) {
                return s;
            }
        }
        return null;
    }

    // ------------------------------------------------------------------ repository

    private ClusterStatus.Backup backup(Storage storage, RepoLayout layout, ClusterIdentity pinned, Section section, String who,
            List<ClusterStatus.Problem> problems) throws IOException {
        List<BackupManifest> complete = new BackupCatalog(storage, layout).complete();
        if (complete.isEmpty()) {
            problems.add(problem("no-backup", who + ": repository \"" + storage.describe() + "\" holds no complete backup of it",
                    "take one: pgproof backup --cluster " + section.name() + ", and schedule it (cron) more often than backup-max-age ("
                            + Durations.setting(section.backupMaxAge()) + ")"));
            return null;
        }
        BackupManifest m = complete.get(complete.size() - 1);
        Duration age = Duration.between(Instant.parse(m.stopTime()), now);
        if (age.compareTo(section.backupMaxAge()) > 0) {
            problems.add(problem("backup-too-old", who + ": the newest complete backup " + m.label() + " finished " + Durations.human(age)
                    + " ago, more than backup-max-age (" + Durations.setting(section.backupMaxAge()) + ")",
                    "take one: pgproof backup --cluster " + section.name() + "; check the schedule (cron) and its log"));
        }
        int seg = pinned.walSegmentSize();
        TreeMap<String, List<WalArchive.StoredWal>> all = new WalArchive(storage, layout).listAll();
        TreeSet<Long> segs = WalRanges.segments(all, seg, m.timeline());
        long start = WalFileName.segmentNumber(m.startWal(), seg);
        long stop = WalFileName.segmentNumber(m.stopWal(), seg);
        long last = segs.isEmpty() ? start - 1 : Math.max(segs.last(), stop);
        long end = start - 1;
        while (segs.contains(end + 1)) {
            end++;
        }
        int tli = WalRanges.timelines(all).isEmpty() ? m.timeline() : WalRanges.timelines(all).last();
        String gapFirst = null;
        String gapLast = null;
        if (end < last) {
            long gFirst = end + 1;
            long gLast = gFirst;
            while (gLast + 1 <= last && !segs.contains(gLast + 1)) {
                gLast++;
            }
            gapFirst = WalFileName.segmentName(tli, gFirst, seg);
            gapLast = WalFileName.segmentName(tli, gLast, seg);
            problems.add(problem("wal-gap", who + ": WAL gap after backup " + m.label() + ": " + (gLast - gFirst + 1)
                    + " segment(s) from " + gapFirst + " to " + gapLast + " are missing from repository \"" + storage.describe()
                    + "\", so a restore cannot go past " + (end >= start ? WalFileName.segmentName(tli, end, seg) : "the backup's start"),
                    "take a new backup now (pgproof backup --cluster " + section.name() + "); pgproof info --cluster " + section.name()
                            + " lists the gaps"));
        }
        return new ClusterStatus.Backup(m.label(), m.stopTime(), age.getSeconds(), section.backupMaxAge().getSeconds(), m.stopWal(),
                end >= start ? WalFileName.segmentName(tli, end, seg) : null, gapFirst, gapLast);
    }

    private ClusterStatus.Proof proof(Storage storage, RepoLayout layout, Section section, String who, List<ClusterStatus.Problem> problems)
            throws IOException {
        ProofRecord p = new ProofCatalog(storage, layout).newest().orElse(null);
        if (p == null) {
            problems.add(problem("no-proof", who + ": no backup of it has been proven to restore",
                    "prove the newest backup: pgproof prove --cluster " + section.name() + ", and schedule it more often than proof-max-age ("
                            + Durations.setting(section.proofMaxAge()) + ")"));
            return null;
        }
        Duration age = Duration.between(p.finished(), now);
        List<String> failed = new ArrayList<>();
        if (p.checks() != null) {
            for (ProofRecord.Check c : p.checks()) {
                if (!c.passed()) {
                    failed.add(c.name() + (c.detail() == null ? "" : ": " + c.detail()));
                }
            }
        }
        if (!p.passed()) {
            problems.add(problem("proof-failed", who + ": the newest proof " + p.label() + " of backup " + p.backupLabel() + " FAILED"
                    + (failed.isEmpty() ? "" : " (" + String.join("; ", failed) + ")"),
                    "the backup may not restore: take a new backup and prove it (pgproof backup, then pgproof prove --cluster "
                            + section.name() + "); the proof's record is " + storage.describe() + "/" + layout.proof(p.label())));
        } else if (age.compareTo(section.proofMaxAge()) > 0) {
            problems.add(problem("proof-too-old", who + ": the newest proof " + p.label() + " passed " + Durations.human(age)
                    + " ago, more than proof-max-age (" + Durations.setting(section.proofMaxAge()) + ")",
                    "prove the newest backup: pgproof prove --cluster " + section.name() + "; check the schedule (cron) and its log"));
        }
        return new ClusterStatus.Proof(p.label(), p.backupLabel(), p.finishedAt(), age.getSeconds(), section.proofMaxAge().getSeconds(),
                p.passed(), failed);
    }

    // ------------------------------------------------------------------ helpers

    private String inConfig() {
        return configPath == null ? " of a configuration file (there is none: " + ConfigFile.DEFAULT_PATH + " does not exist)"
                : " of \"" + configPath + "\"";
    }

    private static ClusterStatus.Problem problem(String code, String message, String... hints) {
        return new ClusterStatus.Problem(code, message, List.of(hints));
    }

    /** A message that names the cluster already keeps its own form. */
    private static String prefixed(String who, String message) {
        return message.startsWith(who) ? message : who + ": " + message;
    }

    /** Probe errors start with 'cluster "x": '; the row's own name is put in front instead. */
    private static String stripPrefix(String error, String who) {
        int i = error.indexOf("\": ");
        return error.startsWith("cluster \"") && i > 0 ? error.substring(i + 3) : error;
    }

    /** A cluster name for a hint: the Debian cluster's name, or the data directory's (its parent's for ".../data"). */
    static String suggestedName(Discovery.Found f) {
        String n;
        if (f.debianCluster() != null) {
            n = f.debianCluster().substring(f.debianCluster().indexOf('/') + 1);
        } else {
            Path d = f.dataDirectory();
            n = d.getFileName() == null ? "main" : d.getFileName().toString();
            if (n.equals("data") && d.getParent() != null && d.getParent().getFileName() != null) {
                n = d.getParent().getFileName().toString();
            }
        }
        n = n.replaceAll("[^A-Za-z0-9_.-]", "_");
        return n.isEmpty() || !Character.isLetterOrDigit(n.charAt(0)) ? "c" + n : n;
    }

    /** For the JSON document's limits. */
    public static Map<String, String> limits(Duration backupMaxAge, Duration proofMaxAge) {
        return Map.of("backupMaxAge", Durations.setting(backupMaxAge), "proofMaxAge", Durations.setting(proofMaxAge));
    }
}
