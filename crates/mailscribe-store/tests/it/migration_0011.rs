//! Migration 0011 rebuilds `interaction_entries` on SQLite (SQLite cannot
//! drop a NOT NULL constraint). A database written by the previous version,
//! with entries, a deleted entry and a comment, must come through whole:
//! the entries, the comment (which the old table's ON DELETE CASCADE would
//! take along), subject search, and entry numbers that are not handed out
//! again.

use mailscribe_store::{DatabaseUrl, EntryFilter, Store};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

#[tokio::test]
async fn migration_0011_keeps_entries_comments_and_search_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePool::connect_with(options).await.unwrap();
    let mut migrator = sqlx::migrate!("./migrations/sqlite");
    let before: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= 10)
        .cloned()
        .collect();
    migrator.migrations = before.into();
    migrator.run(&pool).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO messages (message_key, subject, received_at, date_fallback, size, created_at) \
         VALUES ('k', 'Quote', '2026-01-01T10:00:00Z', FALSE, 1, '2026-01-01T10:00:00Z');
         INSERT INTO interaction_entries (message_record_id, contact_no, salesperson_code, occurred_at, description, subject, \
             direction, initiated_by, correspondence_type, template_code, cost_hundredths, duration_minutes, email_logged, \
             attempt_failed, canceled, date_fallback) VALUES \
             (1, 'C1', 'SP1', '2026-01-01T10:00:00Z', 'Quote', 'Quote for pumps', 'inbound', 'them', 'email', 'EMAIL', 0, 0, TRUE, FALSE, FALSE, FALSE), \
             (1, 'C2', 'SP1', '2026-01-01T10:00:00Z', 'Quote', 'Quote for pumps', 'inbound', 'them', 'email', 'EMAIL', 0, 0, TRUE, FALSE, FALSE, FALSE);
         DELETE FROM interaction_entries WHERE contact_no = 'C2';
         INSERT INTO entry_comments (entry_no, line_no, created_at, comment) VALUES (1, 1, '2026-01-02T09:00:00Z', 'Called back');",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = Store::open(&DatabaseUrl::Sqlite(path.clone()))
        .await
        .unwrap();
    let entries = store.entries_after(0, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (
            entries[0].entry_no,
            entries[0].message_record_id,
            entries[0].bc_entry_no
        ),
        (1, Some(1), None)
    );
    assert_eq!(
        store.entry_comments(1).await.unwrap().len(),
        1,
        "the comment survives the rebuild"
    );
    let filter = EntryFilter {
        text: Some("pumps".into()),
        ..EntryFilter::default()
    };
    assert_eq!(
        store.entries_page(&filter, None, 10).await.unwrap().len(),
        1,
        "subject search still works"
    );
    store.close().await;

    // The next entry number is above the deleted one.
    let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path))
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO interaction_entries (contact_no, salesperson_code, occurred_at, description, subject, direction, \
         initiated_by, correspondence_type, template_code, cost_hundredths, duration_minutes, email_logged, attempt_failed, \
         canceled, date_fallback, bc_entry_no) VALUES ('C1', 'SP1', '2025-01-01T10:00:00Z', 'Call', 'Call', 'inbound', \
         'them', '', '', 0, 0, FALSE, FALSE, FALSE, FALSE, 7)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let next: i64 = sqlx::query_scalar("SELECT MAX(entry_no) FROM interaction_entries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        next, 3,
        "entry number 2 was used before and is not handed out again"
    );
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
}
