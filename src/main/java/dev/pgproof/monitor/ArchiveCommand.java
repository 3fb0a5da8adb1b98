package dev.pgproof.monitor;

import java.util.ArrayList;
import java.util.List;

/**
 * What a server's {@code archive_command} says about pgproof: whether it calls pgproof archive-push,
 * and for which cluster, repository and configuration file ({@code --cluster}, {@code --repo},
 * {@code --config}, or {@code PGPROOF_*} assignments in front of the command).
 *
 * @param text          the archive_command as the server reports it
 * @param callsPgproof  whether it runs pgproof's archive-push
 * @param cluster       the cluster it archives as, or null when it names none
 * @param repo          the repository it names, or null (then the configuration file decides)
 * @param config        the configuration file it names, or null (then the default one)
 */
public record ArchiveCommand(String text, boolean callsPgproof, String cluster, String repo, String config) {

    public static ArchiveCommand parse(String text) {
        if (text == null) {
            return new ArchiveCommand("", false, null, null, null);
        }
        List<String> words = words(text);
        int push = words.indexOf("archive-push");
        boolean pgproof = false;
        for (int i = 0; i < push; i++) {
            String w = words.get(i);
            String base = w.substring(w.lastIndexOf('/') + 1);
            pgproof |= base.equals("pgproof") || base.endsWith("pgproof.jar") || base.equals("dev.pgproof.Main");
        }
        if (push < 0 || !pgproof) {
            return new ArchiveCommand(text, false, null, null, null);
        }
        String cluster = null;
        String repo = null;
        String config = null;
        for (int i = 0; i < push; i++) {
            String w = words.get(i);
            if (w.startsWith("PGPROOF_CLUSTER=")) {
                cluster = w.substring(16);
            } else if (w.startsWith("PGPROOF_REPO=")) {
                repo = w.substring(13);
            } else if (w.startsWith("PGPROOF_CONFIG=")) {
                config = w.substring(15);
            }
        }
        for (int i = push + 1; i < words.size(); i++) {
            String w = words.get(i);
            String name = w;
            String value = null;
            int eq = w.indexOf('=');
            if (w.startsWith("--") && eq > 0) {
                name = w.substring(0, eq);
                value = w.substring(eq + 1);
            } else if (i + 1 < words.size()) {
                value = words.get(i + 1);
            }
            if (value == null) {
                continue;
            }
            switch (name) {
                case "--cluster" -> cluster = value;
                case "--repo" -> repo = value;
                case "--config" -> config = value;
                default -> {
                    continue;
                }
            }
            if (eq < 0 || !w.startsWith("--")) {
                i++;
            }
        }
        return new ArchiveCommand(text, true, cluster, repo, config);
    }

    /** Splits a shell command into words: blanks separate, '...' and "..." quote, backslash escapes. */
    static List<String> words(String s) {
        List<String> out = new ArrayList<>();
        StringBuilder w = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isWhitespace(c)) {
                if (w != null) {
                    out.add(w.toString());
                    w = null;
                }
                continue;
            }
            if (w == null) {
                w = new StringBuilder();
            }
            if (c == '\'') {
                int end = s.indexOf('\'', i + 1);
                end = end < 0 ? s.length() : end;
                w.append(s, i + 1, end);
                i = end;
            } else if (c == '"') {
                int j = i + 1;
                while (j < s.length() && s.charAt(j) != '"') {
                    if (s.charAt(j) == '\\' && j + 1 < s.length()) {
                        j++;
                    }
                    w.append(s.charAt(j));
                    j++;
                }
                i = j;
            } else if (c == '\\' && i + 1 < s.length()) {
                w.append(s.charAt(++i));
            } else if (c == ';' || c == '&' || c == '|') {
                out.add(w.toString());
                w = null;
                out.add(String.valueOf(c));
            } else {
                w.append(c);
            }
        }
        if (w != null) {
            out.add(w.toString());
        }
        out.removeIf(String::isEmpty);
        return out;
    }
}
