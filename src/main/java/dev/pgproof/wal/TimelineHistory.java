package dev.pgproof.wal;

import java.util.ArrayList;
import java.util.List;

/**
 * A timeline history file ({@code <TLI>.history}): one line per ancestor timeline,
 * {@code <parent tli>\t<switch point LSN>\t<reason>}, oldest first. Blank lines and lines starting
 * with '#' are ignored, as PostgreSQL does.
 */
public final class TimelineHistory {
    private TimelineHistory() {}

    /** An ancestor timeline and the LSN at which it was left. */
    public record Entry(int timeline, long switchLsn) {}

    /**
     * Parses the text of the history file of {@code timeline}; throws IllegalArgumentException
     * naming the line when it is malformed or the timelines are not increasing and below {@code timeline}.
     */
    public static List<Entry> parse(int timeline, String text) {
        List<Entry> out = new ArrayList<>();
        int lineNo = 0;
        int prev = 0;
        for (String raw : text.split("\n")) {
            lineNo++;
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String[] f = line.split("\\s+", 3);
            try {
                int tli = Integer.parseInt(f[0]);
                long lsn = WalFileName.parseLsn(f[1]);
                if (tli <= prev || tli >= timeline) {
                    throw new IllegalArgumentException("line " + lineNo + ": timeline " + tli + " out of order");
                }
                prev = tli;
                out.add(new Entry(tli, lsn));
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("line " + lineNo + " \"" + line + "\" is not \"<timeline> <LSN> <reason>\"", e);
            }
        }
        return out;
    }
}
