//! `EmailAddress`: a `local@domain` mailbox, normalised for matching.

use std::fmt;

/// RFC 5321 section 4.5.3.1.3: a path is at most 256 octets including the
/// angle brackets, so an address is at most 254. Longer ones never match.
pub const MAX_ADDRESS_LEN: usize = 254;

/// Longer header values are not taken for addresses at all.
const MAX_PARSED_LEN: usize = 1024;

/// A mailbox address as used for matching: trimmed and lower-cased as a
/// whole. The original casing is not kept because matching ignores case on
/// the whole address (PRODUCT.md section 2), and the directory stores the
/// same normal form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the address is empty")]
    Empty,
    #[error("the address is longer than {MAX_ADDRESS_LEN} characters")]
    TooLong,
    #[error("'{0}' is not of the form local@domain")]
    NotAMailbox(String),
}

impl EmailAddress {
    pub fn parse(input: &str) -> Result<EmailAddress, AddressError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(AddressError::Empty);
        }
        if trimmed.len() > MAX_PARSED_LEN {
            return Err(AddressError::TooLong);
        }
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err(AddressError::NotAMailbox(trimmed.to_owned()));
        };
        let is_bad_char = |c: char| c.is_whitespace() || c.is_control() || c == '<' || c == '>';
        if local.is_empty()
            || domain.is_empty()
            || domain.contains('@')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || trimmed.chars().any(is_bad_char)
        {
            return Err(AddressError::NotAMailbox(trimmed.to_owned()));
        }
        Ok(EmailAddress(trimmed.to_lowercase()))
    }

    /// A directory entry: like `parse`, but refuses what could never match.
    pub fn parse_matchable(input: &str) -> Result<EmailAddress, AddressError> {
        let address = EmailAddress::parse(input)?;
        if !address.can_match() {
            return Err(AddressError::TooLong);
        }
        Ok(address)
    }

    /// Addresses longer than RFC 5321 allows are kept (a sender with one is
    /// still a sender) but never match anyone.
    pub fn can_match(&self) -> bool {
        self.0.len() <= MAX_ADDRESS_LEN
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_rejects() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("  Alice@Example.COM ", Ok("alice@example.com")),
            ("a@b", Ok("a@b")),
            ("\"quoted local\"@x.org", Err(())),
            ("no-at-sign", Err(())),
            ("@example.com", Err(())),
            ("user@", Err(())),
            ("", Err(())),
            ("a b@c.d", Err(())),
            ("<a@b.c>", Err(())),
            ("a@.example.com", Err(())),
        ];
        for (input, expected) in cases {
            let got = EmailAddress::parse(input)
                .map(|a| a.as_str().to_owned())
                .map_err(|_| ());
            assert_eq!(got, expected.map(str::to_owned), "input {input:?}");
        }
    }

    #[test]
    fn length_limit_is_254() {
        let domain = "example.com";
        let local_254 = "a".repeat(MAX_ADDRESS_LEN - domain.len() - 1);
        assert!(EmailAddress::parse(&format!("{local_254}@{domain}")).is_ok());
        let local_255 = "a".repeat(MAX_ADDRESS_LEN - domain.len());
        let long = EmailAddress::parse(&format!("{local_255}@{domain}")).unwrap();
        assert!(!long.can_match());
        assert_eq!(
            EmailAddress::parse_matchable(long.as_str()),
            Err(AddressError::TooLong)
        );
        assert!(EmailAddress::parse_matchable(&format!("{local_254}@{domain}")).is_ok());
        assert_eq!(
            EmailAddress::parse(&"a".repeat(2000)),
            Err(AddressError::TooLong)
        );
    }
}
