package dev.pgproof.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.NoSuchFileException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * The {@link Storage} contract, one set of tests every backend passes (posix: PosixStorageContractTest,
 * S3 against s3proxy: S3StorageContractIT). Each test gets an empty storage from {@link #storage()}.
 */
public abstract class StorageContract {

    /** A new, empty storage for one test. */
    protected abstract Storage storage() throws Exception;

    /** Fails if the backend holds anything half-written (temporary files, open multipart uploads). */
    protected abstract void assertNoLeftovers(Storage s) throws Exception;

    /** Whether two concurrent no-replace writes of one key with different content are decided by the backend (one wins). */
    protected boolean noReplaceIsAtomic() {
        return true;
    }

    protected static void put(Storage s, String key, byte[] content, boolean noReplace) throws Exception {
        try (Storage.Writer w = s.create(key)) {
            w.stream().write(content);
            w.commit(noReplace);
        }
    }

    protected static void put(Storage s, String key, String content, boolean noReplace) throws Exception {
        put(s, key, content.getBytes(StandardCharsets.UTF_8), noReplace);
    }

    protected static byte[] read(Storage s, String key) throws Exception {
        try (InputStream in = s.open(key)) {
            return in.readAllBytes();
        }
    }

    protected static String get(Storage s, String key) throws Exception {
        return new String(read(s, key), StandardCharsets.UTF_8);
    }

    @Test
    void writeReadListByPrefixAndDelete() throws Exception {
        Storage s = storage();
        put(s, "c/wal/a-1.zst", "one", false);
        put(s, "c/wal/a-2.zst", "two!", false);
        put(s, "c/wal/b-1.zst", "", false);
        put(s, "c/backup/x/manifest.json", "{}", false);
        put(s, "d/cluster.info", "d", false);
        assertThat(get(s, "c/wal/a-2.zst")).isEqualTo("two!");
        assertThat(get(s, "c/wal/b-1.zst")).isEmpty();
        assertThat(s.list("c/wal/a-")).extracting(Storage.ObjectInfo::key).containsExactly("c/wal/a-1.zst", "c/wal/a-2.zst");
        assertThat(s.list("c/wal/a-2")).singleElement().extracting(Storage.ObjectInfo::size).isEqualTo(4L);
        assertThat(s.list("c/")).extracting(Storage.ObjectInfo::key)
                .containsExactly("c/backup/x/manifest.json", "c/wal/a-1.zst", "c/wal/a-2.zst", "c/wal/b-1.zst");
        assertThat(s.list("")).hasSize(5);
        assertThat(s.listPrefixes("")).containsExactly("c/", "d/");
        assertThat(s.listPrefixes("c/")).containsExactly("c/backup/", "c/wal/");
        assertThat(s.exists("c/wal/a-1.zst")).isTrue();
        // replace without no-replace
        put(s, "c/wal/a-1.zst", "uno", false);
        assertThat(get(s, "c/wal/a-1.zst")).isEqualTo("uno");
        s.delete("c/wal/a-1.zst");
        s.delete("c/wal/a-1.zst");
        assertThat(s.exists("c/wal/a-1.zst")).isFalse();
        assertThat(s.list("c/wal/a-")).extracting(Storage.ObjectInfo::key).containsExactly("c/wal/a-2.zst");
        assertNoLeftovers(s);
    }

    @Test
    void missingObjects() throws Exception {
        Storage s = storage();
        assertThatThrownBy(() -> s.open("no/such/key")).isInstanceOf(NoSuchFileException.class);
        assertThat(s.exists("no/such/key")).isFalse();
        assertThat(s.list("no/such/")).isEmpty();
        assertThat(s.listPrefixes("no/")).isEmpty();
        s.delete("no/such/key");
    }

    @Test
    void noReplaceKeepsTheStoredObject() throws Exception {
        Storage s = storage();
        put(s, "k/obj", "first", true);
        assertThatThrownBy(() -> put(s, "k/obj", "second", true)).isInstanceOf(FileAlreadyExistsException.class);
        assertThat(get(s, "k/obj")).isEqualTo("first");
        assertNoLeftovers(s);
    }

    @Test
    void largeObjectIsReadBackByteForByte() throws Exception {
        Storage s = storage();
        byte[] data = new byte[40 << 20];
        new Random(42).nextBytes(data);
        try (Storage.Writer w = s.create("big/object")) {
            for (int off = 0; off < data.length; off += 1_000_003) { // odd write sizes
                w.stream().write(data, off, Math.min(1_000_003, data.length - off));
            }
            w.commit(true);
        }
        assertThat(s.list("big/")).singleElement().extracting(Storage.ObjectInfo::size).isEqualTo((long) data.length);
        assertThat(read(s, "big/object")).isEqualTo(data);
        assertNoLeftovers(s);
    }

    @Test
    void aReaderReadingOneByteAtATimeSeesEveryByte() throws Exception {
        Storage s = storage();
        byte[] data = new byte[200_000];
        new Random(7).nextBytes(data);
        put(s, "one/byte", data, false);
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        try (InputStream in = s.open("one/byte")) {
            int b;
            while ((b = in.read()) >= 0) {
                got.write(b);
            }
        }
        assertThat(got.toByteArray()).isEqualTo(data);
    }

    @Test
    void concurrentWritersToDifferentKeys() throws Exception {
        Storage s = storage();
        int n = 8;
        List<Callable<Void>> jobs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int id = i;
            jobs.add(() -> {
                byte[] data = new byte[300_000 + id];
                new Random(id).nextBytes(data);
                put(s, "par/k" + id, data, true);
                return null;
            });
        }
        runAll(jobs);
        assertThat(s.list("par/")).hasSize(n);
        for (int i = 0; i < n; i++) {
            byte[] data = new byte[300_000 + i];
            new Random(i).nextBytes(data);
            assertThat(read(s, "par/k" + i)).isEqualTo(data);
        }
        assertNoLeftovers(s);
    }

    @Test
    void concurrentNoReplaceWritersOfOneKey() throws Exception {
        Storage s = storage();
        int n = 6;
        List<Callable<Void>> jobs = new ArrayList<>();
        List<String> winners = java.util.Collections.synchronizedList(new ArrayList<>());
        for (int i = 0; i < n; i++) {
            String content = "writer " + i + " ".repeat(1000 * i);
            jobs.add(() -> {
                try {
                    put(s, "same/key", content, true);
                    winners.add(content);
                } catch (FileAlreadyExistsException e) {
                    // lost the race: the stored object is someone else's
                }
                return null;
            });
        }
        runAll(jobs);
        String stored = get(s, "same/key");
        assertThat(winners).as("writers that reported success").isNotEmpty().contains(stored);
        if (noReplaceIsAtomic()) {
            assertThat(winners).as("exactly one no-replace writer wins").hasSize(1);
        }
        // Identical content from several writers: each either succeeds or finds it stored; the content is that.
        jobs.clear();
        for (int i = 0; i < n; i++) {
            jobs.add(() -> {
                try {
                    put(s, "same/identical", "the same bytes", true);
                } catch (FileAlreadyExistsException e) {
                    // stored by another writer
                }
                return null;
            });
        }
        runAll(jobs);
        assertThat(get(s, "same/identical")).isEqualTo("the same bytes");
        assertNoLeftovers(s);
    }

    @Test
    void abandonedWritesLeaveNothingThatReadsAsComplete() throws Exception {
        Storage s = storage();
        byte[] big = new byte[20 << 20];
        new Random(3).nextBytes(big);
        try (Storage.Writer w = s.create("half/small")) {
            w.stream().write(big, 0, 100_000);
            w.stream().flush();
            assertThat(s.list("half/")).isEmpty();
        }
        try (Storage.Writer w = s.create("half/large")) {
            w.stream().write(big);
            w.stream().flush();
            assertThat(s.list("half/")).isEmpty();
        }
        assertThat(s.exists("half/small")).isFalse();
        assertThat(s.exists("half/large")).isFalse();
        assertThatThrownBy(() -> s.open("half/large")).isInstanceOf(NoSuchFileException.class);
        assertThat(s.list("")).isEmpty();
        assertNoLeftovers(s);
    }

    /**
     * A batch (a backup's data objects): many objects from several writers, one of them over an object an interrupted
     * run left under its key, one adopted as it is, one abandoned; after sync every committed object reads back whole,
     * the abandoned one is gone, and nothing half-written remains.
     */
    @Test
    void aBatchMakesEveryCommittedObjectWholeAndAnAbandonedOneLeavesNothing() throws Exception {
        Storage s = storage();
        put(s, "batch/b/left-over", "what an interrupted run left, longer than what replaces it", false);
        put(s, "batch/b/adopted", "kept as it is", false);
        int n = 150;
        try (Storage.Batch b = s.batch()) {
            List<Callable<Void>> jobs = new ArrayList<>();
            for (int t = 0; t < 3; t++) {
                int first = t;
                jobs.add(() -> {
                    for (int i = first; i < n; i += 3) {
                        byte[] data = new byte[1000 + 37 * i];
                        new Random(i).nextBytes(data);
                        b.write("batch/b/d" + (i % 7) + "/o" + i, data);
                    }
                    return null;
                });
            }
            runAll(jobs);
            b.write("batch/b/left-over", "replaced".getBytes(StandardCharsets.UTF_8));
            b.adopt("batch/b/adopted");
            try (Storage.Writer w = b.create("batch/b/abandoned")) {
                w.stream().write(new byte[70_000]);
                w.stream().flush();
            }
            b.sync();
        }
        assertThat(s.list("batch/b/")).hasSize(n + 2);
        for (int i = 0; i < n; i++) {
            byte[] data = new byte[1000 + 37 * i];
            new Random(i).nextBytes(data);
            assertThat(read(s, "batch/b/d" + (i % 7) + "/o" + i)).as("object %d", i).isEqualTo(data);
        }
        assertThat(get(s, "batch/b/left-over")).isEqualTo("replaced");
        assertThat(get(s, "batch/b/adopted")).isEqualTo("kept as it is");
        assertThat(s.exists("batch/b/abandoned")).isFalse();
        assertNoLeftovers(s);
    }

    @Test
    void keysCannotEscapeTheRoot() throws Exception {
        Storage s = storage();
        assertThatThrownBy(() -> s.create("../outside")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> s.open("/etc/passwd")).isInstanceOf(IllegalArgumentException.class);
    }

    private static void runAll(List<Callable<Void>> jobs) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(jobs.size());
        CountDownLatch start = new CountDownLatch(1);
        try {
            List<Future<Void>> fs = new ArrayList<>();
            for (Callable<Void> j : jobs) {
                fs.add(pool.submit(() -> {
                    start.await();
                    return j.call();
                }));
            }
            start.countDown();
            for (Future<Void> f : fs) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
