package dev.pgproof.util;

/** Human-readable sizes and rates for progress lines. */
public final class Sizes {
    private Sizes() {}

    public static String bytes(long n) {
        if (n < 1024) {
            return n + " B";
        }
        double v = n;
        String[] units = {"kB", "MB", "GB", "TB"};
        int i = -1;
        while (v >= 1024 && i < units.length - 1) {
            v /= 1024;
            i++;
        }
        return String.format("%.1f %s", v, units[i]);
    }

    public static String rate(long bytes, long nanos) {
        if (nanos <= 0) {
            return "-";
        }
        return bytes(Math.round(bytes / (nanos / 1e9))) + "/s";
    }

    public static String seconds(long nanos) {
        return String.format("%.1f s", nanos / 1e9);
    }
}
