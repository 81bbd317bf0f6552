-- Users of the web app and the API, their sessions and tokens.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'user', 'salesperson')),
    salesperson_code TEXT,
    created_at TEXT NOT NULL
);

-- Only hashes of session and API tokens are stored: a copy of the
-- database does not let anyone in.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);

-- The one-time link that creates the first admin.
CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    expires_at TEXT NOT NULL
);

-- Sales opportunities, made from an interaction log entry or by hand.
CREATE TABLE opportunities (
    no TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    contact_no TEXT,
    contact_company_no TEXT,
    salesperson_code TEXT,
    status TEXT NOT NULL CHECK (status IN ('not_started', 'in_progress', 'won', 'lost')),
    estimated_value_hundredths INTEGER,
    created_at TEXT NOT NULL
);
CREATE INDEX opportunities_salesperson ON opportunities (salesperson_code);

CREATE TABLE opportunity_comments (
    opportunity_no TEXT NOT NULL REFERENCES opportunities (no) ON DELETE CASCADE,
    line_no INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    comment TEXT NOT NULL,
    PRIMARY KEY (opportunity_no, line_no)
);

INSERT INTO sequences (name, value) VALUES ('opportunity_no', 0);
