-- Fewer index writes for every logged message (the queue's hot path).
--
-- messages_key served no query: messages are reached by id, and a key is
-- looked up in the ledger (decisions_logged_key).
DROP INDEX messages_key;

-- Only entries imported from Business Central carry an entry number; mail
-- entries (all the others) no longer add a NULL to this index. An upsert
-- names the same predicate in its ON CONFLICT target.
DROP INDEX interaction_entries_bc_entry_no;
CREATE UNIQUE INDEX interaction_entries_bc_entry_no ON interaction_entries (bc_entry_no)
    WHERE bc_entry_no IS NOT NULL;
