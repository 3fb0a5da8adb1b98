package dev.pgproof.it;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The set-up most integration tests share: a local repository in the test's temporary directory
 * (the directory reachable, the repository's parent owned by the cluster OS user, so that
 * archive_command can write there), directories for the cluster owner, and clusters that archive
 * into the repository.
 */
final class LocalRepo {
    /** The temporary directory's real path. */
    final Path root;
    /** The repository, created by the first init. */
    final Path repo;

    private LocalRepo(Path root, Path repo) {
        this.root = root;
        this.repo = repo;
    }

    static LocalRepo in(Path tmp) throws IOException {
        Path root = tmp.toRealPath();
        PgCluster.makeReachable(root);
        Path parent = Files.createDirectories(root.resolve("repo"));
        PgCluster.chownToOwner(parent, false);
        return new LocalRepo(root, parent.resolve("pgproof"));
    }

    /** A directory under the root owned by the cluster OS user (restore targets, spools, work directories). */
    Path ownedDir(String name) throws IOException {
        Path d = Files.createDirectories(root.resolve(name));
        PgCluster.chownToOwner(d, false);
        return d;
    }

    /** A new cluster, started, archiving into this repository under {@code cluster}, which init has pinned to it. */
    PgCluster archivingCluster(String cluster, String name) {
        PgCluster c = PgCluster.create(root.resolve("clusters"), name, PgCluster.freePort());
        c.configure("archive_mode", "on");
        c.configure("archive_command", PgCluster.quote(Pgproof.archiveCommand(cluster, repo)));
        c.start();
        Pgproof.run("init", "--cluster", cluster, "--repo", repo.toString(), "--pgdata", c.dataDir().toString()).assertOk("init of " + name);
        return c;
    }
}
