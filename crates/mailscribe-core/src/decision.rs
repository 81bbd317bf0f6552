//! The decision table of PRODUCT.md section 2, as one pure function.
//!
//! The worker gathers what the table needs (the parsed headers, the `\Draft`
//! flag, the directory entries of the addresses involved, and whether an
//! earlier copy with the same key was logged) and `decide` returns the
//! outcome, the reason code and the entries to write. Nothing here knows
//! about IMAP or SQL.

use std::fmt;
use std::str::FromStr;

use crate::directory::{ContactRef, DirectoryView, SalespersonCode};
use crate::parse::ParsedMessage;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Logged,
    Duplicate,
    NotLogged,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Logged => "logged",
            Outcome::Duplicate => "duplicate",
            Outcome::NotLogged => "not_logged",
            Outcome::Failed => "failed",
        }
    }

    /// Logged and duplicate copies go to the storage folder; the others do
    /// not (PRODUCT.md section 3).
    pub fn goes_to_storage(self) -> bool {
        matches!(self, Outcome::Logged | Outcome::Duplicate)
    }
}

/// Why a message failed. Only `Fetch`, `Parse` and `Store` are errors in the
/// message itself and count as attempts; infrastructure errors never reach
/// the ledger as a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The server listed the message but would not return its bytes.
    Fetch,
    /// The bytes have no header section.
    Parse,
    /// The database refused this message's data.
    Store,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Draft,
    NoSender,
    NoRecipients,
    Sensitive,
    Duplicate,
    Logged,
    NoCounterpart,
    UnknownSender,
    /// Counterparts were found, and every one is a privacy-blocked contact.
    PrivacyBlocked,
    Error(ErrorClass),
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::Logged,
        Reason::Duplicate,
        Reason::Draft,
        Reason::NoSender,
        Reason::NoRecipients,
        Reason::Sensitive,
        Reason::NoCounterpart,
        Reason::UnknownSender,
        Reason::PrivacyBlocked,
        Reason::Error(ErrorClass::Fetch),
        Reason::Error(ErrorClass::Parse),
        Reason::Error(ErrorClass::Store),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Draft => "draft",
            Reason::NoSender => "no_sender",
            Reason::NoRecipients => "no_recipients",
            Reason::Sensitive => "sensitive",
            Reason::Duplicate => "duplicate",
            Reason::Logged => "logged",
            Reason::NoCounterpart => "no_counterpart",
            Reason::UnknownSender => "unknown_sender",
            Reason::PrivacyBlocked => "privacy_blocked",
            Reason::Error(ErrorClass::Fetch) => "error:fetch",
            Reason::Error(ErrorClass::Parse) => "error:parse",
            Reason::Error(ErrorClass::Store) => "error:store",
        }
    }

    pub fn outcome(self) -> Outcome {
        match self {
            Reason::Logged => Outcome::Logged,
            Reason::Duplicate => Outcome::Duplicate,
            Reason::Error(_) => Outcome::Failed,
            _ => Outcome::NotLogged,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reason code '{0}'")]
pub struct UnknownReason(String);

impl FromStr for Reason {
    type Err = UnknownReason;

    fn from_str(s: &str) -> Result<Reason, UnknownReason> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownReason(s.to_owned()))
    }
}

/// Information flow of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InitiatedBy {
    Us,
    Them,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            _ => None,
        }
    }

    /// Outbound mail is initiated by us, inbound by them: this is how BC
    /// fills "Initiated By" for logged mail.
    pub fn initiated_by(self) -> InitiatedBy {
        match self {
            Direction::Outbound => InitiatedBy::Us,
            Direction::Inbound => InitiatedBy::Them,
        }
    }
}

impl InitiatedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            InitiatedBy::Us => "us",
            InitiatedBy::Them => "them",
        }
    }
}

