-- Housekeeping: expired rows are deleted in batches, found by these indexes.

CREATE INDEX auth_codes_expires ON auth_codes(expires_at);
CREATE INDEX auth_codes_grant ON auth_codes(grant_id);
CREATE INDEX sessions_expires ON sessions(expires_at);
CREATE INDEX refresh_tokens_expires ON refresh_tokens(expires_at);
CREATE INDEX access_tokens_expires ON access_tokens(expires_at);
CREATE INDEX revoked_jtis_expires ON revoked_jtis(expires_at);
CREATE INDEX client_assertion_jtis_expires ON client_assertion_jtis(expires_at);
CREATE INDEX revocations_expires ON revocations(expires_at);
-- Grants that may go once their tokens have: revoked ones, and lapsed ones.
CREATE INDEX grants_revoked ON grants(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX grants_expires ON grants(expires_at) WHERE expires_at IS NOT NULL;
