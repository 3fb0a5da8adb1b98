package dev.pgproof.util;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Durations as settings take them ("90s", "45m", "36h", "7d", "2w"; a bare number is seconds) and as messages print them. */
public final class Durations {
    private static final Pattern FORMAT = Pattern.compile("([0-9]{1,9})\\s*([smhdw]?)");

    private Durations() {}

    /** Parses a duration; returns null when the text is not one. */
    public static Duration parse(String text) {
        Matcher m = FORMAT.matcher(text.trim());
        if (!m.matches()) {
            return null;
        }
        long n = Long.parseLong(m.group(1));
        return switch (m.group(2)) {
            case "", "s" -> Duration.ofSeconds(n);
            case "m" -> Duration.ofMinutes(n);
            case "h" -> Duration.ofHours(n);
            case "d" -> Duration.ofDays(n);
            default -> Duration.ofDays(7 * n);
        };
    }

    /** Short form for messages: "42 s", "17 min", "5.2 h", "3.1 d". */
    public static String human(Duration d) {
        long s = d.getSeconds();
        if (s < 0) {
            return "in the future (" + human(d.negated()) + ")";
        }
        if (s < 120) {
            return s + " s";
        }
        if (s < 7200) {
            return s / 60 + " min";
        }
        if (s < 3 * 86400) {
            return String.format("%.1f h", s / 3600.0);
        }
        return String.format("%.1f d", s / 86400.0);
    }

    /** The canonical setting form of a duration: the largest unit that divides it ("26h", "8d", "90s"). */
    public static String setting(Duration d) {
        long s = d.getSeconds();
        if (s != 0 && s % 604800 == 0) {
            return s / 604800 + "w";
        }
        if (s != 0 && s % 86400 == 0) {
            return s / 86400 + "d";
        }
        if (s != 0 && s % 3600 == 0) {
            return s / 3600 + "h";
        }
        if (s != 0 && s % 60 == 0) {
            return s / 60 + "m";
        }
        return s + "s";
    }
}
