//! Users, sessions, API tokens and the first-admin setup token. Only
//! hashes of tokens are stored.

use chrono::{DateTime, Utc};
use mailscribe_core::{Role, SalespersonCode, User};
use sqlx::Row;

use crate::{Result, Store, StoreError, with_pool};

pub(crate) fn user_from(id: i64, name: String, role: &str, code: Option<String>) -> Result<User> {
    Ok(User {
        id,
        name,
        role: role
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("role '{role}'")))?,
        salesperson: code
            .as_deref()
            .map(SalespersonCode::parse)
            .transpose()
            .map_err(|err| StoreError::Corrupt(err.to_string()))?,
    })
}

impl Store {
    pub async fn count_users(&self) -> Result<i64> {
        with_pool!(self, |pool| {
            Ok(sqlx::query("SELECT COUNT(*) AS n FROM users")
                .fetch_one(pool)
                .await?
                .try_get::<i64, _>("n")?)
        })
    }

    /// Creates a user; `Conflict` when the name is taken.
    pub async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        role: Role,
        salesperson: Option<&SalespersonCode>,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let result = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO users (name, password_hash, role, salesperson_code, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(name)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(salesperson.map(SalespersonCode::as_str))
            .bind(now)
            .fetch_one(pool)
            .await
            .map(|row| row.try_get::<i64, _>("id"))
        });
        match result {
            Ok(id) => Ok(id?),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Err(
                StoreError::Conflict(format!("a user named {name} exists already")),
            ),
            Err(err) => Err(err.into()),
        }
    }

    /// An enabled user and their password hash; a disabled user is as
    /// good as none (no sign-in, no new token).
    pub async fn user_by_name(&self, name: &str) -> Result<Option<(User, String)>> {
        let row: Option<(i64, String, String, Option<String>, String)> = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, name, role, salesperson_code, password_hash FROM users WHERE name = $1 AND disabled = FALSE",
            )
                .bind(name)
                .fetch_optional(pool)
                .await?
                .map(|r| {
                    Ok::<_, StoreError>((
                        r.try_get("id")?,
                        r.try_get("name")?,
                        r.try_get("role")?,
                        r.try_get("salesperson_code")?,
                        r.try_get("password_hash")?,
                    ))
                })
                .transpose()?
        });
        row.map(|(id, name, role, code, hash)| Ok((user_from(id, name, &role, code)?, hash)))
            .transpose()
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(csrf_token)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The user of a live session and its CSRF token: not past its
    /// absolute expiry, used within `idle_since` (its creation counts as a
    /// use), and its user not disabled. A use is recorded, at most once a
    /// minute per session.
    pub async fn session_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<Option<(User, String)>> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1 AND expires_at > $2 \
                 AND COALESCE(last_seen_at, created_at) < $3 AND COALESCE(last_seen_at, created_at) > $4",
            )
            .bind(token_hash)
            .bind(now)
            .bind(now - chrono::Duration::minutes(1))
            .bind(idle_since)
            .execute(pool)
            .await?;
        });
        let row: Option<(i64, String, String, Option<String>, String)> = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT u.id, u.name, u.role, u.salesperson_code, s.csrf_token FROM sessions s \
                 JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2 \
                 AND COALESCE(s.last_seen_at, s.created_at) > $3 AND u.disabled = FALSE",
            )
            .bind(token_hash)
            .bind(now)
            .bind(idle_since)
            .fetch_optional(pool)
            .await?
            .map(|r| {
                Ok::<_, StoreError>((
                    r.try_get("id")?,
                    r.try_get("name")?,
                    r.try_get("role")?,
                    r.try_get("salesperson_code")?,
                    r.try_get("csrf_token")?,
                ))
            })
            .transpose()?
        });
        row.map(|(id, name, role, code, csrf)| Ok((user_from(id, name, &role, code)?, csrf)))
            .transpose()
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Stores a token's hash; `expires_at` `None` never expires. Its id.
    pub async fn create_api_token(
        &self,
        token_hash: &str,
        user_id: i64,
        now: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<i64> {
        with_pool!(self, |pool| {
            let row = sqlx::query(
                "INSERT INTO api_tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .fetch_one(pool)
            .await?;
            Ok(row.try_get::<i64, _>("id")?)
        })
    }

    /// The user of a valid token: not expired, not revoked, its user not
    /// disabled. A use is recorded, at most once a minute per token.
    pub async fn api_token_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<User>> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1 \
                 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(token_hash)
            .bind(now)
            .bind(now - chrono::Duration::minutes(1))
            .execute(pool)
            .await?;
        });
        let row: Option<(i64, String, String, Option<String>)> = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT u.id, u.name, u.role, u.salesperson_code FROM api_tokens t \
                 JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1 \
                 AND (t.expires_at IS NULL OR t.expires_at > $2) AND u.disabled = FALSE",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
            .map(|r| {
                Ok::<_, StoreError>((
                    r.try_get("id")?,
                    r.try_get("name")?,
                    r.try_get("role")?,
                    r.try_get("salesperson_code")?,
                ))
            })
            .transpose()?
        });
        row.map(|(id, name, role, code)| user_from(id, name, &role, code))
            .transpose()
    }

    /// Replaces any earlier first-admin setup token.
    pub async fn put_setup_token(&self, token_hash: &str, expires_at: DateTime<Utc>) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM setup_tokens")
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO setup_tokens (token_hash, expires_at) VALUES ($1, $2)")
                .bind(token_hash)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Whether the setup token is valid; it stays valid until the first
    /// admin exists.
    pub async fn setup_token_valid(&self, token_hash: &str, now: DateTime<Utc>) -> Result<bool> {
        with_pool!(self, |pool| {
            Ok(
                sqlx::query("SELECT 1 FROM setup_tokens WHERE token_hash = $1 AND expires_at > $2")
                    .bind(token_hash)
                    .bind(now)
                    .fetch_optional(pool)
                    .await?
                    .is_some(),
            )
        })
    }

    /// Creates the first admin with the setup token, in one transaction:
    /// the token is spent, and only while there is no user yet.
    pub async fn create_first_admin(
        &self,
        token_hash: &str,
        name: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let spent =
                sqlx::query("DELETE FROM setup_tokens WHERE token_hash = $1 AND expires_at > $2")
                    .bind(token_hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            let users: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users")
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
            if spent != 1 || users != 0 {
                return Ok(None);
            }
            let id: i64 = sqlx::query(
                "INSERT INTO users (name, password_hash, role, salesperson_code, created_at) \
                 VALUES ($1, $2, 'admin', NULL, $3) RETURNING id",
            )
            .bind(name)
            .bind(password_hash)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
            tx.commit().await?;
            Ok(Some(id))
        })
    }

    /// Every user, by name, with their state.
    pub async fn list_users(&self) -> Result<Vec<UserRow>> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, name, role, salesperson_code, disabled, last_sign_in_at FROM users ORDER BY name",
            )
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                let role: String = r.try_get("role")?;
                Ok(UserRow {
                    user: user_from(r.try_get("id")?, r.try_get("name")?, &role, r.try_get("salesperson_code")?)?,
                    disabled: r.try_get("disabled")?,
                    last_sign_in_at: r.try_get("last_sign_in_at")?,
                })
            })
            .collect()
        })
    }

    pub async fn record_sign_in(&self, user_id: i64, at: DateTime<Utc>) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE users SET last_sign_in_at = $1 WHERE id = $2")
                .bind(at)
                .bind(user_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Changes a user, ends their sessions and revokes their tokens, in one
    /// transaction. The last active admin can be neither disabled, removed
    /// nor demoted. `Conflict` says why a change is refused.
    pub async fn change_user(&self, name: &str, change: &UserChange) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let row = sqlx::query("SELECT id, role, disabled FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::Conflict(format!("there is no user named {name}")))?;
            let id: i64 = row.try_get("id")?;
            let role: String = row.try_get("role")?;
            let disabled: bool = row.try_get("disabled")?;
            let stays_admin = match change {
                UserChange::Password(_) | UserChange::Enable => true,
                UserChange::Disable | UserChange::Remove => false,
                UserChange::Role(new_role, _) => *new_role == Role::Admin,
            };
            if role == "admin" && !disabled && !stays_admin {
                let others: i64 = sqlx::query(
                    "SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND disabled = FALSE AND id <> $1",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
                if others == 0 {
                    return Err(StoreError::Conflict(format!(
                        "{name} is the last active admin: make another user an admin first"
                    )));
                }
            }
            match change {
                UserChange::Password(hash) => {
                    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                        .bind(hash)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                UserChange::Role(role, code) => {
                    sqlx::query("UPDATE users SET role = $1, salesperson_code = $2 WHERE id = $3")
                        .bind(role.as_str())
                        .bind(code.as_ref().map(SalespersonCode::as_str))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                UserChange::Disable => {
                    sqlx::query("UPDATE users SET disabled = TRUE WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                UserChange::Enable => {
                    sqlx::query("UPDATE users SET disabled = FALSE WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                UserChange::Remove => {
                    sqlx::query("DELETE FROM users WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            // Whatever changed, what the user held before is void: every
            // session and token (enabling again starts from nothing too).
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM api_tokens WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Ends every session of a user ("sign out everywhere").
    pub async fn end_sessions(&self, user_id: i64) -> Result<u64> {
        with_pool!(self, |pool| {
            Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected())
        })
    }

    /// Deletes sessions past their expiry or idle since `idle_since`.
    pub async fn purge_sessions(
        &self,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<u64> {
        with_pool!(self, |pool| {
            Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR COALESCE(last_seen_at, created_at) <= $2")
                .bind(now)
                .bind(idle_since)
                .execute(pool)
                .await?
                .rows_affected())
        })
    }

    /// API tokens, never the tokens themselves, oldest first.
    pub async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenRow>> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT t.id, u.name, t.created_at, t.last_used_at, t.expires_at FROM api_tokens t \
                 JOIN users u ON u.id = t.user_id WHERE ($1 IS NULL OR u.name = $1) ORDER BY t.id",
            )
            .bind(user)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(TokenRow {
                    id: r.try_get("id")?,
                    user: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    last_used_at: r.try_get("last_used_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
        })
    }

    /// Revokes a token by id; false when there is none.
    pub async fn revoke_token(&self, id: i64) -> Result<bool> {
        with_pool!(self, |pool| {
            Ok(sqlx::query("DELETE FROM api_tokens WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
                == 1)
        })
    }
}

/// A user as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub user: User,
    pub disabled: bool,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

/// What can change about a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// A new password hash.
    Password(String),
    Role(Role, Option<SalespersonCode>),
    Disable,
    Enable,
    Remove,
}

/// An API token as listed; the token itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: i64,
    pub user: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}
