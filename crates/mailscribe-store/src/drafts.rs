//! Assisted-setup drafts: one per user, kept as text the web app writes
//! and reads back, so that several instances of `serve` share them.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Result, Store, with_pool};

impl Store {
    /// Stores `draft` as the user's assisted-setup draft, replacing the one
    /// they had.
    pub async fn save_setup_draft(
        &self,
        user_id: i64,
        draft: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO setup_drafts (user_id, draft, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET draft = excluded.draft, updated_at = excluded.updated_at",
            )
            .bind(user_id)
            .bind(draft)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The user's draft, if they have one.
    pub async fn setup_draft(&self, user_id: i64) -> Result<Option<String>> {
        with_pool!(self, |pool| {
            let row = sqlx::query("SELECT draft FROM setup_drafts WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|row| row.try_get("draft")).transpose()?)
        })
    }

    /// Removes the user's draft; nothing happens when there is none.
    pub async fn delete_setup_draft(&self, user_id: i64) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM setup_drafts WHERE user_id = $1")
                .bind(user_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
