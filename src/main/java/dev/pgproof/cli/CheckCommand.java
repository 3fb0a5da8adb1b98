package dev.pgproof.cli;

import dev.pgproof.cluster.LiveCluster;
import dev.pgproof.cluster.Owner;
import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.monitor.ArchiveCheck;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.Log;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

@Command(name = "check", mixinStandardHelpOptions = true,
        description = {"Test WAL archiving of a running cluster end to end.",
            "Connects with the identity checks (the server is this data directory's and the cluster pinned in the repository), confirms "
                + "that archive_mode is on and that archive_command calls pgproof archive-push for this cluster and this repository, "
                + "forces a WAL switch and waits (--archive-timeout, default 60 s) until that segment is in the repository; reports how "
                + "long it took. Fails early when the archiver has failed three times since the switch on that segment or one before it (it "
                + "archives in order), quoting pg_stat_archiver. On a "
                + "standby it checks the identity, the settings and the repository, and says that a WAL switch is only possible on the "
                + "primary."})
final class CheckCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Override
    public Integer call() {
        Settings s = common.settings();
        String cluster = s.cluster();
        Path pgdata = s.path(Setting.PGDATA);
        Owner.becomeOwnerOf(LiveCluster.realDataDir(cluster, pgdata), "data directory");
        Context ctx = new Context(s);
        Storage storage = ctx.storage();
        ClusterIdentity pinned = ctx.pinned(storage);
        int timeout = s.intValue(Setting.ARCHIVE_TIMEOUT, 60);
        try (LiveCluster lc = ctx.connect(pinned, storage.describe())) {
            ArchiveCheck.Result r = new ArchiveCheck(lc, storage, ctx.layout(), ctx.repoName(), timeout).run();
            if (r.standby()) {
                System.out.printf("check of cluster \"%s\" (standby): identity, archive settings and repository OK; no WAL switch on a standby "
                        + "(newest archived segment: %s)%n", cluster, r.newestArchived() == null ? "none" : r.newestArchived());
            } else {
                Log.info("cluster \"%s\": segment %s reached repository \"%s\" in %.1f s (%s)", cluster, r.segment(), storage.describe(),
                        r.seconds(), r.storedKey());
                System.out.printf("check of cluster \"%s\" passed: WAL segment %s archived to \"%s\" in %.1f s%n", cluster, r.segment(),
                        storage.describe(), r.seconds());
            }
        }
        return 0;
    }
}
