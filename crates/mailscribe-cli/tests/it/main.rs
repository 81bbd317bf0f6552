//! The `mailscribe` binary end to end: real Dovecot, real SQLite and
//! PostgreSQL, real processes (killed, for the crash tests).

mod accounts;
mod crash;
mod faults;
mod corpus;
mod harness;
mod mailboxes;
mod postfix;
mod secrets;
mod scenarios;
mod tidy;
mod web_setup;
