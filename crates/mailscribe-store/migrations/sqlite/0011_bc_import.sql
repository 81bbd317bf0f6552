-- Entries imported from Business Central's Interaction Log Entries: they
-- have no message record, and keep Business Central's entry number, which
-- makes a second import of the same file add nothing.
--
-- SQLite cannot drop a NOT NULL constraint, so the table is rebuilt. sqlx
-- runs every SQLite migration in a transaction, where foreign keys cannot
-- be switched off: dropping the old table deletes the comments through
-- their ON DELETE CASCADE, so they are kept aside and put back. Dropping a
-- table fires none of its triggers; they and the indexes are made again.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE entry_comments_kept AS SELECT * FROM entry_comments;

CREATE TABLE interaction_entries_rebuilt (
    entry_no INTEGER PRIMARY KEY AUTOINCREMENT,
    message_record_id INTEGER REFERENCES messages (id),
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
    mailbox_name TEXT NOT NULL DEFAULT 'default',
    run_id INTEGER,
    interaction_group TEXT,
    campaign_no TEXT,
    bc_entry_no INTEGER,
    -- Exactly once, enforced by the database as well as by the worker.
    UNIQUE (message_record_id, salesperson_code, contact_no, direction)
);

INSERT INTO interaction_entries_rebuilt (
    entry_no, message_record_id, contact_no, contact_company_no, salesperson_code, occurred_at, description,
    subject, direction, initiated_by, correspondence_type, template_code, cost_hundredths, duration_minutes,
    email_logged, attempt_failed, canceled, opportunity_no, date_fallback, mailbox_name, run_id,
    interaction_group, campaign_no
)
SELECT
    entry_no, message_record_id, contact_no, contact_company_no, salesperson_code, occurred_at, description,
    subject, direction, initiated_by, correspondence_type, template_code, cost_hundredths, duration_minutes,
    email_logged, attempt_failed, canceled, opportunity_no, date_fallback, mailbox_name, run_id,
    interaction_group, campaign_no
FROM interaction_entries;

-- Keeps AUTOINCREMENT from handing out numbers of entries deleted before.
INSERT INTO sqlite_sequence (name, seq)
SELECT 'interaction_entries_rebuilt', 0
WHERE EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'interaction_entries')
  AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'interaction_entries_rebuilt');
UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = 'interaction_entries')
WHERE name = 'interaction_entries_rebuilt'
  AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'interaction_entries');

DROP TABLE interaction_entries;
ALTER TABLE interaction_entries_rebuilt RENAME TO interaction_entries;

INSERT INTO entry_comments SELECT * FROM entry_comments_kept;
DROP TABLE entry_comments_kept;

CREATE INDEX interaction_entries_occurred ON interaction_entries (occurred_at, entry_no);
CREATE INDEX interaction_entries_contact ON interaction_entries (contact_no, occurred_at, entry_no);
CREATE INDEX interaction_entries_company ON interaction_entries (contact_company_no, occurred_at, entry_no);
CREATE INDEX interaction_entries_salesperson ON interaction_entries (salesperson_code, occurred_at, entry_no);
CREATE INDEX interaction_entries_mailbox ON interaction_entries (mailbox_name, occurred_at, entry_no);
CREATE UNIQUE INDEX interaction_entries_bc_entry_no ON interaction_entries (bc_entry_no);

CREATE TRIGGER interaction_entries_subject_insert AFTER INSERT ON interaction_entries BEGIN
    INSERT INTO entry_subjects (rowid, subject) VALUES (new.entry_no, new.subject);
END;

CREATE TRIGGER interaction_entries_subject_delete AFTER DELETE ON interaction_entries BEGIN
    INSERT INTO entry_subjects (entry_subjects, rowid, subject) VALUES ('delete', old.entry_no, old.subject);
END;

CREATE TRIGGER interaction_entries_subject_update AFTER UPDATE OF subject ON interaction_entries BEGIN
    INSERT INTO entry_subjects (entry_subjects, rowid, subject) VALUES ('delete', old.entry_no, old.subject);
    INSERT INTO entry_subjects (rowid, subject) VALUES (new.entry_no, new.subject);
END;
