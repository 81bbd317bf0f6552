//! Who may see what: roles and the rule that keeps a salesperson to their
//! own entries.

use std::fmt;
use std::str::FromStr;

use crate::directory::SalespersonCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Setup and all data.
    Admin,
    /// All log data, no setup.
    User,
    /// Only the entries of the linked salesperson code.
    Salesperson,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Salesperson => "salesperson",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a role: use admin, user or salesperson")]
pub struct RoleError(String);

impl FromStr for Role {
    type Err = RoleError;
    fn from_str(s: &str) -> Result<Role, RoleError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            "salesperson" => Ok(Role::Salesperson),
            other => Err(RoleError(other.to_owned())),
        }
    }
}

/// A person who signs in to the web app or uses the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// Set for the salesperson role: whose entries this user sees.
    pub salesperson: Option<SalespersonCode>,
}

impl User {
    /// The salesperson whose data alone this user may see; `None` means all.
    /// A salesperson account without a code sees nothing, never everything.
    pub fn restricted_to(&self) -> Option<Restriction<'_>> {
        match self.role {
            Role::Salesperson => Some(match &self.salesperson {
                Some(code) => Restriction::Salesperson(code),
                None => Restriction::Nothing,
            }),
            Role::Admin | Role::User => None,
        }
    }

    pub fn may_see_entry_of(&self, salesperson_code: &str) -> bool {
        match self.restricted_to() {
            None => true,
            Some(Restriction::Salesperson(code)) => code.as_str() == salesperson_code,
            Some(Restriction::Nothing) => false,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Admins and users see the decision ledger and run history; salespeople
    /// do not (PRODUCT.md section 5).
    pub fn may_see_ledger(&self) -> bool {
        self.role != Role::Salesperson
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction<'a> {
    Salesperson(&'a SalespersonCode),
    Nothing,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, code: Option<&str>) -> User {
        User {
            id: 1,
            name: "u".into(),
            role,
            salesperson: code.map(|c| SalespersonCode::parse(c).unwrap()),
        }
    }

    #[test]
    fn salespeople_see_only_their_own() {
        let cases = [
            (user(Role::Admin, None), "SP1", true),
            (user(Role::User, None), "SP2", true),
            (user(Role::Salesperson, Some("SP1")), "SP1", true),
            (user(Role::Salesperson, Some("SP1")), "SP2", false),
            (user(Role::Salesperson, None), "SP1", false),
        ];
        for (user, code, expected) in cases {
            assert_eq!(user.may_see_entry_of(code), expected, "{user:?} / {code}");
        }
        assert!(!user(Role::Salesperson, Some("SP1")).may_see_ledger());
        assert_eq!("Admin".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
    }
}
