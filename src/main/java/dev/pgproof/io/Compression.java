package dev.pgproof.io;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdInputStreamNoFinalizer;
import com.github.luben.zstd.ZstdOutputStreamNoFinalizer;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;
import net.jpountz.lz4.LZ4FrameInputStream;
import net.jpountz.lz4.LZ4FrameOutputStream;

/** Compression of stored files, a stream stage; the extension is part of every stored name. */
public enum Compression {
    ZSTD("zstd", "zst", 3),
    LZ4("lz4", "lz4", 0),
    GZIP("gzip", "gz", 6),
    NONE("none", "raw", 0);

    public final String id;
    public final String extension;
    public final int defaultLevel;

    Compression(String id, String extension, int defaultLevel) {
        this.id = id;
        this.extension = extension;
        this.defaultLevel = defaultLevel;
    }

    public static Compression byName(String name) {
        for (Compression c : values()) {
            if (c.id.equalsIgnoreCase(name)) {
                return c;
            }
        }
        throw new PgproofException(ExitCode.CONFIG, "unknown compression \"" + name + "\"",
                "set --compress (or PGPROOF_COMPRESS, or compress in the configuration file) to zstd, lz4, gzip or none");
    }

    public static Compression byExtension(String ext) {
        for (Compression c : values()) {
            if (c.extension.equals(ext)) {
                return c;
            }
        }
        return null;
    }

    /** Wraps a sink; closing the returned stream finishes the frame and closes the sink. */
    public OutputStream compress(OutputStream out, int level) throws IOException {
        switch (this) {
            case ZSTD: {
                ZstdOutputStreamNoFinalizer z = new ZstdOutputStreamNoFinalizer(out, level);
                return z;
            }
            case LZ4:
                // 64 KiB blocks, LZ4's own window: 4 MiB blocks allocated 8 MiB of buffers per stored object, which drove a
                // backup's heap to its cap (peak RSS 410 to 490 MB instead of about 250 MB) for a slightly larger result.
                // Readers take any block size.
                return new LZ4FrameOutputStream(out, LZ4FrameOutputStream.BLOCKSIZE.SIZE_64KB);
            case GZIP:
                return new GZIPOutputStream(out, 1 << 16) {
                    {
                        def.setLevel(level);
                    }
                };
            default:
                return out;
        }
    }

    /**
     * Whether {@link #compressWhole} applies: zstd, whose one-shot compression of a chunk held whole in memory is about
     * 1.8x as fast as its stream's (the stream copies the input into its window and compresses it as an external
     * dictionary). The frame is the same kind; {@link #decompress} reads either.
     */
    public boolean compressesWhole() {
        return this == ZSTD;
    }

    /** The most bytes {@link #compressWhole} writes for {@code len} bytes of input. */
    public static int bound(int len) {
        return Math.toIntExact(Zstd.compressBound(len));
    }

    /**
     * Compresses src[off, off + len) as one zstd frame into dst, which holds at least {@link #bound}(len) bytes; returns
     * the frame's length. Only where {@link #compressesWhole}.
     */
    public int compressWhole(byte[] src, int off, int len, byte[] dst, int level) throws IOException {
        if (this != ZSTD) {
            throw new IllegalStateException(id + " is not compressed whole");
        }
        try {
            return Math.toIntExact(Zstd.compressByteArray(dst, 0, dst.length, src, off, len, level));
        } catch (com.github.luben.zstd.ZstdException e) {
            throw new IOException("zstd compression failed: " + e.getMessage(), e);
        }
    }

    public InputStream decompress(InputStream in) throws IOException {
        switch (this) {
            case ZSTD:
                return new ZstdInputStreamNoFinalizer(in);
            case LZ4:
                return new LZ4FrameInputStream(in);
            case GZIP:
                return new GZIPInputStream(in, 1 << 16);
            default:
                return in;
        }
    }
}
