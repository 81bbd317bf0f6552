-- Security-relevant events: sign-ins, account and token changes, setup
-- changes, enabling and disabling, clearing, imports and deletions.
-- Rows name people by user name, contact number or salesperson code, never
-- by e-mail address or personal name, so that erasing a person later needs
-- no change here. The application only ever appends.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    client_address TEXT,
    event TEXT NOT NULL,
    target TEXT,
    detail TEXT
);
CREATE INDEX audit_log_event ON audit_log (event, id);
