//! Single sign-on with OpenID Connect: the configuration record and the
//! rules that turn a verified ID token's claims into a local account.
//!
//! Pure: the web crate verifies the token (signature, issuer, audience,
//! expiry, nonce) and hands the claims here as "the values of a claim".

use std::fmt;

use crate::{Role, SalespersonCode, SecretRef};

/// The name of the claim that names a user when none is configured.
pub const DEFAULT_NAME_CLAIM: &str = "preferred_username";

/// The purpose (AES-GCM associated data) a sealed SSO client secret is
/// bound to, so that it cannot be swapped in for a mailbox's secret.
pub const SSO_CLIENT_SECRET_PURPOSE: &str = "sso_client_secret";

/// One OpenID Connect provider, as configured.
#[derive(Clone, PartialEq, Eq)]
pub struct SsoConfig {
    /// The issuer, exactly as the provider's discovery document and its ID
    /// tokens name it (pinned: a token from any other issuer is refused).
    pub issuer: String,
    /// The client id: the only audience accepted.
    pub client_id: String,
    pub client_secret: SecretRef,
    /// Where the provider sends the browser back; `None`: derived from the
    /// request's host (`http(s)://HOST/sso/callback`).
    pub redirect_url: Option<String>,
    /// The claim whose value is matched against local user names on a
    /// first sign-in.
    pub name_claim: String,
    pub roles: Option<RoleMapping>,
}

impl fmt::Debug for SsoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsoConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("redirect_url", &self.redirect_url)
            .field("name_claim", &self.name_claim)
            .field("roles", &self.roles)
            .finish()
    }
}

/// How a new account's role is read from the ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMapping {
    /// A claim holding a string or a list of strings (Entra ID: `roles`,
    /// the app roles assigned to the user).
    pub claim: String,
    pub admin_value: String,
    pub user_value: String,
    /// A claim holding a salesperson code: without the admin or user value,
    /// a token with a code here makes a salesperson of that code.
    pub salesperson_claim: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoConfigError {
    #[error(
        "the issuer must be an https:// URL (http:// only to 127.0.0.1, [::1] or localhost), without a query or fragment"
    )]
    Issuer,
    #[error("the redirect URL must be an http:// or https:// URL ending in /sso/callback")]
    RedirectUrl,
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("the admin value and the user value must differ")]
    SameValues,
}

/// Whether `url` is `https://…`, or `http://` to a loopback host.
pub fn is_https_or_loopback(url: &str) -> bool {
    if url.starts_with("https://") {
        return url.len() > "https://".len();
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    matches!(host, "127.0.0.1" | "::1" | "localhost")
}

impl SsoConfig {
    /// Checks the record as a whole; every entry point (CLI, web) calls it.
    pub fn validate(&self) -> Result<(), SsoConfigError> {
        if !is_https_or_loopback(&self.issuer) || self.issuer.contains(['?', '#', ' ']) {
            return Err(SsoConfigError::Issuer);
        }
        if self.client_id.trim().is_empty() {
            return Err(SsoConfigError::Empty("the client id"));
        }
        if self.name_claim.trim().is_empty() {
            return Err(SsoConfigError::Empty("the name claim"));
        }
        if let Some(url) = &self.redirect_url {
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            if !scheme_ok || !url.ends_with("/sso/callback") || url.contains(['?', '#', ' ']) {
                return Err(SsoConfigError::RedirectUrl);
            }
        }
        if let Some(roles) = &self.roles {
            if roles.claim.trim().is_empty() {
                return Err(SsoConfigError::Empty("the role claim"));
            }
            if roles.admin_value.trim().is_empty() {
                return Err(SsoConfigError::Empty("the admin value"));
            }
            if roles.user_value.trim().is_empty() {
                return Err(SsoConfigError::Empty("the user value"));
            }
            if roles.admin_value == roles.user_value {
                return Err(SsoConfigError::SameValues);
            }
            if roles
                .salesperson_claim
                .as_deref()
                .is_some_and(|c| c.trim().is_empty())
            {
                return Err(SsoConfigError::Empty("the salesperson claim"));
            }
        }
        Ok(())
    }

    /// A short name for the provider, for the sign-in button: the host of
    /// the issuer, or "Microsoft" for Entra ID.
    pub fn provider_label(&self) -> String {
        let rest = self
            .issuer
            .split_once("://")
            .map_or(self.issuer.as_str(), |(_, rest)| rest);
        let host = rest.split('/').next().unwrap_or(rest);
        if host == "login.microsoftonline.com" || host.ends_with(".microsoftonline.com") {
            "Microsoft".to_owned()
        } else {
            host.to_owned()
        }
    }
}

impl RoleMapping {
    /// The role of a new account from the token's claims: the admin value
    /// wins over the user value; then a salesperson code. `None`: the
    /// token maps to no role, and no account is created.
    ///
    /// `values(claim)` gives the string values of a claim (a string is one
    /// value, a list of strings its elements, anything else none).
    pub fn role_for(
        &self,
        values: impl Fn(&str) -> Vec<String>,
    ) -> Option<(Role, Option<SalespersonCode>)> {
        let roles = values(&self.claim);
        if roles.contains(&self.admin_value) {
            return Some((Role::Admin, None));
        }
        if roles.contains(&self.user_value) {
            return Some((Role::User, None));
        }
        let claim = self.salesperson_claim.as_deref()?;
        let code = values(claim).into_iter().find(|v| !v.trim().is_empty())?;
        SalespersonCode::parse(&code)
            .ok()
            .map(|code| (Role::Salesperson, Some(code)))
    }
}

#[cfg(test)]
mod tests;
