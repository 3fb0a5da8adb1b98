package dev.pgproof.crypto;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pgproof.storage.PosixStorage;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EncryptionTest {
    private static final String KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    @TempDir
    Path dir;

    private Path secretFile(String name, String content) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, content + "\n");
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rw-------"));
        return p;
    }

    private Storage encryptedRepo(Encryption.Secret secret) throws IOException {
        Storage raw = new PosixStorage(Files.createDirectories(dir.resolve("repo")), true);
        Encryption.initialise(raw, secret);
        return Encryption.open(raw, secret);
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static void put(Storage s, String key, byte[] content) throws IOException {
        try (Storage.Writer w = s.create(key)) {
            w.stream().write(content);
            w.commit(false);
        }
    }

    private static byte[] get(Storage s, String key) throws IOException {
        try (InputStream in = s.open(key)) {
            return in.readAllBytes();
        }
    }

    @Test
    void roundTripsEverySizeAroundFrameBoundariesAndKeepsNoPlaintext() throws IOException {
        Storage s = encryptedRepo(new Encryption.Secret(secretFile("key", KEY_HEX), null, null));
        int f = ObjectCipher.FRAME;
        for (int n : new int[] {0, 1, f - 1, f, f + 1, 3 * f, 3 * f + 7}) {
            byte[] content = random(n, n);
            put(s, "c/obj" + n, content);
            assertThat(get(s, "c/obj" + n)).as("size " + n).isEqualTo(content);
            byte[] stored = Files.readAllBytes(dir.resolve("repo/c/obj" + n));
            int frames = Math.max(1, (n + f - 1) / f); // the last frame carries the flag, full or not
            assertThat(stored.length).isEqualTo(8 + 32 + n + 16 * frames);
        }
        byte[] text = "the secret ledger row: account 4711 owes 1000000".repeat(100).getBytes(StandardCharsets.UTF_8);
        put(s, "c/text", text);
        String stored = new String(Files.readAllBytes(dir.resolve("repo/c/text")), StandardCharsets.ISO_8859_1);
        assertThat(stored).doesNotContain("secret ledger").doesNotContain("4711");
        assertThat(Files.getPosixFilePermissions(dir.resolve("repo/c/text"))).isEqualTo(PosixFilePermissions.fromString("rw-------"));
        assertThat(Files.getPosixFilePermissions(dir.resolve("repo/c"))).isEqualTo(PosixFilePermissions.fromString("rwx------"));
    }

    @Test
    void readsOneByteAtATime() throws IOException {
        Storage s = encryptedRepo(new Encryption.Secret(secretFile("key", KEY_HEX), null, null));
        byte[] content = random(ObjectCipher.FRAME + 100, 1);
        put(s, "c/x", content);
        try (InputStream in = s.open("c/x")) {
            byte[] back = new byte[content.length];
            for (int i = 0; i < content.length; i++) {
                int b = in.read();
                assertThat(b).isNotNegative();
                back[i] = (byte) b;
            }
            assertThat(in.read()).isEqualTo(-1);
            assertThat(back).isEqualTo(content);
        }
    }

    @Test
    void refusesFlippedTruncatedAndSwappedCiphertext() throws IOException {
        Storage s = encryptedRepo(new Encryption.Secret(secretFile("key", KEY_HEX), null, null));
        int f = ObjectCipher.FRAME;
        put(s, "c/a", random(3 * f, 1));
        put(s, "c/b", random(3 * f, 2));
        Path a = dir.resolve("repo/c/a");
        Path b = dir.resolve("repo/c/b");
        byte[] good = Files.readAllBytes(a);

        byte[] flipped = good.clone();
        flipped[good.length / 2] ^= 1;
        Files.write(a, flipped);
        assertThatThrownBy(() -> get(s, "c/a")).isInstanceOf(ObjectCipher.AuthenticationException.class)
                .hasMessageContaining("object c/a failed authentication at frame 1");

        // Cut at a frame boundary: the new last frame was not written as the last.
        int frame = f + 16;
        Files.write(a, Arrays.copyOf(good, 40 + 2 * frame));
        assertThatThrownBy(() -> get(s, "c/a")).isInstanceOf(ObjectCipher.AuthenticationException.class)
                .hasMessageContaining("frame 1");
        Files.write(a, Arrays.copyOf(good, 20));
        assertThatThrownBy(() -> get(s, "c/a")).isInstanceOf(ObjectCipher.AuthenticationException.class).hasMessageContaining("no header");

        // Two frames swapped within the object, and a whole object moved under another key.
        byte[] swapped = good.clone();
        System.arraycopy(good, 40, swapped, 40 + frame, frame);
        System.arraycopy(good, 40 + frame, swapped, 40, frame);
        Files.write(a, swapped);
        assertThatThrownBy(() -> get(s, "c/a")).isInstanceOf(ObjectCipher.AuthenticationException.class).hasMessageContaining("frame 0");
        Files.write(a, Files.readAllBytes(b));
        assertThatThrownBy(() -> get(s, "c/a")).isInstanceOf(ObjectCipher.AuthenticationException.class).hasMessageContaining("frame 0");
    }

    @Test
    void aWrongKeyOrPassphraseIsOneClearError() throws IOException {
        Path pass = secretFile("pass", "correct horse battery staple");
        Storage s = encryptedRepo(new Encryption.Secret(null, pass, null));
        put(s, "c/x", random(10, 1));
        Storage raw = new PosixStorage(dir.resolve("repo"), true);
        assertThatThrownBy(() -> Encryption.open(raw, new Encryption.Secret(null, null, "wrong horse battery staple")))
                .isInstanceOf(PgproofException.class).hasMessageStartingWith("wrong passphrase for encrypted repository ")
                .extracting(e -> ((PgproofException) e).exitCode()).isEqualTo(ExitCode.CONFIG);
        assertThatThrownBy(() -> Encryption.open(raw, new Encryption.Secret(null, null, null)))
                .hasMessageContaining("is encrypted and no key or passphrase is set");
        assertThatThrownBy(() -> Encryption.open(raw, new Encryption.Secret(secretFile("key", KEY_HEX), null, null)))
                .hasMessageContaining("encrypted with a passphrase, but a cipher-key-file is set");
        assertThat(get(Encryption.open(raw, new Encryption.Secret(null, null, "correct horse battery staple")), "c/x")).isEqualTo(random(10, 1));
    }

    @Test
    void secretFilesReadableByOthersAndKeysForPlainRepositoriesAreRefused() throws IOException {
        Path key = secretFile("key", KEY_HEX);
        Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-r--r--"));
        Storage raw = new PosixStorage(Files.createDirectories(dir.resolve("plain")));
        assertThatThrownBy(() -> Encryption.initialise(raw, new Encryption.Secret(key, null, null)))
                .isInstanceOf(PgproofException.class).hasMessageContaining("is readable by other users")
                .extracting(e -> ((PgproofException) e).hints().get(0)).asString().startsWith("make it readable only by its owner: chmod 600 ");
        Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-------"));
        assertThatThrownBy(() -> Encryption.open(raw, new Encryption.Secret(key, null, null)))
                .hasMessageContaining("is not encrypted, but a cipher key or passphrase is set");
        assertThat(Encryption.open(raw, new Encryption.Secret(null, null, null))).isSameAs(raw);
    }
}
