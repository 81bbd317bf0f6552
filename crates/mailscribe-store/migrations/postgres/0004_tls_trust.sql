-- Which certificate authorities the IMAP connection trusts: the bundled
-- Mozilla roots, or the operating system's store ('bundled' or 'system').
ALTER TABLE mailbox_setup ADD COLUMN tls_trust TEXT NOT NULL DEFAULT 'bundled';
