package dev.pgproof.cli;

import dev.pgproof.cluster.Owner;
import dev.pgproof.config.Setting;
import dev.pgproof.config.Settings;
import dev.pgproof.io.Compression;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.Log;
import dev.pgproof.util.Sizes;
import dev.pgproof.wal.ArchiveGet;
import dev.pgproof.wal.ArchivePush;
import dev.pgproof.wal.WalArchive;
import java.nio.file.Path;

/**
 * archive-push and archive-get, shared by the lean path (no picocli, no JSON library: these run
 * once per WAL segment) and the full command line.
 */
final class WalCommands {
    private WalCommands() {}

    static int push(Settings s, String walPath) {
        long t0 = System.nanoTime();
        Path file = Path.of(walPath);
        if (!file.isAbsolute()) {
            // archive_command runs in the data directory; from elsewhere, %p is taken relative to --pgdata.
            String pgdata = s.get(Setting.PGDATA);
            file = java.nio.file.Files.exists(file) || pgdata == null ? file.toAbsolutePath() : Path.of(pgdata).resolve(file).toAbsolutePath();
        }
        Owner.becomeOwnerOf(Path.of("").toAbsolutePath(), "working directory");
        Context ctx = new Context(s);
        Storage storage = ctx.storage();
        ClusterIdentity id = ctx.pinned(storage);
        Compression c = Compression.byName(s.get(Setting.COMPRESS));
        int level = s.intValue(Setting.COMPRESS_LEVEL, c.defaultLevel);
        ArchivePush.Result r = new ArchivePush(new WalArchive(storage, ctx.layout()), id, c, level).push(file);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        if (r.alreadyStored()) {
            Log.info("archive-push: %s was already stored for cluster \"%s\" with identical content (%d ms)", r.name(), ctx.layout().cluster(), ms);
        } else {
            Log.info("archive-push: stored %s for cluster \"%s\" (%s, %s stored, %d ms)", r.name(), ctx.layout().cluster(),
                    Sizes.bytes(r.size()), Sizes.bytes(r.storedSize()), ms);
        }
        return 0;
    }

    /** Failures other than NOT_FOUND become exit codes above 125 in {@link Cli#run}. */
    static int get(Settings s, String name, String dest) {
        Owner.becomeOwnerOf(Path.of("").toAbsolutePath(), "working directory");
        Context ctx = new Context(s);
        Storage storage = ctx.storage();
        ClusterIdentity id = ctx.pinned(storage);
        long t0 = System.nanoTime();
        long stored = new ArchiveGet(new WalArchive(storage, ctx.layout()), id).get(name, Path.of(dest).toAbsolutePath());
        Log.info("archive-get: restored %s for cluster \"%s\" (%s stored, %d ms)", name, ctx.layout().cluster(), Sizes.bytes(stored),
                (System.nanoTime() - t0) / 1_000_000);
        return 0;
    }
}
