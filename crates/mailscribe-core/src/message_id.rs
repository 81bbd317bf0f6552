//! `MessageId` and the duplicate key derived from it.

use std::fmt;

/// A Message-ID header as written (angle brackets included) and its
/// normalised form, which is what duplicates are compared on.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageId {
    as_written: String,
    normalised: String,
}

impl MessageId {
    /// Normalisation (PRODUCT.md section 2): trim, drop RFC 5322 comments,
    /// drop the angle brackets. Comparison stays case-sensitive. Returns
    /// `None` when nothing is left.
    pub fn parse(header_value: &str) -> Option<MessageId> {
        let as_written = header_value.trim();
        let without_comments = strip_comments(as_written);
        let mut id = without_comments.trim();
        if let Some(start) = id.find('<') {
            let rest = &id[start + 1..];
            id = match rest.find('>') {
                Some(end) => &rest[..end],
                None => rest,
            };
        }
        let normalised = id.trim();
        if normalised.is_empty() || normalised.chars().any(char::is_control) {
            return None;
        }
        Some(MessageId {
            as_written: crate::parse::printable(as_written),
            normalised: normalised.to_owned(),
        })
    }

    pub fn as_written(&self) -> &str {
        &self.as_written
    }

    pub fn normalised(&self) -> &str {
        &self.normalised
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.as_written)
    }
}

/// Removes parenthesised comments, which may nest (RFC 5322 section 3.2.2).
fn strip_comments(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut depth = 0usize;
    let mut escaped = false;
    for c in input.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' if depth > 0 => escaped = true,
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// What duplicates are detected on: the normalised Message-ID, or the
/// SHA-256 of the raw bytes when the message has none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageKey {
    MessageId(String),
    Sha256(String),
}

impl MessageKey {
    /// The form stored in the ledger. The prefixes keep the two spaces apart:
    /// a Message-ID that happens to look like a hash never collides with one.
    pub fn to_storage(&self) -> String {
        match self {
            MessageKey::MessageId(id) => format!("mid:{id}"),
            MessageKey::Sha256(hex) => format!("sha256:{hex}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        let cases: &[(&str, Option<&str>)] = &[
            ("<abc@example.com>", Some("abc@example.com")),
            ("  <abc@example.com>  ", Some("abc@example.com")),
            (
                "(comment) <abc@example.com> (another (nested))",
                Some("abc@example.com"),
            ),
            ("abc@example.com", Some("abc@example.com")),
            ("<ABC@Example.com>", Some("ABC@Example.com")),
            ("<>", None),
            ("", None),
            ("(only a comment)", None),
            ("<unterminated@x", Some("unterminated@x")),
        ];
        for (input, expected) in cases {
            let got = MessageId::parse(input);
            assert_eq!(
                got.as_ref().map(MessageId::normalised),
                *expected,
                "input {input:?}"
            );
        }
        assert_eq!(
            MessageId::parse(" <abc@example.com> ")
                .unwrap()
                .as_written(),
            "<abc@example.com>"
        );
    }
}