/// One interaction log entry to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEntry {
    pub direction: Direction,
    pub salesperson: SalespersonCode,
    pub contact: ContactRef,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub reason: Reason,
    pub entries: Vec<PlannedEntry>,
    /// An address matched more than one contact and the lowest number won.
    pub ambiguous: bool,
}

impl Decision {
    pub fn outcome(&self) -> Outcome {
        self.reason.outcome()
    }

    fn not(reason: Reason) -> Decision {
        Decision {
            reason,
            entries: Vec::new(),
            ambiguous: false,
        }
    }
}

pub struct DecisionInput<'a> {
    pub message: &'a ParsedMessage,
    /// The copy carries the IMAP `\Draft` flag.
    pub is_draft: bool,
    /// The sensitivity rule setting (on by default).
    pub skip_sensitive: bool,
    /// An earlier copy with the same key has the outcome `logged`.
    pub already_logged: bool,
    pub directory: &'a DirectoryView,
}

/// The first row of the table that applies decides.
pub fn decide(input: &DecisionInput<'_>) -> Decision {
    let message = input.message;
    if !message.has_headers() {
        return Decision::not(Reason::Error(ErrorClass::Parse));
    }
    if input.is_draft {
        return Decision::not(Reason::Draft);
    }
    let Some(sender) = message.sender() else {
        return Decision::not(Reason::NoSender);
    };
    if message.to.is_empty() && message.cc.is_empty() {
        return Decision::not(Reason::NoRecipients);
    }
    if input.skip_sensitive && message.is_sensitive() {
        return Decision::not(Reason::Sensitive);
    }
    if input.already_logged {
        return Decision::not(Reason::Duplicate);
    }

    let directory = input.directory;
    let recipients = || message.to.iter().chain(message.cc.iter());

    // The sender is resolved once, salespeople first; only that role's row
    // can apply.
    if let Some(salesperson) = directory.salesperson(sender) {
        let mut decision = Decision::not(Reason::NoCounterpart);
        let mut blocked = false;
        for recipient in recipients() {
            // Salespeople among the recipients are ignored on outbound mail.
            if directory.salesperson(recipient).is_some() {
                continue;
            }
            let Some((contact, ambiguous)) = directory.contact(recipient) else {
                continue;
            };
            // A privacy-blocked contact is never logged, whatever else is.
            if directory.is_privacy_blocked(&contact.no) {
                blocked = true;
                continue;
            }
            decision.ambiguous |= ambiguous;
            if decision.entries.iter().any(|e| e.contact.no == contact.no) {
                continue;
            }
            decision.entries.push(PlannedEntry {
                direction: Direction::Outbound,
                salesperson: salesperson.clone(),
                contact: contact.clone(),
            });
        }
        if !decision.entries.is_empty() {
            decision.reason = Reason::Logged;
        } else {
            decision.ambiguous = false;
            if blocked {
                decision.reason = Reason::PrivacyBlocked;
            }
        }
        return decision;
    }

    if let Some((contact, sender_ambiguous)) = directory.contact(sender) {
        let mut decision = Decision::not(Reason::NoCounterpart);
        for recipient in recipients() {
            // Other contacts among the recipients are ignored on inbound mail.
            let Some(salesperson) = directory.salesperson(recipient) else {
                continue;
            };
            if decision
                .entries
                .iter()
                .any(|e| &e.salesperson == salesperson)
            {
                continue;
            }
            decision.entries.push(PlannedEntry {
                direction: Direction::Inbound,
                salesperson: salesperson.clone(),
                contact: contact.clone(),
            });
        }
        if !decision.entries.is_empty() {
            if directory.is_privacy_blocked(&contact.no) {
                // Every entry would be for the blocked contact.
                return Decision::not(Reason::PrivacyBlocked);
            }
            decision.reason = Reason::Logged;
            decision.ambiguous = sender_ambiguous;
        }
        return decision;
    }

    Decision::not(Reason::UnknownSender)
}

#[cfg(test)]
mod tests;
