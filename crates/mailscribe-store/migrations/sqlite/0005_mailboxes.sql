-- Several mailboxes, each with a name (PRODUCT.md section 8). The one setup
-- that existed becomes the mailbox `default`; leases gain a fencing
-- generation and expire on the database's clock; instances of `serve`,
-- run requests and assisted-setup drafts live here so that several
-- instances share them.

CREATE TABLE mailboxes (
    -- As written; compared case-insensitively (the unique index below).
    name TEXT PRIMARY KEY NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    security TEXT NOT NULL,
    auth_kind TEXT NOT NULL,
    username TEXT NOT NULL,
    password_ref TEXT,
    oauth_token_url TEXT,
    oauth_tenant TEXT,
    oauth_client_id_ref TEXT,
    oauth_client_secret_ref TEXT,
    oauth_scope TEXT,
    queue_folder TEXT NOT NULL,
    storage_folder TEXT NOT NULL,
    not_logged_folder TEXT,
    quarantine_folder TEXT,
    batch_size INTEGER NOT NULL,
    allow_plaintext BOOLEAN NOT NULL,
    ca_file TEXT,
    tls_trust TEXT NOT NULL DEFAULT 'bundled',
    -- The sweep interval of this mailbox; NULL: the global `interval` setting.
    interval_seconds INTEGER,
    enabled BOOLEAN NOT NULL DEFAULT FALSE,
    accepted_by TEXT,
    accepted_at TEXT,
    -- What the instance working the mailbox last saw.
    status TEXT NOT NULL DEFAULT 'new',
    last_run_at TEXT,
    last_error TEXT,
    next_attempt_at TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX mailboxes_name_folded ON mailboxes (lower(name));

INSERT INTO mailboxes (name, host, port, security, auth_kind, username, password_ref, oauth_token_url,
    oauth_tenant, oauth_client_id_ref, oauth_client_secret_ref, oauth_scope, queue_folder, storage_folder,
    not_logged_folder, quarantine_folder, batch_size, allow_plaintext, ca_file, tls_trust, enabled,
    accepted_by, accepted_at)
SELECT 'default', host, port, security, auth_kind, username, password_ref, oauth_token_url,
    oauth_tenant, oauth_client_id_ref, oauth_client_secret_ref, oauth_scope, queue_folder, storage_folder,
    not_logged_folder, quarantine_folder, batch_size, allow_plaintext, ca_file, tls_trust, enabled,
    accepted_by, accepted_at
FROM mailbox_setup;
DROP TABLE mailbox_setup;

-- The mailbox name a row came through: a label for exports and filters.
-- Everything logged before names existed came through `default`.
ALTER TABLE decisions ADD COLUMN mailbox_name TEXT NOT NULL DEFAULT 'default';
ALTER TABLE runs ADD COLUMN mailbox_name TEXT NOT NULL DEFAULT 'default';
ALTER TABLE messages ADD COLUMN mailbox_name TEXT NOT NULL DEFAULT 'default';
ALTER TABLE interaction_entries ADD COLUMN mailbox_name TEXT NOT NULL DEFAULT 'default';
CREATE INDEX interaction_entries_mailbox ON interaction_entries (mailbox_name, occurred_at, entry_no);

-- A logged copy whose move to the storage folder was refused stays logged;
-- these count the refused moves and keep the last error.
ALTER TABLE decisions ADD COLUMN move_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE decisions ADD COLUMN move_error TEXT;

-- Leases, on the database's clock (milliseconds since 1970). `generation`
-- grows each time the lease changes hands: a commit checks it in its own
-- transaction (the fencing token), so a holder that lost the lease while
-- paused can never commit after another took over.
DROP TABLE mailbox_leases;
CREATE TABLE leases (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    generation INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);

-- Running `serve` processes, so that work can be spread and a second
-- instance on one SQLite file refused.
CREATE TABLE instances (
    id TEXT PRIMARY KEY NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    seen_at_ms INTEGER NOT NULL
);

-- "Run now": a request row the instance working the mailbox answers.
CREATE TABLE run_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_name TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    claimed_by TEXT,
    finished_at TEXT,
    run_id INTEGER,
    -- The run's summary as JSON, or why it could not run.
    summary TEXT,
    error TEXT
);
CREATE INDEX run_requests_open ON run_requests (mailbox_name, finished_at);

-- Assisted-setup answers, per admin, until the last step saves them.
CREATE TABLE setup_drafts (
    user_id INTEGER PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    draft TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
