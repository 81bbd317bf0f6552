-- Word-prefix search in subjects: the 'simple' configuration (lower case,
-- no stemming), as SQLite's FTS5 unicode61 tokenizer does.

CREATE INDEX interaction_entries_subject_search
    ON interaction_entries USING GIN (to_tsvector('simple', subject));
