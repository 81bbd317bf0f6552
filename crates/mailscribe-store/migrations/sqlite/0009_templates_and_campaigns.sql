-- Templates as in Business Central: an interaction group and an optional
-- campaign, copied to every entry made with the template; and a minimal
-- campaign record.
ALTER TABLE interaction_templates ADD COLUMN interaction_group TEXT;
ALTER TABLE interaction_templates ADD COLUMN campaign_no TEXT;
ALTER TABLE interaction_entries ADD COLUMN interaction_group TEXT;
ALTER TABLE interaction_entries ADD COLUMN campaign_no TEXT;

CREATE TABLE campaigns (
    no TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    -- YYYY-MM-DD, or NULL when open-ended.
    starts_on TEXT,
    ends_on TEXT
);
