package dev.pgproof;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** Commands depend on capabilities, never the reverse: the allowed imports between packages. */
class LayeringTest {
    private static final Map<String, Set<String>> ALLOWED = Map.ofEntries(
            Map.entry("util", Set.of()),
            Map.entry("config", Set.of("util")),
            Map.entry("storage", Set.of("util")),
            Map.entry("io", Set.of("util")),
            Map.entry("repo", Set.of("util", "io", "storage")),
            Map.entry("wal", Set.of("util", "io", "storage", "repo")),
            Map.entry("cluster", Set.of("util", "repo")),
            Map.entry("backup", Set.of("util", "io", "storage", "repo", "wal", "cluster")),
            Map.entry("restore", Set.of("util", "io", "storage", "repo", "wal", "cluster")),
            Map.entry("crypto", Set.of("util", "storage")),
            Map.entry("lock", Set.of("util", "storage", "repo")),
            Map.entry("expire", Set.of("util", "io", "storage", "repo", "wal", "lock")),
            Map.entry("info", Set.of("util", "io", "storage", "repo", "wal")),
            Map.entry("verify", Set.of("util", "io", "storage", "repo", "wal", "lock")),
            Map.entry("prove", Set.of("util", "io", "storage", "repo", "wal", "cluster", "restore", "config", "lock")),

            Map.entry("monitor", Set.of("util", "config", "storage", "repo", "wal", "cluster")));
    private static final Pattern IMPORT = Pattern.compile("import dev\\.pgproof\\.([a-z]+)\\.");

    @Test
    void packagesImportOnlyTheLayersBelowThem() throws IOException {
        Path src = Path.of("src/main/java/dev/pgproof");
        List<String> violations = new ArrayList<>();
        try (Stream<Path> files = Files.walk(src)) {
            for (Path f : (Iterable<Path>) files.filter(p -> p.toString().endsWith(".java"))::iterator) {
                String pkg = src.relativize(f.getParent()).toString();
                Set<String> allowed = ALLOWED.get(pkg);
                if (allowed == null) {
                    continue; // cli, demo and the root: the top of the graph
                }
                Matcher m = IMPORT.matcher(Files.readString(f));
                while (m.find()) {
                    String to = m.group(1);
                    if (!to.equals(pkg) && !allowed.contains(to)) {
                        violations.add(src.relativize(f) + " imports dev.pgproof." + to);
                    }
                }
            }
        }
        assertThat(violations).isEmpty();
    }
}
