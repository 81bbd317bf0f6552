-- Entries imported from Business Central's Interaction Log Entries: they
-- have no message record, and keep Business Central's entry number, which
-- makes a second import of the same file add nothing.
ALTER TABLE interaction_entries ALTER COLUMN message_record_id DROP NOT NULL;
ALTER TABLE interaction_entries ADD COLUMN bc_entry_no BIGINT;
CREATE UNIQUE INDEX interaction_entries_bc_entry_no ON interaction_entries (bc_entry_no);
