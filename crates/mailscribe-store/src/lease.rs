//! The mailbox lease: one worker processes a mailbox at a time.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Result, Store, StoreError, with_pool};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub holder: String,
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Takes the lease when it is free, expired, or already ours. Returns the
    /// current holder when someone else has it.
    pub async fn try_acquire_lease(
        &self,
        mailbox: &str,
        holder: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<LeaseHolder>> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO mailbox_leases (mailbox, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (mailbox) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE mailbox_leases.expires_at < $4 OR mailbox_leases.holder = excluded.holder",
            )
            .bind(mailbox)
            .bind(holder)
            .bind(expires_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query("SELECT holder, expires_at FROM mailbox_leases WHERE mailbox = $1")
                .bind(mailbox)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            let current = LeaseHolder { holder: row.try_get("holder")?, expires_at: row.try_get("expires_at")? };
            Ok(if current.holder == holder { None } else { Some(current) })
        })
    }

    /// Takes the lease from `previous` (a holder known to be dead). Returns
    /// false when the lease changed hands meanwhile.
    pub async fn take_over_lease(
        &self,
        mailbox: &str,
        previous: &str,
        holder: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool> {
        with_pool!(self, |pool| {
            let affected = sqlx::query(
                "UPDATE mailbox_leases SET holder = $1, expires_at = $2 WHERE mailbox = $3 AND holder = $4",
            )
            .bind(holder)
            .bind(expires_at)
            .bind(mailbox)
            .bind(previous)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(affected == 1)
        })
    }

    /// Extends our lease; an error when it is no longer ours.
    pub async fn renew_lease(&self, mailbox: &str, holder: &str, expires_at: DateTime<Utc>) -> Result<()> {
        let affected = with_pool!(self, |pool| {
            sqlx::query("UPDATE mailbox_leases SET expires_at = $1 WHERE mailbox = $2 AND holder = $3")
                .bind(expires_at)
                .bind(mailbox)
                .bind(holder)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if affected == 0 {
            return Err(StoreError::Conflict(format!("the lease on {mailbox} was taken by another run")));
        }
        Ok(())
    }

    pub async fn release_lease(&self, mailbox: &str, holder: &str) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM mailbox_leases WHERE mailbox = $1 AND holder = $2")
                .bind(mailbox)
                .bind(holder)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
