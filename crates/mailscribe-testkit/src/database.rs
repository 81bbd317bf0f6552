//! Throwaway databases: a SQLite file in a temporary directory, or a
//! PostgreSQL database created on the test server and dropped afterwards.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The server tests create their databases on: `TEST_DATABASE_URL`, else
/// the local server this machine runs.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub enum TestDatabase {
    Sqlite {
        dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl TestDatabase {
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("mailscribe.db").display());
        TestDatabase::Sqlite { dir, url }
    }

    /// Creates a fresh database. Panics with a hint when no server answers:
    /// the README's test command starts one, or set `TEST_DATABASE_URL`.
    pub async fn postgres() -> TestDatabase {
        TestDatabase::postgres_on(&postgres_admin_url()).await
    }

    /// Creates a fresh database on the server of `admin_url` (a private
    /// `PgServer`, say).
    pub async fn postgres_on(admin_url: &str) -> TestDatabase {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let admin_url = admin_url.to_owned();
        let name = format!(
            "mailscribe_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            rand_suffix()
        );
        let mut conn = PgConnection::connect(&admin_url).await.unwrap_or_else(|err| {
            panic!(
                "cannot reach PostgreSQL at {admin_url}: {err}. Start one (the README's test command does), \
                 or set TEST_DATABASE_URL to a server where this user may create databases"
            )
        });
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        let url = replace_database(&admin_url, &name);
        TestDatabase::Postgres {
            admin_url,
            name,
            url,
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDatabase::Sqlite { url, .. } | TestDatabase::Postgres { url, .. } => url,
        }
    }

    pub fn sqlite_dir(&self) -> Option<&std::path::Path> {
        match self {
            TestDatabase::Sqlite { dir, .. } => Some(dir.path()),
            TestDatabase::Postgres { .. } => None,
        }
    }
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos % 100_000
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let TestDatabase::Postgres {
            admin_url, name, ..
        } = self
        else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop runs inside or outside a runtime; a thread with its own
        // runtime works in both.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop a test database");
        }
    }
}
