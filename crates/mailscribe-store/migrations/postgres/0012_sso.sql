-- Single sign-on with OpenID Connect: the one provider, the links of
-- accounts to (issuer, subject), and sign-ins under way.

-- At most one row (id = 1). The client secret is sealed, or a source.
CREATE TABLE sso_config (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    redirect_url TEXT,
    name_claim TEXT NOT NULL,
    role_claim TEXT,
    admin_value TEXT,
    user_value TEXT,
    salesperson_claim TEXT,
    updated_at TIMESTAMPTZ NOT NULL
);

-- An account is linked to the provider's (issuer, sub), never to a claim
-- that can change; a user has at most one link.
CREATE TABLE sso_links (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id BIGINT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    linked_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issuer, subject)
);

-- A sign-in between the redirect to the provider and the callback, shared
-- by every `serve` instance: the state (hashed), the browser it was started
-- in (the hash of a cookie), the nonce and the PKCE verifier. Used once.
CREATE TABLE sso_pending (
    state_hash TEXT PRIMARY KEY NOT NULL,
    browser_hash TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    redirect_url TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
