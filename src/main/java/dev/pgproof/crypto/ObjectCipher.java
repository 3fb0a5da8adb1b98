package dev.pgproof.crypto;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Authenticated encryption of one stored object with AES-256-GCM, streamed in frames.
 *
 * <p>Layout: the 8-byte magic {@code PGPROOF} 0x01, a random 32-byte salt, then frames. Each object
 * gets its own key, HKDF-SHA256(master key, salt), so nonces (the frame number) never repeat under
 * one key. Every frame holds up to {@value #FRAME} bytes of plaintext plus a 16-byte tag; every frame
 * but the last is full. The associated data of a frame is the object's storage key and a flag that
 * is 1 only on the last frame, so a frame moved to another object, frames reordered (nonce), an
 * object cut at a frame boundary (the flag), or any flipped bit fails authentication. Nothing is
 * returned to a reader before its frame has been authenticated.
 */
public final class ObjectCipher {
    static final int FRAME = 64 * 1024;
    static final int TAG = 16;
    static final byte[] MAGIC = {'P', 'G', 'P', 'R', 'O', 'O', 'F', 1};
    static final int SALT = 32;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final byte[] master;

    ObjectCipher(byte[] master) {
        if (master.length != 32) {
            throw new IllegalArgumentException("a 256-bit key is required");
        }
        this.master = master.clone();
    }

    /** An object whose content failed authentication: tampered, truncated, swapped, or written with another key. */
    public static final class AuthenticationException extends IOException {
        private static final long serialVersionUID = 1L;

        AuthenticationException(String message) {
            super(message);
        }
    }

    OutputStream encrypt(String key, OutputStream sink) throws IOException {
        byte[] salt = new byte[SALT];
        RANDOM.nextBytes(salt);
        sink.write(MAGIC);
        sink.write(salt);
        return new Encrypting(sink, objectKey(salt), key);
    }

    InputStream decrypt(String key, InputStream source) throws IOException {
        byte[] head = source.readNBytes(MAGIC.length + SALT);
        if (head.length < MAGIC.length + SALT || !java.util.Arrays.equals(java.util.Arrays.copyOf(head, MAGIC.length), MAGIC)) {
            throw new AuthenticationException("object " + key + " is not a pgproof-encrypted object (no header)");
        }
        return new Decrypting(source, objectKey(java.util.Arrays.copyOfRange(head, MAGIC.length, head.length)), key);
    }

    /** HKDF-SHA256 (RFC 5869) with one output block: extract with the salt, expand with a fixed label. */
    private SecretKeySpec objectKey(byte[] salt) throws IOException {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(salt, "HmacSHA256"));
            byte[] prk = mac.doFinal(master);
            mac.init(new SecretKeySpec(prk, "HmacSHA256"));
            mac.update("pgproof object key v1".getBytes(StandardCharsets.US_ASCII));
            mac.update((byte) 1);
            return new SecretKeySpec(mac.doFinal(), "AES");
        } catch (GeneralSecurityException e) {
            throw new IOException("AES-256-GCM/HMAC-SHA256 unavailable in this JVM: " + e, e);
        }
    }

    private static byte[] nonce(long frame) {
        return ByteBuffer.allocate(12).putInt(0).putLong(frame).array();
    }

    private static byte[] aad(String key, boolean last) {
        byte[] k = key.getBytes(StandardCharsets.UTF_8);
        byte[] out = java.util.Arrays.copyOf(k, k.length + 1);
        out[k.length] = (byte) (last ? 1 : 0);
        return out;
    }

    private static Cipher cipher(int mode, SecretKeySpec k, long frame, String key, boolean last) throws IOException {
        try {
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
            c.init(mode, k, new GCMParameterSpec(TAG * 8, nonce(frame)));
            c.updateAAD(aad(key, last));
            return c;
        } catch (GeneralSecurityException e) {
            throw new IOException("AES-256-GCM unavailable in this JVM: " + e, e);
        }
    }

    /** Buffers one frame; {@link #close()} writes the last frame (possibly empty) with the last flag. */
    private static final class Encrypting extends OutputStream {
        private final OutputStream sink;
        private final SecretKeySpec k;
        private final String key;
        private final byte[] buf = new byte[FRAME];
        private int n;
        private long frame;
        private boolean closed;

        Encrypting(OutputStream sink, SecretKeySpec k, String key) {
            this.sink = sink;
            this.k = k;
            this.key = key;
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            while (len > 0) {
                if (n == FRAME) {
                    emit(false); // a full frame is written only once more data follows, so the last one carries the flag
                }
                int m = Math.min(len, FRAME - n);
                System.arraycopy(b, off, buf, n, m);
                n += m;
                off += m;
                len -= m;
            }
        }

        private void emit(boolean last) throws IOException {
            try {
                sink.write(cipher(Cipher.ENCRYPT_MODE, k, frame++, key, last).doFinal(buf, 0, n));
            } catch (GeneralSecurityException e) {
                throw new IOException("encryption of " + key + " failed: " + e, e);
            }
            n = 0;
        }

        @Override
        public void close() throws IOException {
            if (!closed) {
                closed = true;
                emit(true);
                sink.flush();
            }
        }
    }

    /** Reads a frame and looks one byte ahead to know whether it is the last. */
    private static final class Decrypting extends InputStream {
        private final InputStream source;
        private final SecretKeySpec k;
        private final String key;
        private byte[] plain = new byte[0];
        private int pos;
        private long frame;
        private boolean done;
        private int lookahead = -2; // -2: none read yet

        Decrypting(InputStream source, SecretKeySpec k, String key) {
            this.source = source;
            this.k = k;
            this.key = key;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            int r = read(one, 0, 1);
            return r < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            while (pos == plain.length) {
                if (done) {
                    return -1;
                }
                next();
            }
            int m = Math.min(len, plain.length - pos);
            System.arraycopy(plain, pos, b, off, m);
            pos += m;
            return m;
        }

        private void next() throws IOException {
            ByteArrayOutputStream ct = new ByteArrayOutputStream(FRAME + TAG);
            if (lookahead >= 0) {
                ct.write(lookahead);
            }
            byte[] rest = source.readNBytes(FRAME + TAG - ct.size());
            ct.write(rest, 0, rest.length);
            lookahead = source.read();
            boolean last = lookahead < 0;
            if (ct.size() < TAG) {
                throw new AuthenticationException("object " + key + " is truncated (frame " + frame + " is incomplete)");
            }
            try {
                plain = cipher(Cipher.DECRYPT_MODE, k, frame, key, last).doFinal(ct.toByteArray());
            } catch (AEADBadTagException e) {
                throw new AuthenticationException("object " + key + " failed authentication at frame " + frame
                        + " (tampered, truncated, moved from another object, or encrypted with another key)");
            } catch (GeneralSecurityException e) {
                throw new IOException("decryption of " + key + " failed: " + e, e);
            }
            frame++;
            pos = 0;
            done = last;
        }

        @Override
        public void close() throws IOException {
            source.close();
        }
    }
}
