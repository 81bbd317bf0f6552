-- Mailscribe schema, SQLite dialect. Shipped migrations are never edited;
-- changes go into a new file, in both dialects.

CREATE TABLE salespeople (
    code TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL
);

-- One address belongs to at most one salesperson: the primary key refuses
-- the second.
CREATE TABLE salesperson_addresses (
    address TEXT PRIMARY KEY NOT NULL,
    salesperson_code TEXT NOT NULL REFERENCES salespeople (code) ON DELETE CASCADE,
    position INTEGER NOT NULL
);
CREATE INDEX salesperson_addresses_code ON salesperson_addresses (salesperson_code);

CREATE TABLE contacts (
    no TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('person', 'company')),
    company_no TEXT REFERENCES contacts (no)
);
CREATE INDEX contacts_kind_name ON contacts (kind, name);

-- One address may belong to several contacts; the lowest number wins.
CREATE TABLE contact_addresses (
    address TEXT NOT NULL,
    contact_no TEXT NOT NULL REFERENCES contacts (no) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (address, contact_no)
);
CREATE INDEX contact_addresses_contact ON contact_addresses (contact_no);

CREATE TABLE sequences (
    name TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
);
INSERT INTO sequences (name, value) VALUES ('company_no', 0);

CREATE TABLE interaction_templates (
    code TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    cost_hundredths INTEGER NOT NULL,
    duration_minutes INTEGER NOT NULL
);
INSERT INTO interaction_templates (code, description, cost_hundredths, duration_minutes)
VALUES ('EMAIL', 'Email', 0, 0);

CREATE TABLE settings (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE mailbox_setup (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    security TEXT NOT NULL,
    auth_kind TEXT NOT NULL,
    username TEXT NOT NULL,
    -- A sealed secret (v1:...) or a source (env:, file:, exec:).
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
    enabled BOOLEAN NOT NULL DEFAULT FALSE,
    accepted_by TEXT,
    accepted_at TEXT
);

CREATE TABLE mailbox_leases (
    mailbox TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    seen INTEGER NOT NULL DEFAULT 0,
    logged INTEGER NOT NULL DEFAULT 0,
    duplicate INTEGER NOT NULL DEFAULT 0,
    not_logged INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    entries INTEGER NOT NULL DEFAULT 0,
    reasons TEXT NOT NULL DEFAULT '',
    error TEXT
);

-- One logged message: its N entries point here.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT,
    message_key TEXT NOT NULL,
    subject TEXT NOT NULL,
    sender TEXT,
    sent_at TEXT,
    received_at TEXT NOT NULL,
    date_fallback BOOLEAN NOT NULL,
    size INTEGER NOT NULL,
    storage_folder TEXT,
    storage_uid_validity INTEGER,
    storage_uid INTEGER,
    raw_compressed BLOB,
    created_at TEXT NOT NULL
);
CREATE INDEX messages_key ON messages (message_key);

-- The decision ledger: one row per message seen, that is per copy
-- (mailbox, UIDVALIDITY, UID).
CREATE TABLE decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox TEXT NOT NULL,
    uid_validity INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    message_id TEXT,
    message_key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    sender TEXT,
    subject TEXT,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    entries INTEGER NOT NULL,
    ambiguous BOOLEAN NOT NULL,
    date_fallback BOOLEAN NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT,
    first_seen_at TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    run_id INTEGER,
    message_record_id INTEGER REFERENCES messages (id),
    disposition TEXT,
    UNIQUE (mailbox, uid_validity, uid)
);
-- At most one logged copy per message, whatever happens to the worker.
CREATE UNIQUE INDEX decisions_logged_key ON decisions (message_key) WHERE outcome = 'logged';
CREATE INDEX decisions_outcome_time ON decisions (outcome, decided_at);

CREATE TABLE interaction_entries (
    entry_no INTEGER PRIMARY KEY AUTOINCREMENT,
    message_record_id INTEGER NOT NULL REFERENCES messages (id),
    contact_no TEXT NOT NULL,
    contact_company_no TEXT,
    salesperson_code TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    description TEXT NOT NULL,
    subject TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    initiated_by TEXT NOT NULL CHECK (initiated_by IN ('us', 'them')),
    correspondence_type TEXT NOT NULL,
    template_code TEXT NOT NULL,
    cost_hundredths INTEGER NOT NULL,
    duration_minutes INTEGER NOT NULL,
    email_logged BOOLEAN NOT NULL,
    attempt_failed BOOLEAN NOT NULL,
    canceled BOOLEAN NOT NULL,
    opportunity_no TEXT,
    date_fallback BOOLEAN NOT NULL,
    -- Exactly once, enforced by the database as well as by the worker.
    UNIQUE (message_record_id, salesperson_code, contact_no, direction)
);
CREATE INDEX interaction_entries_occurred ON interaction_entries (occurred_at, entry_no);
-- The log is read newest first, often for one contact, company or
-- salesperson: each filter has an index in that order.
CREATE INDEX interaction_entries_contact ON interaction_entries (contact_no, occurred_at, entry_no);
CREATE INDEX interaction_entries_company ON interaction_entries (contact_company_no, occurred_at, entry_no);
CREATE INDEX interaction_entries_salesperson ON interaction_entries (salesperson_code, occurred_at, entry_no);

CREATE TABLE entry_comments (
    entry_no INTEGER NOT NULL REFERENCES interaction_entries (entry_no) ON DELETE CASCADE,
    line_no INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    comment TEXT NOT NULL,
    PRIMARY KEY (entry_no, line_no)
);
