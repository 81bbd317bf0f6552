//! The pure domain of Mailscribe: addresses, message ids, the directory of
//! salespeople and contacts, message parsing and the decision table.
//!
//! Invariant: nothing in this crate does I/O. No sockets, no files, no clock,
//! no database. Every function here is a function of its arguments, which is
//! what makes the decision table testable from a table of cases.

pub mod access;
pub mod address;
pub mod bc_interactions;
pub mod check;
pub mod decision;
pub mod directory;
pub mod import;
pub mod mailbox;
pub mod message_id;
pub mod message_view;
pub mod money;
pub mod parse;
pub mod password;
pub mod setup;
pub mod signin_throttle;
pub mod sso;

pub use access::{Restriction, Role, RoleError, User};
pub use address::{AddressError, EmailAddress};
pub use bc_interactions::{BcInteraction, BcInteractionFile, BcReadOptions, read_bc_interactions};
pub use check::{CheckLine, CheckStatus};
pub use decision::{
    Decision, DecisionInput, Direction, ErrorClass, InitiatedBy, Outcome, PlannedEntry, Reason,
    decide,
};
pub use directory::{
    AddressOwners, CodeError, Contact, ContactKind, ContactNo, ContactRef, DirectoryView,
    Salesperson, SalespersonCode,
};
pub use mailbox::{MailboxName, MailboxNameError};
pub use message_id::{MessageId, MessageKey};
pub use money::{Amount, AmountError};
pub use parse::{ParseProblem, ParsedMessage, parse_message};
pub use password::{WeakPassword, check_new_password};
pub use setup::{
    AuthKind, Enablement, InteractionTemplate, MailboxSetup, OAuthSetup, SealedSecret, SecretRef,
    SecretRefError, Security, SettingError, Settings, StorageMode, TargetChanged, TlsTrust,
    TokenUrlError, WebSecretPolicy, check_token_url, data_statement, may_reuse_kept_secrets,
};
pub use sso::{RoleMapping, SsoConfig, SsoConfigError};
