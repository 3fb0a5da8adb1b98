package dev.pgproof.util;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Test-only pause points. When PGPROOF_TEST_HOOK names a point, pgproof prints
 * "HOOK point detail" on stderr when it reaches it and waits until the file named by
 * PGPROOF_TEST_HOOK_RELEASE exists (or forever, to be killed). Without the variable it does nothing.
 */
public final class TestHooks {
    private static final String HOOK = System.getenv("PGPROOF_TEST_HOOK");

    private TestHooks() {}

    public static void pause(String point, Object detail) {
        if (HOOK == null || !HOOK.equals(point)) {
            return;
        }
        System.err.println("HOOK " + point + " " + detail);
        System.err.flush();
        String release = System.getenv("PGPROOF_TEST_HOOK_RELEASE");
        try {
            while (release == null || !Files.exists(Path.of(release))) {
                Thread.sleep(50);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
