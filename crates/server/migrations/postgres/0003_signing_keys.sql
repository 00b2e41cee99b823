-- Signing keys live in the database, shared by every instance. The private half is
-- PKCS#8 sealed with AES-256-GCM under a key derived from the master key (the kid as
-- associated data); it is wiped (NULL) once the key no longer signs, and the row goes
-- once no token it signed can still be live.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    public_jwk   TEXT NOT NULL,
    private_key  BYTEA,
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL
);
CREATE INDEX signing_keys_alg ON signing_keys(alg, activates_at);
