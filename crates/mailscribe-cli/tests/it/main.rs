//! The `mailscribe` binary end to end: real Dovecot, real SQLite and
//! PostgreSQL, real processes (killed, for the crash tests).

mod accounts;
mod business_central;
mod contract;
mod corpus;
mod crash;
mod exchange_script;
mod faults;
mod harness;
mod mailboxes;
mod postfix;
mod scenarios;
mod secret_binding;
mod secrets;
mod sso;
mod tidy;
mod web_setup;
