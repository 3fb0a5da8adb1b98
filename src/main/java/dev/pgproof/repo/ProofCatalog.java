package dev.pgproof.repo;

import dev.pgproof.storage.Storage;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/** The proofs of one cluster's backups, each a single JSON object written whole. */
public final class ProofCatalog {
    private final Storage storage;
    private final RepoLayout layout;

    public ProofCatalog(Storage storage, RepoLayout layout) {
        this.storage = storage;
        this.layout = layout;
    }

    /** Records a proof (one object, committed whole; an existing proof is never replaced). */
    public void write(ProofRecord proof) throws IOException {
        byte[] bytes = Json.MAPPER.writeValueAsBytes(proof);
        storage.write(layout.proof(proof.label()), bytes, true);
    }

    /** Every proof, oldest first by the time its verdict was reached. */
    public List<ProofRecord> list() throws IOException {
        List<ProofRecord> out = new ArrayList<>();
        for (Storage.ObjectInfo o : storage.list(layout.proofPrefix())) {
            if (!o.key().endsWith(".json")) {
                continue;
            }
            try (InputStream in = storage.open(o.key())) {
                out.add(Json.MAPPER.readValue(in, ProofRecord.class));
            } catch (com.fasterxml.jackson.core.JacksonException e) {
                String m = e.getOriginalMessage() == null ? "unreadable" : e.getOriginalMessage().lines().findFirst().orElse("");
                dev.pgproof.util.Log.warn("proof record \"%s\" in repository \"%s\" is damaged (%s): it is left out", o.key(), storage.describe(), m);
            }
        }
        out.sort(Comparator.comparing(ProofRecord::finished).thenComparing(ProofRecord::label));
        return out;
    }

    /** The newest proof, passed or failed. */
    public Optional<ProofRecord> newest() throws IOException {
        List<ProofRecord> all = list();
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    /** The newest proof of one backup. */
    public Optional<ProofRecord> newestOf(String backupLabel) throws IOException {
        ProofRecord found = null;
        for (ProofRecord p : list()) {
            if (p.backupLabel().equals(backupLabel)) {
                found = p;
            }
        }
        return Optional.ofNullable(found);
    }
}
