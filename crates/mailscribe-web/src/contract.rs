//! The API's input rules, each stated once: the JSON Schema the OpenAPI
//! document publishes and the check the handlers apply are written side by
//! side, so that what the document allows the server takes and what it
//! forbids the server refuses (issue 10, item 10; Schemathesis checks both
//! directions).
//!
//! The checks run before the core parsers and are never looser than them,
//! so a value that passes here is also accepted by `mailscribe_core`.

use crate::error::ErrorKind;

/// `mailscribe_core`'s longest contact number or salesperson code.
const MAX_CODE_CHARS: usize = 50;

/// Rust's `char::is_whitespace` (Unicode White_Space), as a character
/// class body: what `str::trim` removes.
const WHITE_SPACE: &str = r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// A text with at least one character that is not white space.
pub(crate) fn non_blank_schema(max_chars: Option<usize>) -> serde_json::Value {
    let mut schema = serde_json::json!({ "type": "string", "minLength": 1, "pattern": format!("[^{WHITE_SPACE}]") });
    if let Some(max) = max_chars {
        schema["maxLength"] = max.into();
    }
    schema
}

pub(crate) fn check_non_blank(
    field: &str,
    text: &str,
    max_chars: Option<usize>,
) -> Result<(), ErrorKind> {
    if text.trim().is_empty() {
        return Err(ErrorKind::BadRequest(format!("{field} must not be empty")));
    }
    if let Some(max) = max_chars
        && text.chars().count() > max
    {
        return Err(ErrorKind::BadRequest(format!(
            "{field} has at most {max} characters"
        )));
    }
    Ok(())
}

/// A contact number or salesperson code as the API takes it: 1 to 50
/// characters, no control characters, no white space at either end (so
/// the stored code is exactly the one in the URL).
pub(crate) fn code_schema() -> serde_json::Value {
    let control = r"\u0000-\u001f\u007f-\u009f";
    let edge = format!("[^{control}{WHITE_SPACE}]");
    serde_json::json!({
        "type": "string", "minLength": 1, "maxLength": MAX_CODE_CHARS,
        "pattern": format!("^{edge}([^{control}]*{edge})?$")
    })
}

pub(crate) fn check_code(field: &str, code: &str) -> Result<(), ErrorKind> {
    let n_chars = code.chars().count();
    let ok = (1..=MAX_CODE_CHARS).contains(&n_chars)
        && !code.chars().any(char::is_control)
        && code.trim() == code;
    if ok {
        Ok(())
    } else {
        Err(ErrorKind::BadRequest(format!(
            "{field} must be 1 to {MAX_CODE_CHARS} characters, without control characters or white space at either end"
        )))
    }
}

/// An email address as the API takes it: a plain ASCII `local@domain`, a
/// subset of what `EmailAddress::parse_matchable` accepts.
pub(crate) fn address_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "string", "maxLength": 254,
        "pattern": r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$"
    })
}

pub(crate) fn check_address(address: &str) -> Result<(), ErrorKind> {
    let local_char = |c: char| c.is_ascii_alphanumeric() || "._%+'-".contains(c);
    let label_ok = |label: &str| {
        !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let ok = address.len() <= 254
        && address.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && local.chars().all(local_char) && domain.split('.').all(label_ok)
        });
    if ok {
        Ok(())
    } else {
        Err(ErrorKind::BadRequest(format!(
            "'{address}' is not an address like name@example.com"
        )))
    }
}

/// An amount: digits, optionally a point and one or two more.
pub(crate) fn amount_schema(nullable: bool) -> serde_json::Value {
    serde_json::json!({
        "type": "string", "nullable": nullable, "pattern": r"^[0-9]{1,15}(\.[0-9]{1,2})?$",
        "description": "Decimal, e.g. 1200.50"
    })
}

pub(crate) fn check_amount(field: &str, text: &str) -> Result<mailscribe_core::Amount, ErrorKind> {
    let refused = || ErrorKind::BadRequest(format!("{field} must be an amount like 1200.50"));
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "00"));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !(1..=15).contains(&whole.len())
        || !(1..=2).contains(&fraction.len())
        || !digits(whole)
        || !digits(fraction)
    {
        return Err(refused());
    }
    text.parse().map_err(|_| refused())
}

/// A mailbox name: `MailboxName`'s characters and length.
pub(crate) fn mailbox_schema() -> serde_json::Value {
    serde_json::json!({ "type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$" })
}

pub(crate) fn check_mailbox(field: &str, name: &str) -> Result<(), ErrorKind> {
    let ok = (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ErrorKind::BadRequest(format!(
            "{field} is 1 to 40 letters, digits, - or _"
        )))
    }
}

/// A day, `YYYY-MM-DD` (RFC 3339 `full-date`), in the configured time zone.
pub(crate) fn date_schema(description: &str) -> serde_json::Value {
    serde_json::json!({ "type": "string", "format": "date", "description": description })
}

pub(crate) fn check_date(field: &str, text: &str) -> Result<(), ErrorKind> {
    let shape = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
        && &text[..4] != "0000";
    if shape && chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() {
        Ok(())
    } else {
        Err(ErrorKind::BadRequest(format!(
            "{field} must be a date like 2026-03-31"
        )))
    }
}
