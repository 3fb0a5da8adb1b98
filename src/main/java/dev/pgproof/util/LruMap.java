package dev.pgproof.util;

import java.util.LinkedHashMap;
import java.util.Map;

/** A map that keeps only its {@code max} most recently used entries (for caches of decompressed objects). */
public final class LruMap<K, V> extends LinkedHashMap<K, V> {
    private static final long serialVersionUID = 1L;
    private final int max;

    public LruMap(int max) {
        super(max + 1, 0.75f, true);
        this.max = max;
    }

    @Override
    protected boolean removeEldestEntry(Map.Entry<K, V> eldest) {
        return size() > max;
    }
}
