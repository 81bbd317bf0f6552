//! The directory: salespeople and contacts as the decision table sees them.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

use crate::address::EmailAddress;

/// Codes and numbers are at most this long. BC used 20; our users import
/// from other systems, so we allow more, but not unbounded.
pub const MAX_CODE_LEN: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("the value is empty")]
    Empty,
    #[error("'{0}' is longer than {MAX_CODE_LEN} characters")]
    TooLong(String),
    #[error("'{0}' contains a control character")]
    ControlCharacter(String),
}

fn parse_code(input: &str) -> Result<String, CodeError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(CodeError::Empty);
    }
    if trimmed.chars().count() > MAX_CODE_LEN {
        return Err(CodeError::TooLong(trimmed.to_owned()));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(CodeError::ControlCharacter(trimmed.to_owned()));
    }
    Ok(trimmed.to_owned())
}

/// A salesperson's code, stored and exported exactly as written (trimmed).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SalespersonCode(String);

impl SalespersonCode {
    pub fn parse(input: &str) -> Result<SalespersonCode, CodeError> {
        parse_code(input).map(SalespersonCode)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A contact's number, stored and exported exactly as written (trimmed).
///
/// Ordering is BC's rule for "the lowest number wins": numeric when both
/// are all digits, byte by byte otherwise.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ContactNo(String);

impl ContactNo {
    pub fn parse(input: &str) -> Result<ContactNo, CodeError> {
        parse_code(input).map(ContactNo)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ord for ContactNo {
    fn cmp(&self, other: &ContactNo) -> Ordering {
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if all_digits(&self.0) && all_digits(&other.0) {
            // Compare as unbounded integers: strip leading zeros, then the
            // longer one is larger, then digit by digit.
            let a = self.0.trim_start_matches('0');
            let b = other.0.trim_start_matches('0');
            a.len()
                .cmp(&b.len())
                .then_with(|| a.cmp(b))
                .then_with(|| self.0.cmp(&other.0))
        } else {
            self.0.as_bytes().cmp(other.0.as_bytes())
        }
    }
}

impl PartialOrd for ContactNo {
    fn partial_cmp(&self, other: &ContactNo) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

macro_rules! impl_display_debug {
    ($t:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self.0)
            }
        }
    };
}
impl_display_debug!(SalespersonCode);
impl_display_debug!(ContactNo);

/// A contact as an entry needs it: its number and its company's number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContactRef {
    pub no: ContactNo,
    pub company_no: Option<ContactNo>,
}

/// Who holds one address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressOwners {
    pub salespeople: Vec<SalespersonCode>,
    pub contacts: Vec<ContactRef>,
}

/// The part of the directory that one message's addresses resolve to. The
/// worker builds it from the store with one lookup per batch; the decision
/// table only reads it.
#[derive(Debug, Clone, Default)]
pub struct DirectoryView {
    owners: HashMap<EmailAddress, AddressOwners>,
    /// Contacts whose mail is never logged (Business Central's "privacy
    /// blocked").
    privacy_blocked: std::collections::HashSet<ContactNo>,
}

impl DirectoryView {
    pub fn insert(&mut self, address: EmailAddress, owners: AddressOwners) {
        self.owners.insert(address, owners);
    }

    pub fn add_salesperson(&mut self, address: EmailAddress, code: SalespersonCode) {
        self.owners
            .entry(address)
            .or_default()
            .salespeople
            .push(code);
    }

    pub fn add_contact(&mut self, address: EmailAddress, contact: ContactRef) {
        self.owners
            .entry(address)
            .or_default()
            .contacts
            .push(contact);
    }

    pub fn block(&mut self, contact: ContactNo) {
        self.privacy_blocked.insert(contact);
    }

    pub fn is_privacy_blocked(&self, contact: &ContactNo) -> bool {
        self.privacy_blocked.contains(contact)
    }

    /// The salesperson holding `address`. Import refuses one address on two
    /// salespeople; should the data hold it anyway, the lowest code wins so
    /// that the answer is at least stable.
    pub fn salesperson(&self, address: &EmailAddress) -> Option<&SalespersonCode> {
        if !address.can_match() {
            return None;
        }
        self.owners.get(address)?.salespeople.iter().min()
    }

    /// The contact holding `address`, lowest number first, and whether more
    /// than one contact holds it.
    pub fn contact(&self, address: &EmailAddress) -> Option<(&ContactRef, bool)> {
        if !address.can_match() {
            return None;
        }
        let contacts = &self.owners.get(address)?.contacts;
        let lowest = contacts.iter().min_by(|a, b| a.no.cmp(&b.no))?;
        let distinct = contacts.iter().filter(|c| c.no != lowest.no).count();
        Some((lowest, distinct > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_numbers_order_numerically_when_all_digits() {
        let no = |s: &str| ContactNo::parse(s).unwrap();
        let cases: &[(&str, &str, Ordering)] = &[
            ("2", "10", Ordering::Less),
            ("010", "9", Ordering::Greater),
            ("CT-2", "CT-10", Ordering::Greater),
            ("10", "CT-1", Ordering::Less),
            (
                "99999999999999999999999",
                "100000000000000000000000",
                Ordering::Less,
            ),
            ("7", "7", Ordering::Equal),
        ];
        for (a, b, expected) in cases {
            assert_eq!(no(a).cmp(&no(b)), *expected, "{a} vs {b}");
        }
    }

    #[test]
    fn codes_are_trimmed_and_bounded() {
        assert_eq!(SalespersonCode::parse(" SP1 ").unwrap().as_str(), "SP1");
        assert_eq!(SalespersonCode::parse("  "), Err(CodeError::Empty));
        assert!(matches!(
            ContactNo::parse(&"9".repeat(51)),
            Err(CodeError::TooLong(_))
        ));
        assert!(matches!(
            ContactNo::parse("a\u{7}b"),
            Err(CodeError::ControlCharacter(_))
        ));
    }
}

/// Whether a contact is a person or a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactKind {
    Person,
    Company,
}

impl ContactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::Person => "person",
            ContactKind::Company => "company",
        }
    }

    pub fn parse(s: &str) -> Option<ContactKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "person" => Some(ContactKind::Person),
            "company" => Some(ContactKind::Company),
            _ => None,
        }
    }
}

/// A salesperson as imported: code, name and one or more addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Salesperson {
    pub code: SalespersonCode,
    pub name: String,
    pub addresses: Vec<EmailAddress>,
}

/// A contact as imported. `company_name` links a person to the company
/// contact of that name, which the store creates when it is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub no: ContactNo,
    pub name: String,
    pub kind: ContactKind,
    pub company_name: Option<String>,
    pub addresses: Vec<EmailAddress>,
    /// `None`: leave the stored flag as it is (a file without the column).
    pub privacy_blocked: Option<bool>,
}
