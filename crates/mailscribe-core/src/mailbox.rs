//! Mailbox names: the label under which one queue mailbox is set up.
//!
//! A name is ASCII letters, digits, `-` and `_`, 1 to 40 characters, and
//! compares case-insensitively. A copy's identity never uses the name (it is
//! the mailbox key, `user@host:port/queue`), so a name is only a label.

use std::fmt;
use std::str::FromStr;

/// A parsed mailbox name. Equality and hashing ignore case; `as_str` keeps
/// the case it was written with.
#[derive(Clone)]
pub struct MailboxName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxNameError {
    #[error("a mailbox name has 1 to 40 characters")]
    Length,
    #[error(
        "a mailbox name may only hold ASCII letters, digits, '-' and '_' ('{0}' is not allowed)"
    )]
    Character(char),
    #[error("'{0}' is reserved for intake that is not an IMAP queue; choose another mailbox name")]
    Reserved(String),
}

impl MailboxName {
    /// The name the setup that existed before mailboxes had names became.
    pub const DEFAULT: &'static str = "default";
    /// Reserved for later kinds of intake (and `all` for "every mailbox").
    pub const RESERVED: [&'static str; 4] = ["all", "import", "lmtp", "smtp"];

    pub fn parse(text: &str) -> Result<MailboxName, MailboxNameError> {
        let text = text.trim();
        if text.is_empty() || text.len() > 40 {
            return Err(MailboxNameError::Length);
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(MailboxNameError::Character(bad));
        }
        if Self::RESERVED.iter().any(|r| r.eq_ignore_ascii_case(text)) {
            return Err(MailboxNameError::Reserved(text.to_owned()));
        }
        Ok(MailboxName(text.to_owned()))
    }

    pub fn default_name() -> MailboxName {
        MailboxName(Self::DEFAULT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        self.0.eq_ignore_ascii_case(Self::DEFAULT)
    }

    /// The form names are compared and stored by in unique indexes.
    pub fn folded(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl PartialEq for MailboxName {
    fn eq(&self, other: &MailboxName) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for MailboxName {}

impl std::hash::Hash for MailboxName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.folded().hash(state);
    }
}

impl PartialOrd for MailboxName {
    fn partial_cmp(&self, other: &MailboxName) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MailboxName {
    fn cmp(&self, other: &MailboxName) -> std::cmp::Ordering {
        self.folded().cmp(&other.folded())
    }
}

impl FromStr for MailboxName {
    type Err = MailboxNameError;
    fn from_str(text: &str) -> Result<MailboxName, MailboxNameError> {
        MailboxName::parse(text)
    }
}

impl fmt::Display for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailboxName({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let cases: &[(&str, Result<&str, MailboxNameError>)] = &[
            ("default", Ok("default")),
            (" EU-sales_2 ", Ok("EU-sales_2")),
            ("", Err(MailboxNameError::Length)),
            (&"a".repeat(40), Ok(&"a".repeat(40))),
            (&"a".repeat(41), Err(MailboxNameError::Length)),
            ("eu sales", Err(MailboxNameError::Character(' '))),
            ("ventes-é", Err(MailboxNameError::Character('é'))),
            ("a/b", Err(MailboxNameError::Character('/'))),
            ("ALL", Err(MailboxNameError::Reserved("ALL".into()))),
            ("lmtp", Err(MailboxNameError::Reserved("lmtp".into()))),
            ("smtp", Err(MailboxNameError::Reserved("smtp".into()))),
            ("import", Err(MailboxNameError::Reserved("import".into()))),
        ];
        for (input, expected) in cases {
            let parsed = MailboxName::parse(input);
            assert_eq!(
                parsed
                    .as_ref()
                    .map(MailboxName::as_str)
                    .map_err(Clone::clone),
                expected.clone(),
                "{input:?}"
            );
        }
    }

    #[test]
    fn compares_without_case() {
        let a = MailboxName::parse("Nordic").unwrap();
        let b = MailboxName::parse("NORDIC").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "Nordic");
        assert!(MailboxName::parse("Default").unwrap().is_default());
        let set: std::collections::HashSet<MailboxName> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
    }
}
