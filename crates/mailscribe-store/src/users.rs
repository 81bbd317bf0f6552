//! Users, sessions, API tokens and the first-admin setup token. Only
//! hashes of tokens are stored.

use chrono::{DateTime, Utc};
use mailscribe_core::{Role, SalespersonCode, User};
use sqlx::Row;

use crate::{Result, Store, StoreError, with_pool};

fn user_from(id: i64, name: String, role: &str, code: Option<String>) -> Result<User> {
    Ok(User {
        id,
        name,
        role: role.parse().map_err(|_| StoreError::Corrupt(format!("role '{role}'")))?,
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
            Ok(sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(pool).await?.try_get::<i64, _>("n")?)
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
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::Conflict(format!("a user named {name} exists already")))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The user and their password hash.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<(User, String)>> {
        let row: Option<(i64, String, String, Option<String>, String)> = with_pool!(self, |pool| {
            sqlx::query("SELECT id, name, role, salesperson_code, password_hash FROM users WHERE name = $1")
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
        row.map(|(id, name, role, code, hash)| Ok((user_from(id, name, &role, code)?, hash))).transpose()
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

    /// The user of a live session and its CSRF token.
    pub async fn session_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<(User, String)>> {
        let row: Option<(i64, String, String, Option<String>, String)> = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT u.id, u.name, u.role, u.salesperson_code, s.csrf_token FROM sessions s \
                 JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2",
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
                    r.try_get("csrf_token")?,
                ))
            })
            .transpose()?
        });
        row.map(|(id, name, role, code, csrf)| Ok((user_from(id, name, &role, code)?, csrf))).transpose()
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(pool).await?;
            Ok(())
        })
    }

    pub async fn create_api_token(&self, token_hash: &str, user_id: i64, now: DateTime<Utc>) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("INSERT INTO api_tokens (token_hash, user_id, created_at) VALUES ($1, $2, $3)")
                .bind(token_hash)
                .bind(user_id)
                .bind(now)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    pub async fn api_token_user(&self, token_hash: &str) -> Result<Option<User>> {
        let row: Option<(i64, String, String, Option<String>)> = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT u.id, u.name, u.role, u.salesperson_code FROM api_tokens t \
                 JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await?
            .map(|r| Ok::<_, StoreError>((r.try_get("id")?, r.try_get("name")?, r.try_get("role")?, r.try_get("salesperson_code")?)))
            .transpose()?
        });
        row.map(|(id, name, role, code)| user_from(id, name, &role, code)).transpose()
    }

    /// Replaces any earlier first-admin setup token.
    pub async fn put_setup_token(&self, token_hash: &str, expires_at: DateTime<Utc>) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM setup_tokens").execute(&mut *tx).await?;
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
            Ok(sqlx::query("SELECT 1 FROM setup_tokens WHERE token_hash = $1 AND expires_at > $2")
                .bind(token_hash)
                .bind(now)
                .fetch_optional(pool)
                .await?
                .is_some())
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
            let spent = sqlx::query("DELETE FROM setup_tokens WHERE token_hash = $1 AND expires_at > $2")
                .bind(token_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let users: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(&mut *tx).await?.try_get("n")?;
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
}
