-- Word-prefix search in subjects: FTS5 with the unicode61 tokenizer, no
-- stemming, accents kept (as PostgreSQL's 'simple' configuration does).

CREATE VIRTUAL TABLE entry_subjects USING fts5(
    subject,
    content = 'interaction_entries',
    content_rowid = 'entry_no',
    tokenize = 'unicode61 remove_diacritics 0'
);

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

INSERT INTO entry_subjects (entry_subjects) VALUES ('rebuild');
