package dev.pgproof.util;

import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Progress of long work: files, bytes, rate and ETA, printed every few seconds (in place on a
 * terminal, as plain lines in a log), so that pgproof is never silent for long.
 */
public final class Progress implements AutoCloseable {
    private final String what;
    private final long totalFiles;
    private final long totalBytes;
    private final AtomicLong files = new AtomicLong();
    private final AtomicLong bytes = new AtomicLong();
    private final long start = System.nanoTime();
    private final ScheduledExecutorService timer;

    public Progress(String what, long totalFiles, long totalBytes) {
        this.what = what;
        this.totalFiles = totalFiles;
        this.totalBytes = totalBytes;
        this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "progress");
            t.setDaemon(true);
            return t;
        });
        long period = Log.isTerminal() ? 500 : 3000;
        timer.scheduleAtFixedRate(this::print, period, period, TimeUnit.MILLISECONDS);
    }

    public void addBytes(long n) {
        bytes.addAndGet(n);
    }

    public void fileDone() {
        files.incrementAndGet();
    }

    public long bytes() {
        return bytes.get();
    }

    public long elapsedNanos() {
        return System.nanoTime() - start;
    }

    private void print() {
        long b = bytes.get();
        long el = elapsedNanos();
        String eta = "-";
        if (b > 0 && totalBytes > b) {
            double secs = (totalBytes - b) / (b / (el / 1e9));
            eta = String.format("%.0f s", secs);
        }
        int pct = totalBytes == 0 ? 100 : (int) Math.min(100, b * 100 / totalBytes);
        Log.progress(String.format("%s: %d/%d files, %s of %s (%d%%), %s, ETA %s", what, files.get(), totalFiles, Sizes.bytes(b),
                Sizes.bytes(totalBytes), pct, Sizes.rate(b, el), eta));
    }

    @Override
    public void close() {
        timer.shutdownNow();
        Log.progressDone();
    }
}
