package dev.pgproof.util;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Test-only pause points. When PGPROOF_TEST_HOOK names a point, pgproof prints
 * "HOOK point detail" on stderr when it reaches it and waits until the file named by
 * PGPROOF_TEST_HOOK_RELEASE exists (or forever, to be killed); a few points instead inject a fault
 * ({@link #active}). Without the variable it does nothing.
 */
public final class TestHooks {
    private static final String HOOK = System.getenv("PGPROOF_TEST_HOOK");

    private TestHooks() {}

    /** Whether PGPROOF_TEST_HOOK names this point: for a fault a test injects (no pause). */
    public static boolean active(String point) {
        return HOOK != null && HOOK.equals(point);
    }

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
