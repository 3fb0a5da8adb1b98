package dev.pgproof.cli;

import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.info.RepoInfo;
import dev.pgproof.repo.Json;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import dev.pgproof.util.Sizes;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "info", mixinStandardHelpOptions = true,
        description = {"Show what a repository holds: each cluster's identity, backups, archived WAL (with gaps) and the window a "
            + "point-in-time restore can reach. Without --cluster, every cluster in the repository. JSON: docs/json-output.md."})
final class InfoCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Option(names = "--output", paramLabel = "FORMAT", defaultValue = "text", description = "text (default) or json")
    String output;

    @Override
    public Integer call() {
        if (!output.equals("text") && !output.equals("json")) {
            throw new PgproofException(ExitCode.USAGE, "invalid --output \"" + output + "\"", "use text or json");
        }
        Settings s = common.settings();
        Context ctx = new Context(s);
        Storage storage = ctx.storage();
        List<RepoInfo> infos = new ArrayList<>();
        try {
            List<String> names = s.get(Setting.CLUSTER) != null ? List.of(s.cluster()) : RepoInfo.clusters(storage);
            for (String n : names) {
                infos.add(RepoInfo.of(storage, n));
            }
            if (output.equals("json")) {
                Map<String, Object> doc = new java.util.LinkedHashMap<>();
                doc.put("repository", storage.describe());
                doc.put("clusters", infos);
                System.out.println(Json.MAPPER.writeValueAsString(doc));
            } else {
                if (infos.isEmpty()) {
                    System.out.println("repository \"" + storage.describe() + "\" holds no cluster");
                }
                for (RepoInfo i : infos) {
                    printText(i);
                }
            }
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not read repository \"" + storage.describe() + "\": " + e.getMessage(),
                    "check that it is mounted and readable");
        }
        return 0;
    }

    private static void printText(RepoInfo i) {
        RepoInfo.Identity id = i.identity();
        System.out.printf("cluster \"%s\": system identifier %s, PostgreSQL %d, WAL segments of %s, block size %d, data checksums %s%n",
                i.name(), id.systemIdentifier(), id.pgVersion(), Sizes.bytes(id.walSegmentSize()), id.blockSize(),
                id.dataChecksums() ? "on" : "off");
        if (i.backups().isEmpty()) {
            System.out.println("  backups: none");
        } else {
            System.out.println("  backups:");
            for (RepoInfo.Backup b : i.backups()) {
                RepoInfo.PageChecksums pc = b.pageChecksums();
                System.out.printf("    %s  %s  %s to %s  LSN %s to %s (timeline %d)  %s in %d files, %s stored, page checksums %s%n", b.label(),
                        b.type(), b.startTime(), b.stopTime(), b.startLsn(), b.stopLsn(), b.timeline(), Sizes.bytes(b.size()), b.files(),
                        Sizes.bytes(b.storedSize()), pc == null ? "not verified" : pc.failed() == 0 ? "ok" : "FAILED");
                if (pc != null && pc.failed() > 0) {
                    List<String> files = new ArrayList<>();
                    for (RepoInfo.BadFile f : pc.files()) {
                        List<Long> shown = f.blocks().subList(0, Math.min(10, f.blocks().size()));
                        files.add(f.path() + " block" + (f.blocks().size() == 1 ? " " : "s ")
                                + String.join(", ", shown.stream().map(String::valueOf).toList()) + (shown.size() < f.blocks().size()
                                ? " and " + (f.blocks().size() - shown.size()) + " more" : ""));
                    }
                    System.out.printf("      PAGE CHECKSUM ERRORS: %d (%s)%n", pc.failed(), String.join("; ", files));
                }
            }
        }
        for (RepoInfo.Incomplete b : i.incompleteBackups()) {
            if (b.problem() != null && b.problem().startsWith("damaged: ")) {
                System.out.printf("    %s  DAMAGED, never used for a restore: %s%n", b.label(), b.problem().substring("damaged: ".length()));
            } else {
                System.out.printf("    %s  INCOMPLETE, never used for a restore: %s%n", b.label(), b.problem());
            }
        }
        RepoInfo.Wal w = i.wal();
        if (w.segments() == 0) {
            System.out.println("  WAL archive: empty");
        } else {
            System.out.printf("  WAL archive: %d segments, %s to %s, timelines %s%n", w.segments(), w.first(), w.last(), w.timelines());
            for (RepoInfo.Segments g : w.gaps()) {
                System.out.printf("    GAP: %s to %s missing (%d segments)%n", g.first(), g.last(), g.count());
            }
            for (String c : w.conflicting()) {
                System.out.printf("    CONFLICT: %s is stored with two different contents%n", c);
            }
        }
        if (i.streamed() != null) {
            System.out.printf("  streamed (wal-receive): segment %s being received, stored to LSN %s (%s)%n", i.streamed().segment(),
                    i.streamed().toLsn(), Sizes.bytes(i.streamed().bytes()));
        }
        RepoInfo.Proof p = i.newestProof();
        if (p == null) {
            System.out.println("  newest proof: none (run: pgproof prove --cluster " + i.name() + ")");
        } else {
            System.out.printf("  newest proof: %s  %s  backup %s, finished %s, target %s, reached LSN %s, %d checks%s%n", p.label(),
                    p.passed() ? "PASSED" : "FAILED", p.backupLabel(), p.finishedAt(), p.target(), p.reachedLsn() == null ? "-" : p.reachedLsn(),
                    p.checks(), p.failedChecks().isEmpty() ? "" : ", failed: " + String.join(", ", p.failedChecks()));
        }
        RepoInfo.Window win = i.recoveryWindow();
        if (win == null) {
            System.out.println("  point-in-time restore: not possible (no complete backup with its WAL)");
        } else {
            System.out.printf("  point-in-time restore: from %s (end of backup %s, LSN %s) to LSN %s (end of %s)%s%n", win.fromTime(),
                    win.fromBackup(), win.fromLsn(), win.toLsn(), win.toWal(),
                    win.streamedToLsn() == null ? "" : ", and on to LSN " + win.streamedToLsn() + " with the streamed partial copy");
        }
    }
}
