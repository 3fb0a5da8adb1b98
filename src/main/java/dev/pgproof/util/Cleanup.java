package dev.pgproof.util;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Work that must happen even when pgproof is interrupted (SIGINT, SIGTERM), such as stopping a
 * throwaway server that prove started. The interrupt handler runs every registered action, newest
 * first, before it exits; a command unregisters an action once it has done it itself.
 */
public final class Cleanup {
    private static final Map<Object, Runnable> ACTIONS = new LinkedHashMap<>();

    private Cleanup() {}

    /** Registers an action; returns the handle to {@link #unregister} it with. */
    public static synchronized Object register(Runnable action) {
        Object handle = new Object();
        ACTIONS.put(handle, action);
        return handle;
    }

    public static synchronized void unregister(Object handle) {
        ACTIONS.remove(handle);
    }

    /** Runs every registered action once, newest first; an action's failure does not stop the others. */
    public static void runAll() {
        List<Runnable> todo;
        synchronized (Cleanup.class) {
            todo = new ArrayList<>(ACTIONS.values());
            ACTIONS.clear();
        }
        for (int i = todo.size() - 1; i >= 0; i--) {
            try {
                todo.get(i).run();
            } catch (RuntimeException e) {
                System.err.println("WARNING: cleanup failed: " + e);
            }
        }
    }
}
