package dev.pgproof.crypto;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pgproof.storage.Storage;
import dev.pgproof.util.ExitCode;
import dev.pgproof.util.PgproofException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HexFormat;
import java.util.Set;
import javax.crypto.Mac;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Encryption at rest for a whole repository. {@code cipher.info} at the repository root (the only
 * object stored in the clear) says that the repository is encrypted, how the key is derived, and
 * holds a key check (an HMAC of a fixed text), so a wrong key is one clear error before anything is
 * read. The key comes from a key file (64 hex digits, used as is) or a passphrase (from a file or
 * the environment, never the command line) stretched with PBKDF2-HMAC-SHA256.
 */
public final class Encryption {
    public static final String INFO_KEY = "cipher.info";
    public static final String PASS_ENV = "PGPROOF_CIPHER_PASS";
    static final int ITERATIONS = 600_000;
    /** Loaded only for an encrypted repository: Jackson's start-up would cost every archive-push 0.1 s. */
    private static final class Json {
        static final ObjectMapper MAPPER = new ObjectMapper();
    }

    private Encryption() {}

    /** Where the secret comes from: at most one of these is used (key file first). */
    public record Secret(Path keyFile, Path passFile, String passEnv) {
        public boolean given() {
            return keyFile != null || passFile != null || (passEnv != null && !passEnv.isEmpty());
        }

        String kind() {
            return keyFile != null ? "key-file" : "passphrase";
        }
    }

    /** The clear-text header of an encrypted repository. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record Info(int format, String cipher, String keySource, String kdf, int iterations, String salt, String keyCheck) {}

    /** Whether a repository is encrypted (has cipher.info). */
    public static boolean isEncrypted(Storage raw) throws IOException {
        return raw.exists(INFO_KEY);
    }

    /**
     * Opens an existing repository: the storage itself if it is not encrypted (a secret given for
     * it is an error), else an {@link EncryptedStorage} with the key checked.
     */
    public static Storage open(Storage raw, Secret secret) {
        Info info = null;
        try {
            if (raw.exists(INFO_KEY)) {
                try (InputStream in = raw.open(INFO_KEY)) {
                    info = Json.MAPPER.readValue(in, Info.class);
                }
            }
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not read \"" + INFO_KEY + "\" in repository \"" + raw.describe() + "\": "
                    + e.getMessage(), "check that the repository is mounted and readable by this OS user");
        }
        if (info == null) {
            if (secret.given()) {
                throw new PgproofException(ExitCode.CONFIG, "repository " + raw.describe() + " is not encrypted, but a cipher key or passphrase is set",
                        "remove cipher-key-file / cipher-pass-file / " + PASS_ENV + " for this repository, or use a new encrypted repository");
            }
            return raw;
        }
        if (!secret.given()) {
            throw new PgproofException(ExitCode.CONFIG, "repository " + raw.describe() + " is encrypted and no key or passphrase is set",
                    "set cipher-key-file or cipher-pass-file in the configuration file (the file readable only by its owner), or "
                            + PASS_ENV + " in the environment");
        }
        byte[] key = masterKey(info, secret);
        if (!MessageDigest.isEqual(check(key), Base64.getDecoder().decode(info.keyCheck()))) {
            throw new PgproofException(ExitCode.CONFIG, "wrong " + (secret.keyFile() != null ? "key" : "passphrase") + " for encrypted repository "
                    + raw.describe(), "use the " + info.keySource() + " the repository was initialised with (pgproof init)");
        }
        return new EncryptedStorage(raw, new ObjectCipher(key));
    }

    /** Makes a new repository encrypted (init): writes cipher.info, no-replace. */
    public static void initialise(Storage raw, Secret secret) {
        byte[] salt = new byte[16];
        new SecureRandom().nextBytes(salt);
        boolean pass = secret.keyFile() == null;
        Info draft = new Info(1, "aes-256-gcm", secret.kind(), pass ? "pbkdf2-hmac-sha256" : "none", pass ? ITERATIONS : 0,
                Base64.getEncoder().encodeToString(salt), null);
        byte[] key = masterKey(draft, secret);
        Info info = new Info(draft.format(), draft.cipher(), draft.keySource(), draft.kdf(), draft.iterations(), draft.salt(),
                Base64.getEncoder().encodeToString(check(key)));
        try {
            raw.write(INFO_KEY, Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(info), true);
        } catch (java.nio.file.FileAlreadyExistsException e) {
            open(raw, secret); // initialised meanwhile: the key must match
        } catch (IOException e) {
            throw new PgproofException(ExitCode.REPOSITORY, "could not write " + INFO_KEY + " in " + raw.describe() + ": " + e.getMessage(),
                    "the repository must be writable by the cluster owner");
        }
    }

    static byte[] masterKey(Info info, Secret secret) {
        if (secret.keyFile() != null) {
            String hex = readSecretFile(secret.keyFile(), "cipher-key-file").strip();
            if (!hex.matches("[0-9a-fA-F]{64}")) {
                throw new PgproofException(ExitCode.CONFIG, "cipher key file \"" + secret.keyFile() + "\" must hold 64 hexadecimal digits (256 bits)",
                        "create one with: (umask 077; openssl rand -hex 32 > " + secret.keyFile() + ")");
            }
            if (!"key-file".equals(info.keySource())) {
                throw new PgproofException(ExitCode.CONFIG, "the repository was encrypted with a passphrase, but a cipher-key-file is set",
                        "set cipher-pass-file (or " + PASS_ENV + ") instead of cipher-key-file");
            }
            return HexFormat.of().parseHex(hex);
        }
        if (!"passphrase".equals(info.keySource())) {
            throw new PgproofException(ExitCode.CONFIG, "the repository was encrypted with a key file, but a passphrase is set",
                    "set cipher-key-file instead of cipher-pass-file / " + PASS_ENV);
        }
        String pass = secret.passFile() != null ? readSecretFile(secret.passFile(), "cipher-pass-file").strip() : secret.passEnv();
        if (pass.length() < 8) {
            throw new PgproofException(ExitCode.CONFIG, "the cipher passphrase is shorter than 8 characters", "use a long random passphrase");
        }
        try {
            SecretKeyFactory f = SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256");
            return f.generateSecret(new PBEKeySpec(pass.toCharArray(), Base64.getDecoder().decode(info.salt()), info.iterations(), 256))
                    .getEncoded();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("PBKDF2WithHmacSHA256 unavailable", e);
        }
    }

    private static byte[] check(byte[] key) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal("pgproof key check v1".getBytes(StandardCharsets.US_ASCII));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 unavailable", e);
        }
    }

    /** Reads a file holding a secret; refuses one that group or others can read. */
    static String readSecretFile(Path file, String setting) {
        try {
            Set<PosixFilePermission> perms = Files.getPosixFilePermissions(file);
            if (perms.contains(PosixFilePermission.GROUP_READ) || perms.contains(PosixFilePermission.OTHERS_READ)) {
                throw new PgproofException(ExitCode.PERMISSION, setting + " \"" + file + "\" is readable by other users",
                        "make it readable only by its owner: chmod 600 " + file);
            }
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new PgproofException(ExitCode.CONFIG, setting + " \"" + file + "\" does not exist", "fix the " + setting + " setting");
        } catch (IOException e) {
            throw new PgproofException(ExitCode.PERMISSION, "cannot read " + setting + " \"" + file + "\": " + e.getMessage(),
                    "it must be readable by the OS user pgproof runs as (the cluster owner)");
        }
    }
}
