package dev.pgproof.cli;

import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.info.RepoInfo;
import dev.pgproof.repo.Json;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.Log;
import dev.pgproof.util.PgproofException;
import dev.pgproof.util.Sizes;
import dev.pgproof.verify.Problem;
import dev.pgproof.verify.Verifier;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "verify", mixinStandardHelpOptions = true,
        description = {"Judge a repository without PostgreSQL and report every problem found, not just the first.",
            "Reads every chunk of every backup (decompressed) against its size and every checksum the manifest records for it (the "
                + "SHA-256 of its blocks' hashes, its CRC-32C and XXH64; older backups: its SHA-256), and each whole file against its "
                + "CRC-32C; every archived WAL file "
                + "against the SHA-256 in its name and its page headers (pinned system identifier, page addresses matching the name, "
                + "timelines never above the name's nor decreasing); checks that WAL is continuous from each complete backup's start "
                + "to the newest segment, across timelines by their history files; reports conflicting or duplicate WAL copies, "
                + "incomplete backups and objects no manifest references. Runs in parallel (--jobs). Without --cluster, every cluster "
                + "in the repository. Exits 10 when anything is wrong."})
final class VerifyCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Option(names = "--set", paramLabel = "LABEL", description = "verify only this backup (WAL is always verified whole)")
    String set;

    @Option(names = "--output", paramLabel = "FORMAT", defaultValue = "text", description = "text (default) or json")
    String output;

    @Override
    public Integer call() {
        if (!output.equals("text") && !output.equals("json")) {
            throw new PgproofException(ExitCode.USAGE, "invalid --output \"" + output + "\"", "use text or json");
        }
        Settings s = common.settings();
        if (set != null && s.get(Setting.CLUSTER) == null) {
            throw new PgproofException(ExitCode.USAGE, "--set needs --cluster", "name the cluster the backup belongs to: --cluster NAME --set " + set);
        }
        Context ctx = new Context(s);
        Storage storage = ctx.storage();
        int jobs = s.jobs();
        List<String> names;
        try {
            names = s.get(Setting.CLUSTER) != null ? List.of(s.cluster()) : RepoInfo.clusters(storage);
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not list repository \"" + storage.describe() + "\": " + e.getMessage(),
                    "check that it is mounted and readable");
        }
        if (names.isEmpty()) {
            throw new PgproofException(ExitCode.REPOSITORY, "repository \"" + storage.describe() + "\" holds no cluster",
                    "check --repo; a cluster is added with: pgproof init --cluster <name> --pgdata <data directory>");
        }
        Log.info("verify: repository \"%s\", %d cluster(s): %s", storage.describe(), names.size(), String.join(", ", names));
        long t0 = System.nanoTime();
        List<Verifier.Result> results = new ArrayList<>();
        for (String name : names) {
            Verifier.Result r = new Verifier(storage, new RepoLayout(name), jobs, set).run();
            results.add(r);
            Log.info("verify of cluster \"%s\": %d backup(s), %d files in %d chunks, %d WAL files, %s read in %.1f s (%s): %s", name,
                    r.backups(), r.files(), r.chunks(), r.walFiles(), Sizes.bytes(r.bytes()), r.seconds(),
                    Sizes.rate(r.bytes(), (long) (r.seconds() * 1e9)), r.problems().isEmpty() ? "no problem" : r.problems().size() + " problem(s)");
        }
        long nanos = System.nanoTime() - t0;
        int problems = results.stream().mapToInt(r -> r.problems().size()).sum();
        long bytes = results.stream().mapToLong(Verifier.Result::bytes).sum();
        String summary = String.format("verified %d cluster(s): %d backup(s), %d files, %d chunks, %d WAL files, %s in %s (%s): %s",
                results.size(), results.stream().mapToInt(Verifier.Result::backups).sum(), results.stream().mapToLong(Verifier.Result::files).sum(),
                results.stream().mapToLong(Verifier.Result::chunks).sum(), results.stream().mapToLong(Verifier.Result::walFiles).sum(),
                Sizes.bytes(bytes), Sizes.seconds(nanos), Sizes.rate(bytes, nanos), problems == 0 ? "no problems" : problems + " problem(s)");
        if (output.equals("json")) {
            Map<String, Object> doc = new LinkedHashMap<>();
            doc.put("repository", storage.describe());
            doc.put("ok", problems == 0);
            doc.put("problems", problems);
            doc.put("seconds", nanos / 1e9);
            doc.put("bytes", bytes);
            doc.put("clusters", results);
            try {
                System.out.println(Json.MAPPER.writeValueAsString(doc));
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        } else {
            for (Verifier.Result r : results) {
                for (Problem p : r.problems()) {
                    System.out.printf("PROBLEM %s [%s] %s: %s%n", r.cluster(), p.kind(), p.key(), p.message());
                }
                for (String label : r.inProgress()) {
                    System.out.printf("IN PROGRESS %s backup %s: a running backup holds the cluster's lock; it is judged once complete%n",
                            r.cluster(), label);
                }
                for (Verifier.Leftover l : r.leftovers()) {
                    System.out.printf("LEFTOVER %s %s: temporary file of an interrupted write, %s, last written %s; never read, pgproof expire "
                            + "removes it%n", r.cluster(), l.key(), Sizes.bytes(l.size()), l.modified());
                }
            }
            System.out.println(summary);
        }
        System.out.flush();
        if (problems > 0) {
            List<String> hints = new ArrayList<>(List.of("each problem names the object; restore or prove another backup with --set until the damage "
                    + "is repaired, and take a new backup (pgproof backup)"));
            boolean gap = results.stream().flatMap(r -> r.problems().stream()).anyMatch(p -> p.kind().equals(Problem.Kind.WAL_GAP));
            if (gap) {
                hints.add("a WAL gap limits recovery to before it: a new backup starts a new unbroken chain; check archive_command and "
                        + "pg_stat_archiver of the cluster");
            }
            throw new PgproofException(ExitCode.CORRUPT, "verify found " + problems + " problem(s) in repository \"" + storage.describe() + "\"",
                    hints.toArray(new String[0]));
        }
        if (output.equals("json")) {
            Log.info("%s", summary); // text output has it on stdout already
        }
        return 0;
    }
}
