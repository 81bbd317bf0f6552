//! The `mailscribe` binary end to end: real Dovecot, real SQLite and
//! PostgreSQL, real processes (killed, for the crash tests).

mod accounts;
mod corpus;
mod crash;
mod faults;
mod harness;
mod mailboxes;
mod postfix;
mod scenarios;
mod secret_binding;
mod secrets;
mod tidy;
mod web_setup;
