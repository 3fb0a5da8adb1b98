package dev.pgproof.io;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;

/** Stream helpers for composing stages. */
public final class Streams {
    private Streams() {}

    /**
     * A view of a sink whose close() only flushes: lets a compression stage be closed (to finish
     * its frame) while the storage writer underneath stays open for commit.
     */
    public static OutputStream nonClosing(OutputStream out) {
        return new FilterOutputStream(out) {
            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                out.write(b, off, len);
            }

            @Override
            public void close() throws IOException {
                out.flush();
            }
        };
    }
}
