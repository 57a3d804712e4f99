-- Single sign-on (OpenID Connect): a person who signs in through the
-- identity provider is known by the provider's subject, and a sign-in
-- under way keeps its PKCE verifier and nonce until the provider sends
-- the browser back (to any replica).

-- "ISSUER SUBJECT" of a person who signs in with single sign-on; NULL for
-- local accounts. A local account is never taken over by a provider's
-- user of the same name.
ALTER TABLE users ADD COLUMN sso_subject TEXT;
CREATE UNIQUE INDEX users_sso_subject ON users(sso_subject);

CREATE TABLE sso_logins (
    state_digest TEXT PRIMARY KEY,   -- SHA-256 of the OAuth `state`, hex
    verifier     TEXT NOT NULL,      -- PKCE code verifier
    nonce        TEXT NOT NULL,      -- the ID token must carry it back
    next         TEXT NOT NULL,      -- the page to return to
    expires_at   TEXT NOT NULL
);
-- Expired sign-ins are dropped as new ones start.
CREATE INDEX sso_logins_expires_at ON sso_logins(expires_at);
