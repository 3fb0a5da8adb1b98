package dev.pgproof.wal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.io.Compression;
import dev.pgproof.repo.ClusterIdentity;
import dev.pgproof.repo.RepoLayout;
import dev.pgproof.storage.PosixStorage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The receiver's retry rules, with a connector that never reaches a server. */
class WalReceiverTest {
    @TempDir
    Path dir;

    private WalReceiver receiver(int retrySeconds) {
        return new WalReceiver("main", new ClusterIdentity(1, 15, 1 << 24, 8192, 8192, true),
                new WalArchive(new PosixStorage(dir), new RepoLayout("main")), Compression.ZSTD, 3,
                new WalReceiver.Options("pgproof_main", false, 1000, 10_000, 30_000, 60, retrySeconds));
    }

    @Test
    void anUnreachableServerIsRetriedForRetryForThenExitFour() {
        AtomicInteger attempts = new AtomicInteger();
        assertThatThrownBy(() -> receiver(2).run(() -> {
            attempts.incrementAndGet();
            throw new PgproofException(ExitCode.CONNECT, "cluster \"main\": no server is running");
        })).isInstanceOfSatisfying(PgproofException.class, e -> {
            assertThat(e.exitCode()).isEqualTo(ExitCode.CONNECT);
            assertThat(e.getMessage()).isEqualTo("wal-receive for cluster \"main\" gave up: no working replication connection for 2 s");
        });
        assertThat(attempts.get()).isGreaterThanOrEqualTo(2);
    }

    @Test
    void anIdentityMismatchIsNotRetried() {
        AtomicInteger attempts = new AtomicInteger();
        assertThatThrownBy(() -> receiver(60).run(() -> {
            attempts.incrementAndGet();
            throw new PgproofException(ExitCode.IDENTITY, "not the pinned cluster");
        })).isInstanceOfSatisfying(PgproofException.class, e -> assertThat(e.exitCode()).isEqualTo(ExitCode.IDENTITY));
        assertThat(attempts.get()).isEqualTo(1);
    }

    @Test
    void aStopRequestEndsTheRetries() throws InterruptedException {
        WalReceiver r = receiver(600);
        Thread t = new Thread(() -> r.run(() -> {
            throw new PgproofException(ExitCode.CONNECT, "no server");
        }));
        t.start();
        Thread.sleep(300);
        r.requestStop(15_000);
        t.join(15_000);
        assertThat(t.isAlive()).isFalse();
    }
}
