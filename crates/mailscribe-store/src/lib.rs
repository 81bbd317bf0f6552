//! All SQL of Mailscribe. SQLite (the embedded default) and PostgreSQL sit
//! behind one `Store`; callers speak domain types and never see SQL.
//!
//! Both backends run the same statements where the dialects agree (`$1`
//! placeholders, `ON CONFLICT`, `RETURNING`); the `with_pool!` macro expands
//! each body once per backend so that sqlx's types line up. Each dialect has
//! its own migrations. One conformance suite (`tests/it`) runs against both.

mod audit;
mod bc_import;
mod deletion;
mod directory;
mod drafts;
mod export;
mod lease;
mod ledger;
mod log;
mod opportunities;
mod runs;
mod setup;
mod sso;
mod users;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use audit::{AuditEvent, AuditRow};
pub use bc_import::{BcImportSummary, IMPORT_MAILBOX_NAME};
pub use deletion::{DeletionSummary, EntrySelection};
pub use directory::{ContactRow, ImportSummary};
pub use export::{DecisionRow, EntryRow};
pub use lease::{Fence, InstanceRow, Lease, LeaseAttempt, RunRequest};
pub use ledger::{CommittedCopy, DecidedCopy, DispositionUpdate, LedgerState};
pub use log::{EntryComment, EntryCursor, EntryFilter, MessageRecord};
pub use opportunities::{NewOpportunity, OPPORTUNITY_STATUSES, Opportunity};
pub use runs::{RunCounts, RunRecord};
pub use setup::{Campaign, MailboxRow, MailboxStatus};
pub use sso::{NO_PASSWORD, SsoIdentity, SsoPending, SsoRefusal, SsoSignIn};
pub use users::{TokenRow, UserChange, UserRow};

