package dev.pgproof.storage;

import java.io.IOException;
import java.nio.file.FileSystemException;

/**
 * A write failed because the repository's file system is full (ENOSPC) or the writer's quota is
 * used up (EDQUOT). The temporary file of the write has been removed; nothing is under the key.
 */
public final class RepositoryFullException extends IOException {
    private static final long serialVersionUID = 1L;
    private final String key;
    private final String reason;

    public RepositoryFullException(String key, String reason, IOException cause) {
        super(reason + " writing \"" + key + "\"", cause);
        this.key = key;
        this.reason = reason;
    }

    /** The key that could not be written. */
    public String key() {
        return key;
    }

    /** The operating system's words: "No space left on device" or "Disk quota exceeded". */
    public String reason() {
        return reason;
    }

    /** The reason when {@code e} is ENOSPC or EDQUOT, else null. */
    static String fullReason(IOException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = t instanceof FileSystemException ? ((FileSystemException) t).getReason() : t.getMessage();
            if (m == null) {
                continue;
            }
            if (m.contains("No space left on device")) {
                return "No space left on device";
            }
            if (m.contains("Disk quota exceeded")) {
                return "Disk quota exceeded";
            }
        }
        return null;
    }

    /** {@code e} as a RepositoryFullException when it is one of the "full" errors, else {@code e}. */
    static IOException translate(String key, IOException e) {
        if (e instanceof RepositoryFullException) {
            return e;
        }
        String reason = fullReason(e);
        return reason == null ? e : new RepositoryFullException(key, reason, e);
    }
}
