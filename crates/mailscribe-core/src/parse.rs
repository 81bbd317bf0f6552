//! Parsing the headers of one raw message into what the decision needs.
//!
//! The parser is total: any byte string gives a `ParsedMessage`, with what
//! could not be understood listed in `problems`. Only the header section is
//! parsed, because the decision needs nothing else and a 30 MB attachment
//! should not be decoded just to be ignored.

use chrono::{DateTime, Utc};
use mail_parser::{Address, HeaderName, HeaderValue, MessageParser};
use sha2::{Digest, Sha256};

use crate::address::EmailAddress;
use crate::message_id::{MessageId, MessageKey};

/// What could not be understood in a message. Malformed mail is data: a
/// problem is noted and parsing carries on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseProblem {
    /// No header section at all (empty or binary input).
    NoHeaders,
    /// A `Date:` header is present but not a valid RFC 5322 date.
    UnparseableDate,
    /// No `Date:` header.
    MissingDate,
    /// An address in From, Sender, To or Cc that is not `local@domain`.
    UnusableAddress { field: &'static str, value: String },
    /// Bytes before the first header were skipped (whitespace, an mbox
    /// `From ` line): how many.
    SkippedBeforeHeaders(usize),
}

#[derive(Debug, Clone)]
pub struct ParsedMessage {
    /// First valid mailbox of the first `From` header.
    pub from: Option<EmailAddress>,
    /// First valid mailbox of the first `Sender` header.
    pub sender_header: Option<EmailAddress>,
    pub to: Vec<EmailAddress>,
    pub cc: Vec<EmailAddress>,
    pub message_id: Option<MessageId>,
    /// The full decoded subject; empty when there is none.
    pub subject: String,
    /// The `Date:` header as a UTC instant, when it parses.
    pub date: Option<DateTime<Utc>>,
    /// The raw `Sensitivity:` header value, trimmed.
    pub sensitivity: Option<String>,
    /// SHA-256 of the raw bytes, lowercase hex.
    pub sha256: String,
    pub problems: Vec<ParseProblem>,
}

impl ParsedMessage {
    /// The sender as PRODUCT.md section 2 defines it: `From`, else `Sender`.
    pub fn sender(&self) -> Option<&EmailAddress> {
        self.from.as_ref().or(self.sender_header.as_ref())
    }

    /// The key duplicates are detected on.
    pub fn key(&self) -> MessageKey {
        match &self.message_id {
            Some(id) => MessageKey::MessageId(id.normalised().to_owned()),
            None => MessageKey::Sha256(self.sha256.clone()),
        }
    }

    pub fn has_headers(&self) -> bool {
        !self.problems.contains(&ParseProblem::NoHeaders)
    }

    /// Whether `Sensitivity:` marks the message as private (RFC 2156 values).
    pub fn is_sensitive(&self) -> bool {
        self.sensitivity.as_deref().is_some_and(|value| {
            ["private", "personal", "company-confidential"]
                .iter()
                .any(|marked| value.eq_ignore_ascii_case(marked))
        })
    }
}

pub fn sha256_hex(raw: &[u8]) -> String {
    let digest = Sha256::digest(raw);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    hex
}

