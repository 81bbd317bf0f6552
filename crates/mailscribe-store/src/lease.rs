//! Leases with fencing tokens, the running instances, and "run now"
//! requests: what several `serve` processes share through the database.
//!
//! Every lease time is on the database's clock (milliseconds since 1970),
//! so instances whose clocks disagree still agree on who holds what.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Backend, Result, Store, StoreError, with_pool};

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub generation: i64,
    pub expires_at_ms: i64,
}

/// Proof of holding a lease: a commit made under it checks, in its own
/// transaction, that the generation is still current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub lease: String,
    pub holder: String,
    pub generation: i64,
}

/// What an attempt to take a lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAttempt {
    Acquired(Fence),
    /// Someone else holds it and it has not expired.
    Held {
        current: Lease,
        now_ms: i64,
    },
}

/// A running `serve` process, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRow {
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub seen_at_ms: i64,
}

/// A "run now" request and, once answered, its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    pub id: i64,
    pub mailbox_name: String,
    pub requested_by: String,
    pub claimed_by: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
    pub run_id: Option<i64>,
    /// The run's summary as JSON.
    pub summary: Option<String>,
    pub error: Option<String>,
}

impl Store {
    /// The database clock as SQL, in milliseconds since 1970.
    fn now_ms_sql(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Backend::Postgres(_) => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// The database's clock.
    pub async fn database_now_ms(&self) -> Result<i64> {
        let sql = format!("SELECT {} AS now_ms", self.now_ms_sql());
        with_pool!(self, |pool| {
            let row = sqlx::query(&sql).fetch_one(pool).await?;
            Ok(row.try_get::<i64, _>("now_ms")?)
        })
    }

    /// Takes the lease when it is free or expired, or renews it when it is
    /// already ours. The generation grows whenever the lease changes hands
    /// or lapsed, so a fence taken before stays stale.
    pub async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<LeaseAttempt> {
        let now = self.now_ms_sql();
        let upsert = format!(
            "INSERT INTO leases (name, holder, generation, expires_at_ms) VALUES ($1, $2, 1, {now} + $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms, \
             generation = CASE WHEN leases.holder = excluded.holder AND leases.expires_at_ms >= {now} \
             THEN leases.generation ELSE leases.generation + 1 END \
             WHERE leases.expires_at_ms < {now} OR leases.holder = excluded.holder"
        );
        let select = format!(
            "SELECT name, holder, generation, expires_at_ms, {now} AS now_ms FROM leases WHERE name = $1"
        );
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(&upsert)
                .bind(name)
                .bind(holder)
                .bind(ttl_ms)
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query(&select).bind(name).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            let current = Lease {
                name: row.try_get("name")?,
                holder: row.try_get("holder")?,
                generation: row.try_get("generation")?,
                expires_at_ms: row.try_get("expires_at_ms")?,
            };
            Ok(if current.holder == holder {
                LeaseAttempt::Acquired(Fence {
                    lease: current.name,
                    holder: current.holder,
                    generation: current.generation,
                })
            } else {
                LeaseAttempt::Held {
                    current,
                    now_ms: row.try_get("now_ms")?,
                }
            })
        })
    }

    /// Takes the lease from `previous`, a holder known to be dead. `None`
    /// when the lease changed hands meanwhile.
    pub async fn take_over_lease(
        &self,
        previous: &Lease,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<Fence>> {
        let sql = format!(
            "UPDATE leases SET holder = $1, generation = generation + 1, expires_at_ms = {} + $2 \
             WHERE name = $3 AND holder = $4 AND generation = $5",
            self.now_ms_sql()
        );
        let affected = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(holder)
                .bind(ttl_ms)
                .bind(&previous.name)
                .bind(&previous.holder)
                .bind(previous.generation)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok((affected == 1).then(|| Fence {
            lease: previous.name.clone(),
            holder: holder.to_owned(),
            generation: previous.generation + 1,
        }))
    }

    /// Extends a lease we hold. `false` when it is no longer ours (another
    /// holder took it over): the caller must stop working under it.
    pub async fn renew_lease(&self, fence: &Fence, ttl_ms: i64) -> Result<bool> {
        let sql = format!(
            "UPDATE leases SET expires_at_ms = {} + $1 WHERE name = $2 AND holder = $3 AND generation = $4",
            self.now_ms_sql()
        );
        let affected = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(ttl_ms)
                .bind(&fence.lease)
                .bind(&fence.holder)
                .bind(fence.generation)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(affected == 1)
    }

    pub async fn release_lease(&self, fence: &Fence) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2 AND generation = $3")
                .bind(&fence.lease)
                .bind(&fence.holder)
                .bind(fence.generation)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Every lease whose name starts with `prefix` (one per mailbox at
    /// most: the table is small, so the prefix is tested here).
    pub async fn leases(&self, prefix: &str) -> Result<Vec<Lease>> {
        let all: Vec<Lease> = with_pool!(self, |pool| {
            sqlx::query("SELECT name, holder, generation, expires_at_ms FROM leases ORDER BY name")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| {
                    Ok(Lease {
                        name: row.try_get("name")?,
                        holder: row.try_get("holder")?,
                        generation: row.try_get("generation")?,
                        expires_at_ms: row.try_get("expires_at_ms")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?
        });
        Ok(all
            .into_iter()
            .filter(|lease| lease.name.starts_with(prefix))
            .collect())
    }

    /// Registers or refreshes a running instance.
    pub async fn instance_heartbeat(
        &self,
        id: &str,
        host: &str,
        pid: u32,
        started_at: DateTime<Utc>,
    ) -> Result<()> {
        let sql = format!(
            "INSERT INTO instances (id, host, pid, started_at, seen_at_ms) VALUES ($1, $2, $3, $4, {}) \
             ON CONFLICT (id) DO UPDATE SET seen_at_ms = excluded.seen_at_ms",
            self.now_ms_sql()
        );
        with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(id)
                .bind(host)
                .bind(i64::from(pid))
                .bind(started_at)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    pub async fn remove_instance(&self, id: &str) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM instances WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Instances seen within the last `ttl_ms`; older rows are removed.
    pub async fn live_instances(&self, ttl_ms: i64) -> Result<Vec<InstanceRow>> {
        let now = self.now_ms_sql();
        let purge = format!("DELETE FROM instances WHERE seen_at_ms < {now} - $1");
        with_pool!(self, |pool| {
            sqlx::query(&purge).bind(ttl_ms).execute(pool).await?;
            sqlx::query("SELECT id, host, pid, started_at, seen_at_ms FROM instances ORDER BY id")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| {
                    Ok(InstanceRow {
                        id: row.try_get("id")?,
                        host: row.try_get("host")?,
                        pid: u32::try_from(row.try_get::<i64, _>("pid")?).unwrap_or(0),
                        started_at: row.try_get("started_at")?,
                        seen_at_ms: row.try_get("seen_at_ms")?,
                    })
                })
                .collect()
        })
    }

    /// Asks the instance working `mailbox_name` to run it now.
    pub async fn request_run(
        &self,
        mailbox_name: &str,
        requested_by: &str,
        at: DateTime<Utc>,
    ) -> Result<i64> {
        with_pool!(self, |pool| {
            let row = sqlx::query(
                "INSERT INTO run_requests (mailbox_name, requested_by, requested_at) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(mailbox_name)
            .bind(requested_by)
            .bind(at)
            .fetch_one(pool)
            .await?;
            Ok(row.try_get::<i64, _>("id")?)
        })
    }

    /// Claims the open requests of a mailbox for `holder`; their ids.
    pub async fn claim_run_requests(&self, mailbox_name: &str, holder: &str) -> Result<Vec<i64>> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE run_requests SET claimed_by = $1 \
                 WHERE lower(mailbox_name) = lower($2) AND finished_at IS NULL AND claimed_by IS NULL RETURNING id",
            )
            .bind(holder)
            .bind(mailbox_name)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| Ok(row.try_get::<i64, _>("id")?))
            .collect()
        })
    }

    /// Whether a request for the mailbox waits unclaimed.
    pub async fn run_requested(&self, mailbox_name: &str) -> Result<bool> {
        with_pool!(self, |pool| {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM run_requests \
                 WHERE lower(mailbox_name) = lower($1) AND finished_at IS NULL AND claimed_by IS NULL",
            )
            .bind(mailbox_name)
            .fetch_one(pool)
            .await?;
            Ok(row.try_get::<i64, _>("n")? > 0)
        })
    }

    pub async fn finish_run_requests(
        &self,
        ids: &[i64],
        at: DateTime<Utc>,
        run_id: Option<i64>,
        summary: Option<&str>,
        error: Option<&str>,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            for id in ids {
                sqlx::query("UPDATE run_requests SET finished_at = $1, run_id = $2, summary = $3, error = $4 WHERE id = $5")
                    .bind(at)
                    .bind(run_id)
                    .bind(summary)
                    .bind(error)
                    .bind(id)
                    .execute(pool)
                    .await?;
            }
            Ok(())
        })
    }

    pub async fn run_request(&self, id: i64) -> Result<RunRequest> {
        with_pool!(self, |pool| {
            let row = sqlx::query(
                "SELECT id, mailbox_name, requested_by, claimed_by, finished_at, run_id, summary, error \
                 FROM run_requests WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
            .ok_or_else(|| StoreError::Conflict(format!("there is no run request {id}")))?;
            Ok(RunRequest {
                id: row.try_get("id")?,
                mailbox_name: row.try_get("mailbox_name")?,
                requested_by: row.try_get("requested_by")?,
                claimed_by: row.try_get("claimed_by")?,
                finished_at: row.try_get("finished_at")?,
                run_id: row.try_get("run_id")?,
                summary: row.try_get("summary")?,
                error: row.try_get("error")?,
            })
        })
    }

    /// Withdraws a request nobody claimed (the asker gave up waiting).
    pub async fn withdraw_run_request(&self, id: i64) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM run_requests WHERE id = $1 AND claimed_by IS NULL")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
