-- Privacy-blocked contacts: their mail is never logged, and no
-- opportunity is made for them.
ALTER TABLE contacts ADD COLUMN privacy_blocked BOOLEAN NOT NULL DEFAULT FALSE;
