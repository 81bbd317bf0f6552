-- Which run wrote an entry (Business Central records the job's user on
-- each entry; a run says more). Entries logged before this migration get
-- the run of the decision that logged their message.
ALTER TABLE interaction_entries ADD COLUMN run_id INTEGER;
UPDATE interaction_entries SET run_id = (
    SELECT d.run_id FROM decisions d
    WHERE d.message_record_id = interaction_entries.message_record_id AND d.outcome = 'logged'
    ORDER BY d.id LIMIT 1
);