/// Where the data lives, as given to `--db`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "'{0}' is not a database URL: use sqlite://PATH, a file path, or postgres://USER@HOST/DB"
    )]
    BadUrl(String),
    #[error("cannot open the database: {0}")]
    Open(#[source] sqlx::Error),
    /// PostgreSQL's TLS handshake failed: most often the server's
    /// certificate does not verify against `sslrootcert`.
    #[error(
        "cannot open the database over TLS: {0}. With sslmode=verify-ca or verify-full, sslrootcert= in the URL must \
         name the PEM file of the CA that signed the server's certificate, and with verify-full the host in the URL \
         must be a name on that certificate"
    )]
    Tls(#[source] sqlx::Error),
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database cannot be reached or failed as a whole. Runs stop
    /// without counting attempts against any message.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The disk that holds the database is full: the transaction was rolled
    /// back whole. Infrastructure, like `Unavailable`: no attempt counts.
    #[error(
        "the disk holding the database is full ({0}); nothing of the interrupted batch was written: free space on that disk, then run again"
    )]
    DiskFull(#[source] sqlx::Error),
    /// The database refused a statement (a constraint, a bad value).
    #[error("the database refused the data: {0}")]
    Refused(#[source] sqlx::Error),
    /// A business rule stops the change; the message says which.
    #[error("{0}")]
    Conflict(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// A commit under a lease found the lease taken over (its fencing
    /// token is stale): nothing was written.
    #[error("the lease {0} was taken over by another instance; nothing was committed")]
    LeaseLost(String),
}

/// A database error's code: SQLite's numeric result code, or PostgreSQL's
/// SQLSTATE. Told apart by the error's type, not by the code's digits
/// (SQLSTATEs such as 22021 are digits too).
enum ErrorCode {
    Sqlite(i64),
    Postgres(String),
    Unknown,
}

fn error_code(err: &(dyn sqlx::error::DatabaseError + 'static)) -> ErrorCode {
    let Some(code) = err.code() else {
        return ErrorCode::Unknown;
    };
    if err
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        return ErrorCode::Postgres(code.into_owned());
    }
    // Extended SQLite codes keep the primary code in the low byte.
    code.parse::<i64>().map_or(ErrorCode::Unknown, |sqlite| {
        ErrorCode::Sqlite(sqlite & 0xff)
    })
}

/// Whether the database refused this data (a constraint, a bad value), as
/// opposed to failing as a whole (a deadlock, a timeout, a full disk), which
/// must never count against a message.
fn is_refusal(err: &(dyn sqlx::error::DatabaseError + 'static)) -> bool {
    if err.kind() != sqlx::error::ErrorKind::Other {
        return true;
    }
    match error_code(err) {
        // SQLite: TOOBIG, CONSTRAINT, MISMATCH.
        ErrorCode::Sqlite(code) => matches!(code, 18..=20),
        // PostgreSQL SQLSTATE: class 22 data exception, 23 integrity.
        ErrorCode::Postgres(code) => code.starts_with("22") || code.starts_with("23"),
        ErrorCode::Unknown => false,
    }
}

/// SQLite's SQLITE_FULL (13) and PostgreSQL's disk_full (53100).
fn is_disk_full(err: &(dyn sqlx::error::DatabaseError + 'static)) -> bool {
    match error_code(err) {
        ErrorCode::Sqlite(code) => code == 13,
        ErrorCode::Postgres(code) => code == "53100",
        ErrorCode::Unknown => false,
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> StoreError {
        match err {
            sqlx::Error::Database(db) if is_disk_full(db.as_ref()) => {
                StoreError::DiskFull(sqlx::Error::Database(db))
            }
            sqlx::Error::Database(db) if is_refusal(db.as_ref()) => {
                StoreError::Refused(sqlx::Error::Database(db))
            }
            sqlx::Error::Database(db) => StoreError::Unavailable(sqlx::Error::Database(db)),
            sqlx::Error::RowNotFound
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::Decode(_)
            | sqlx::Error::Encode(_)
            | sqlx::Error::TypeNotFound { .. } => StoreError::Refused(err),
            other => StoreError::Unavailable(other),
        }
    }
}

impl StoreError {
    /// Infrastructure errors end a run; they are never a message's fault.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::Open(_)
                | StoreError::Tls(_)
                | StoreError::DiskFull(_)
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl FromStr for DatabaseUrl {
    type Err = StoreError;

    /// Accepts `sqlite://PATH` (everything after the prefix is the path, so
    /// `sqlite:///srv/x.db` is `/srv/x.db`), `sqlite:PATH`, a bare path, and
    /// `postgres://` or `postgresql://` URLs.
    fn from_str(input: &str) -> Result<DatabaseUrl> {
        let input = input.trim();
        if input.starts_with("postgres://") || input.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(input.to_owned()));
        }
        let path = input
            .strip_prefix("sqlite://")
            .or_else(|| input.strip_prefix("sqlite:"))
            .unwrap_or(input);
        if path.is_empty() || path.contains("://") {
            return Err(StoreError::BadUrl(input.to_owned()));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    /// Never prints a PostgreSQL password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => write!(f, "{}", redact_url_password(url)),
        }
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

fn redact_url_password(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            // A password may itself contain '@': the host follows the last.
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => base.to_owned(),
            },
            None => base.to_owned(),
        },
        None => base.to_owned(),
    };
    match query {
        None => base,
        Some(query) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{base}?{}", pairs.join("&"))
        }
    }
}

/// A failed connection to PostgreSQL, told apart when TLS refused it.
fn open_error(err: sqlx::Error) -> StoreError {
    let tls = match &err {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => {
            let text = io.to_string().to_ascii_lowercase();
            text.contains("certificate") || text.contains("tls")
        }
        _ => false,
    };
    if tls {
        StoreError::Tls(err)
    } else {
        StoreError::Open(err)
    }
}

impl DatabaseUrl {
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            DatabaseUrl::Sqlite(path) => Some(path),
            DatabaseUrl::Postgres(_) => None,
        }
    }
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The database, whichever it is. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

/// Runs `$body` with `$pool` bound to the backend's pool. The body is
/// expanded once per backend, so the same sqlx calls type-check against
/// each database.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The length a list of `n` bound values is padded to (by repeating its
/// last value), so that a few statement texts serve lists of every length.
/// SQLite prepares a statement from its text, and for a statement with
/// hundreds of parameters that costs more than running it; sqlx caches
/// prepared statements by text, so a list whose length changes with every
/// batch would be prepared again each time.
pub(crate) fn padded_len(n: usize) -> usize {
    const SHAPES: [usize; 8] = [1, 4, 16, 32, 64, 128, 256, 512];
    SHAPES
        .iter()
        .copied()
        .find(|&shape| shape >= n)
        .unwrap_or(n)
}

/// Pushes `$values` as a comma-separated list of binds (`$bind` for each
/// `$value`), padded to `padded_len` by repeating the last one. For `IN`
/// lists, where a repeated value changes nothing.
macro_rules! push_padded_list {
    ($query:expr, $values:expr, |$value:ident| $bind:expr) => {{
        let values = $values;
        let mut separated = $query.separated(", ");
        for $value in values.iter() {
            separated.push_bind($bind);
        }
        if let Some($value) = values.last() {
            for _ in values.len()..$crate::padded_len(values.len()) {
                separated.push_bind($bind);
            }
        }
    }};
}
pub(crate) use push_padded_list;

impl Store {
    /// Opens (creating a missing SQLite file) and applies pending migrations.
    pub async fn open(url: &DatabaseUrl) -> Result<Store> {
        let backend = match url {
            DatabaseUrl::Sqlite(path) => {
                // Created readable by its owner only; SQLite gives the -wal
                // and -shm files the database file's mode.
                if !path.exists() {
                    use std::os::unix::fs::OpenOptionsExt;
                    let created = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(path);
                    if let Err(err) = created
                        && err.kind() != std::io::ErrorKind::AlreadyExists
                    {
                        return Err(StoreError::Open(sqlx::Error::Io(err)));
                    }
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // WAL with NORMAL survives a killed process; only power
                    // loss can drop the last commits.
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(30))
                    // A multi-row statement that may fail a constraint keeps
                    // a statement journal; in memory rather than a temporary
                    // file it costs no system calls.
                    .pragma("temp_store", "memory");
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(StoreError::Open)?;
                sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
                Backend::Sqlite(pool)
            }
            DatabaseUrl::Postgres(url) => {
                let options: PgConnectOptions = url.parse().map_err(StoreError::Open)?;
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(open_error)?;
                sqlx::migrate!("./migrations/postgres").run(&pool).await?;
                Backend::Postgres(pool)
            }
        };
        Ok(Store { backend })
    }

    /// Whether the database answers and holds exactly the migrations this
    /// version ships, for readiness checks. An error when it does not
    /// answer.
    pub async fn migrations_current(&self) -> Result<bool> {
        let (applied, known): (i64, usize) = match &self.backend {
            Backend::Sqlite(pool) => {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success")
                    .fetch_one(pool)
                    .await?;
                (
                    sqlx::Row::try_get(&row, "n")?,
                    sqlx::migrate!("./migrations/sqlite").iter().count(),
                )
            }
            Backend::Postgres(pool) => {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success")
                    .fetch_one(pool)
                    .await?;
                (
                    sqlx::Row::try_get(&row, "n")?,
                    sqlx::migrate!("./migrations/postgres").iter().count(),
                )
            }
        };
        Ok(usize::try_from(applied).is_ok_and(|applied| applied == known))
    }

    /// A consistent copy of a SQLite database in a new file (`VACUUM INTO`),
    /// taken while others keep writing. `None` on PostgreSQL, whose own
    /// tools (`pg_dump`) do this.
    pub async fn backup_sqlite_into(&self, path: &Path) -> Result<Option<()>> {
        match &self.backend {
            Backend::Sqlite(pool) => {
                sqlx::query("VACUUM INTO $1")
                    .bind(path.display().to_string())
                    .execute(pool)
                    .await?;
                Ok(Some(()))
            }
            Backend::Postgres(_) => Ok(None),
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        let sqlite = |s: &str| DatabaseUrl::Sqlite(PathBuf::from(s));
        let cases: &[(&str, Option<DatabaseUrl>)] = &[
            ("sqlite:///srv/x.db", Some(sqlite("/srv/x.db"))),
            ("sqlite://rel/x.db", Some(sqlite("rel/x.db"))),
            ("sqlite:x.db", Some(sqlite("x.db"))),
            ("./mailscribe.db", Some(sqlite("./mailscribe.db"))),
            (
                "postgres://u@h/db",
                Some(DatabaseUrl::Postgres("postgres://u@h/db".into())),
            ),
            (
                "postgresql://u@h/db",
                Some(DatabaseUrl::Postgres("postgresql://u@h/db".into())),
            ),
            ("mysql://h/db", None),
            ("", None),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<DatabaseUrl>().ok(), *expected, "{input}");
        }
    }

    #[test]
    fn postgres_password_is_redacted() {
        let cases = [
            (
                "postgres://app:hunter2@db.example/mail",
                "postgres://app:***@db.example/mail",
            ),
            (
                "postgres://app:p@ss@db.example/mail",
                "postgres://app:***@db.example/mail",
            ),
            (
                "postgres://app@db.example/mail?password=hunter2&sslmode=require",
                "postgres://app@db.example/mail?password=***&sslmode=require",
            ),
            ("postgres://db.example/mail", "postgres://db.example/mail"),
        ];
        for (input, expected) in cases {
            let url: DatabaseUrl = input.parse().unwrap();
            assert_eq!(url.to_string(), expected);
        }
    }
}
