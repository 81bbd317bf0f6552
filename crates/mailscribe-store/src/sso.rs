//! Single sign-on: the provider's configuration, accounts linked to the
//! provider's (issuer, subject), and sign-ins under way (shared by every
//! `serve` instance, each used once).

use chrono::{DateTime, Utc};
use mailscribe_core::{Role, RoleMapping, SalespersonCode, SecretRef, SsoConfig, User};
use sqlx::Row;

use crate::users::user_from;
use crate::{Result, Store, StoreError, with_pool};

/// The password hash of an account made by single sign-on: not a PHC
/// string, so no password ever matches it.
pub const NO_PASSWORD: &str = "!sso";

/// A sign-in between the redirect to the provider and its callback.
#[derive(Clone, PartialEq, Eq)]
pub struct SsoPending {
    /// SHA-256 of the `state` parameter.
    pub state_hash: String,
    /// SHA-256 of the cookie that ties the sign-in to one browser.
    pub browser_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// The redirect URL sent to the provider (the token request repeats it).
    pub redirect_url: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for SsoPending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoPending")
            .field("redirect_url", &self.redirect_url)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Who the provider says signed in, after the ID token was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoIdentity {
    pub issuer: String,
    pub subject: String,
    /// The value of the configured name claim, if the token has one.
    pub name: Option<String>,
    /// The role a new account would get, from the role mapping.
    pub role: Option<(Role, Option<SalespersonCode>)>,
}

/// How a sign-in ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoSignIn {
    /// The pair was linked before.
    Known(User),
    /// The first sign-in of the pair, linked to the local user of that name.
    LinkedExisting(User),
    /// The first sign-in of the pair; a user was created from the role claim.
    Created(User),
    Refused(SsoRefusal),
}

/// Why a verified identity gets no session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoRefusal {
    /// The linked (or same-named) user is disabled.
    Disabled(String),
    /// A local user of that name is linked to another identity already.
    NameLinkedElsewhere(String),
    /// No local user of that name, and the role claim maps to no role.
    NoRole,
    /// The token does not carry the name claim.
    NoName,
    /// The salesperson claim names a code the directory does not have.
    UnknownSalesperson(String),
}

impl SsoRefusal {
    /// A short code for the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            SsoRefusal::Disabled(_) => "user_disabled",
            SsoRefusal::NameLinkedElsewhere(_) => "name_linked_to_another_identity",
            SsoRefusal::NoRole => "no_role",
            SsoRefusal::NoName => "no_name_claim",
            SsoRefusal::UnknownSalesperson(_) => "unknown_salesperson",
        }
    }
}

fn opt(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.is_empty())
}

impl Store {
    /// The configured provider, if single sign-on is on.
    pub async fn sso_config(&self) -> Result<Option<SsoConfig>> {
        with_pool!(self, |pool| {
            let Some(r) = sqlx::query(
                "SELECT issuer, client_id, client_secret, redirect_url, name_claim, role_claim, admin_value, user_value, \
                 salesperson_claim FROM sso_config WHERE id = 1",
            )
            .fetch_optional(pool)
            .await?
            else {
                return Ok(None);
            };
            let role_claim: Option<String> = opt(r.try_get("role_claim")?);
            let roles = match role_claim {
                Some(claim) => Some(RoleMapping {
                    claim,
                    admin_value: r
                        .try_get::<Option<String>, _>("admin_value")?
                        .unwrap_or_default(),
                    user_value: r
                        .try_get::<Option<String>, _>("user_value")?
                        .unwrap_or_default(),
                    salesperson_claim: opt(r.try_get("salesperson_claim")?),
                }),
                None => None,
            };
            let secret: String = r.try_get("client_secret")?;
            Ok(Some(SsoConfig {
                issuer: r.try_get("issuer")?,
                client_id: r.try_get("client_id")?,
                client_secret: SecretRef::from_storage(&secret),
                redirect_url: opt(r.try_get("redirect_url")?),
                name_claim: r.try_get("name_claim")?,
                roles,
            }))
        })
    }