/// Where the header section really starts. Real mail sometimes carries
/// junk before its first header: spaces, tabs or blank lines (so that the
/// first header line begins with whitespace), or the `From ` separator line
/// of an mbox file. Strictly that makes the whole message a body; we skip
/// it, as mail clients do. Returns the rest and how many bytes were
/// skipped. A message with no header at all stays without one.
pub fn header_section(raw: &[u8]) -> (&[u8], usize) {
    let skip_blank = |bytes: &[u8]| {
        bytes
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .count()
    };
    let mut start = skip_blank(raw);
    if raw[start..].starts_with(b"From ") {
        // The mbox separator: `From sender date`, one line.
        start += raw[start..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(raw.len() - start, |end| end + 1);
        start += skip_blank(&raw[start..]);
    }
    (&raw[start..], start)
}

pub fn parse_message(raw: &[u8]) -> ParsedMessage {
    let mut parsed = ParsedMessage {
        from: None,
        sender_header: None,
        to: Vec::new(),
        cc: Vec::new(),
        message_id: None,
        subject: String::new(),
        date: None,
        sensitivity: None,
        sha256: sha256_hex(raw),
        problems: Vec::new(),
    };
    // The hash above is of the bytes as the server returns them; parsing
    // starts where the headers do.
    let (raw, skipped) = header_section(raw);
    if skipped > 0 {
        parsed
            .problems
            .push(ParseProblem::SkippedBeforeHeaders(skipped));
    }
    let message = match MessageParser::new().parse_headers(raw) {
        Some(message) if !message.headers().is_empty() => message,
        _ => {
            parsed.problems.push(ParseProblem::NoHeaders);
            return parsed;
        }
    };
    let problems = &mut parsed.problems;

    // PRODUCT.md section 2 reads the first `From`; the same goes for every
    // single-valued header here (mail-parser's own accessors take the last).
    let first_header =
        |name: HeaderName<'static>| message.headers().iter().find(|h| h.name == name);
    let first_raw = |name: HeaderName<'static>| {
        first_header(name).and_then(|h| {
            raw.get(h.offset_start as usize..h.offset_end as usize)
                .map(String::from_utf8_lossy)
        })
    };
    parsed.from =
        first_header(HeaderName::From).and_then(|h| first_mailbox(&h.value, "From", problems));
    parsed.sender_header =
        first_header(HeaderName::Sender).and_then(|h| first_mailbox(&h.value, "Sender", problems));

    for header in message.headers() {
        let (field, target) = match header.name {
            HeaderName::To => ("To", &mut parsed.to),
            HeaderName::Cc => ("Cc", &mut parsed.cc),
            _ => continue,
        };
        if let HeaderValue::Address(address) = &header.value {
            collect_mailboxes(address, field, target, problems);
        }
    }

    parsed.message_id = first_raw(HeaderName::MessageId).and_then(|value| MessageId::parse(&value));
    parsed.subject = first_header(HeaderName::Subject)
        .and_then(|h| h.value.as_text())
        .map(printable)
        .unwrap_or_default();
    parsed.sensitivity = first_raw(HeaderName::Sensitivity)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty());

    match first_header(HeaderName::Date) {
        None => problems.push(ParseProblem::MissingDate),
        Some(header) => match header.value.as_datetime() {
            Some(date) if date.is_valid() => {
                parsed.date = DateTime::from_timestamp(date.to_timestamp(), 0);
                if parsed.date.is_none() {
                    problems.push(ParseProblem::UnparseableDate);
                }
            }
            _ => problems.push(ParseProblem::UnparseableDate),
        },
    }
    parsed
}

/// Control characters (NUL above all, which PostgreSQL text refuses) become
/// spaces: a subject is for people to read.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn first_mailbox(
    value: &HeaderValue<'_>,
    field: &'static str,
    problems: &mut Vec<ParseProblem>,
) -> Option<EmailAddress> {
    let mut found = Vec::new();
    if let HeaderValue::Address(address) = value {
        collect_mailboxes(address, field, &mut found, problems);
    }
    found.into_iter().next()
}

fn collect_mailboxes(
    address: &Address<'_>,
    field: &'static str,
    target: &mut Vec<EmailAddress>,
    problems: &mut Vec<ParseProblem>,
) {
    for addr in address.iter() {
        let Some(text) = addr.address() else { continue };
        match EmailAddress::parse(text) {
            Ok(parsed) => {
                if !target.contains(&parsed) {
                    target.push(parsed);
                }
            }
            Err(_) => problems.push(ParseProblem::UnusableAddress {
                field,
                value: text.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
