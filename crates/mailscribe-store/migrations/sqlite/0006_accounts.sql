-- Accounts that can be managed: disabled users, when each last signed in,
-- idle sessions, and API tokens with an id, an expiry and a last use.

ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN last_sign_in_at TEXT;

-- NULL: not seen since it was created.
ALTER TABLE sessions ADD COLUMN last_seen_at TEXT;

-- Tokens get an id to list and revoke them by. Tokens made before this
-- migration never expire (expires_at NULL) unless revoked.
CREATE TABLE api_tokens_with_ids (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    expires_at TEXT
);
INSERT INTO api_tokens_with_ids (token_hash, user_id, created_at)
SELECT token_hash, user_id, created_at FROM api_tokens ORDER BY created_at;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_with_ids RENAME TO api_tokens;
CREATE INDEX api_tokens_user ON api_tokens (user_id);