    /// Stores the provider (replacing any). Sign-ins under way are dropped:
    /// they were started against the old configuration.
    pub async fn save_sso_config(&self, config: &SsoConfig, now: DateTime<Utc>) -> Result<()> {
        let roles = config.roles.as_ref();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO sso_config (id, issuer, client_id, client_secret, redirect_url, name_claim, role_claim, \
                 admin_value, user_value, salesperson_claim, updated_at) VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (id) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id, \
                 client_secret = excluded.client_secret, redirect_url = excluded.redirect_url, \
                 name_claim = excluded.name_claim, role_claim = excluded.role_claim, admin_value = excluded.admin_value, \
                 user_value = excluded.user_value, salesperson_claim = excluded.salesperson_claim, \
                 updated_at = excluded.updated_at",
            )
            .bind(&config.issuer)
            .bind(&config.client_id)
            .bind(config.client_secret.to_storage())
            .bind(&config.redirect_url)
            .bind(&config.name_claim)
            .bind(roles.map(|r| r.claim.as_str()))
            .bind(roles.map(|r| r.admin_value.as_str()))
            .bind(roles.map(|r| r.user_value.as_str()))
            .bind(roles.and_then(|r| r.salesperson_claim.as_deref()))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM sso_pending")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Turns single sign-on off; false when it was off. Links stay, so that
    /// configuring the same issuer again finds the same accounts.
    pub async fn remove_sso_config(&self) -> Result<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let removed = sqlx::query("DELETE FROM sso_config WHERE id = 1")
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            sqlx::query("DELETE FROM sso_pending")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(removed)
        })
    }

    /// Records a sign-in started in a browser; expired ones go meanwhile.
    pub async fn put_sso_pending(&self, pending: &SsoPending, now: DateTime<Utc>) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM sso_pending WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO sso_pending (state_hash, browser_hash, nonce, pkce_verifier, redirect_url, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&pending.state_hash)
            .bind(&pending.browser_hash)
            .bind(&pending.nonce)
            .bind(&pending.pkce_verifier)
            .bind(&pending.redirect_url)
            .bind(pending.expires_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Takes (deletes and returns) the sign-in of a `state`, once: a second
    /// callback with the same state finds nothing. Expired: nothing.
    pub async fn take_sso_pending(
        &self,
        state_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SsoPending>> {
        let taken = with_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM sso_pending WHERE state_hash = $1 \
                 RETURNING state_hash, browser_hash, nonce, pkce_verifier, redirect_url, expires_at",
            )
            .bind(state_hash)
            .fetch_optional(pool)
            .await?
            .map(|r| {
                Ok::<_, StoreError>(SsoPending {
                    state_hash: r.try_get("state_hash")?,
                    browser_hash: r.try_get("browser_hash")?,
                    nonce: r.try_get("nonce")?,
                    pkce_verifier: r.try_get("pkce_verifier")?,
                    redirect_url: r.try_get("redirect_url")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .transpose()?
        });
        Ok(taken.filter(|p| p.expires_at > now))
    }

    /// The local account of a verified identity, linking or creating it on
    /// the pair's first sign-in, in one transaction:
    /// 1. a linked pair signs in as its user (unless disabled);
    /// 2. otherwise the user whose name equals the name claim is linked,
    ///    when that user has no link yet;
    /// 3. otherwise a user of that name is created when the role claim maps
    ///    to a role (a salesperson's code must exist), and refused when not.
    pub async fn sso_sign_in(
        &self,
        identity: &SsoIdentity,
        now: DateTime<Utc>,
    ) -> Result<SsoSignIn> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let linked = sqlx::query(
                "SELECT u.id, u.name, u.role, u.salesperson_code, u.disabled FROM sso_links l \
                 JOIN users u ON u.id = l.user_id WHERE l.issuer = $1 AND l.subject = $2",
            )
            .bind(&identity.issuer)
            .bind(&identity.subject)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(r) = linked {
                let role: String = r.try_get("role")?;
                let user = user_from(
                    r.try_get("id")?,
                    r.try_get("name")?,
                    &role,
                    r.try_get("salesperson_code")?,
                )?;
                if r.try_get::<bool, _>("disabled")? {
                    return Ok(SsoSignIn::Refused(SsoRefusal::Disabled(user.name)));
                }
                return Ok(SsoSignIn::Known(user));
            }
            let Some(name) = identity
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
            else {
                return Ok(SsoSignIn::Refused(SsoRefusal::NoName));
            };
            let same_name = sqlx::query(
                "SELECT u.id, u.name, u.role, u.salesperson_code, u.disabled, \
                 (SELECT COUNT(*) FROM sso_links l WHERE l.user_id = u.id) AS links FROM users u WHERE u.name = $1",
            )
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            let outcome = match same_name {
                Some(r) => {
                    let role: String = r.try_get("role")?;
                    let user = user_from(
                        r.try_get("id")?,
                        r.try_get("name")?,
                        &role,
                        r.try_get("salesperson_code")?,
                    )?;
                    if r.try_get::<i64, _>("links")? > 0 {
                        return Ok(SsoSignIn::Refused(SsoRefusal::NameLinkedElsewhere(
                            user.name,
                        )));
                    }
                    if r.try_get::<bool, _>("disabled")? {
                        return Ok(SsoSignIn::Refused(SsoRefusal::Disabled(user.name)));
                    }
                    SsoSignIn::LinkedExisting(user)
                }
                None => {
                    let Some((role, code)) = identity.role.clone() else {
                        return Ok(SsoSignIn::Refused(SsoRefusal::NoRole));
                    };
                    if let Some(code) = &code {
                        let known = sqlx::query("SELECT code FROM salespeople WHERE code = $1")
                            .bind(code.as_str())
                            .fetch_optional(&mut *tx)
                            .await?
                            .is_some();
                        if !known {
                            return Ok(SsoSignIn::Refused(SsoRefusal::UnknownSalesperson(
                                code.as_str().to_owned(),
                            )));
                        }
                    }
                    let id: i64 = sqlx::query(
                        "INSERT INTO users (name, password_hash, role, salesperson_code, created_at) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    )
                    .bind(name)
                    .bind(NO_PASSWORD)
                    .bind(role.as_str())
                    .bind(code.as_ref().map(SalespersonCode::as_str))
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("id")?;
                    SsoSignIn::Created(User {
                        id,
                        name: name.to_owned(),
                        role,
                        salesperson: code,
                    })
                }
            };
            let user_id = match &outcome {
                SsoSignIn::LinkedExisting(user) | SsoSignIn::Created(user) => user.id,
                _ => return Err(StoreError::Corrupt("an SSO sign-in without a user".into())),
            };
            sqlx::query("INSERT INTO sso_links (issuer, subject, user_id, linked_at) VALUES ($1, $2, $3, $4)")
                .bind(&identity.issuer)
                .bind(&identity.subject)
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(outcome)
        })
    }
}
