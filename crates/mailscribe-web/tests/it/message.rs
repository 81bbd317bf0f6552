//! Opening a logged message: from the store in full mode, from a real
//! Dovecot storage folder in reference mode, and what hostile content does.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, header};
use chrono::Utc;
use mailscribe_core::Role;
use mailscribe_mail::{ConnectionConfig, Credentials, Security, Session};
use mailscribe_store::{DispositionUpdate, MessageRecord};
use mailscribe_testkit::{Dovecot, STORAGE};
use mailscribe_web::{AppState, MessageSource, router};
use secrecy::SecretString;

use crate::{App, email_template, logged_copy};

const HOSTILE: &str = "From: Carl <c1@customer.example>\r\nTo: sp1@ourco.example\r\nSubject: Your offer\r\n\
Message-ID: <hostile@customer.example>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n\
--a\r\nContent-Type: text/plain\r\n\r\nPlain words here\r\n--a\r\nContent-Type: text/html\r\n\r\n\
<p onmouseover=\"alert(2)\">Hello</p><script>alert(1)</script><img src=\"https://tracker.example/pixel.gif\">\
<a href=\"javascript:alert(3)\">click</a>\r\n--a--\r\n--b\r\nContent-Type: text/html; name=\"page.html\"\r\n\
Content-Disposition: attachment; filename=\"../page.html\"\r\n\r\n<script>alert(4)</script>\r\n--b--\r\n";

/// Logs HOSTILE for SP1 (with its bytes kept when `full`) and returns the
/// entry number and the ledger id.
async fn log_hostile(app: &App, full: bool) -> (i64, i64) {
    let copy = logged_copy(
        1,
        "hostile@customer.example",
        "Your offer",
        "SP1",
        "1",
        full.then(|| HOSTILE.as_bytes().to_vec()),
    );
    let template = email_template();
    let committed = app
        .store
        .commit_batch(&[copy], &template, Utc::now(), None)
        .await
        .unwrap();
    let entry = app.store.entries_after(0, 1).await.unwrap().remove(0);
    (entry.entry_no, committed[0].ledger_id)
}

#[tokio::test]
async fn a_hostile_message_shows_without_running_or_loading_anything() {
    let app = App::new().await;
    let (no, _) = log_hostile(&app, true).await;
    app.add_user("sally", Role::Salesperson, Some("SP1")).await;
    app.add_user("sam", Role::Salesperson, Some("SP2")).await;
    let sally = app.login("sally").await;
    let page = app
        .get(&format!("/interactions/{no}/message"), Some(&sally))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csp = page
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("img-src data:"),
        "{csp}"
    );
    assert!(page.body.contains("sandbox=\"\""));
    assert!(page.body.contains("Plain words here"));
    assert!(page.body.contains("remote content"));
    for forbidden in ["<script", "tracker.example", "javascript:", "onmouseover"] {
        assert!(
            !page.body.contains(forbidden),
            "{forbidden} reached the page"
        );
    }
    assert!(page.body.contains("page.html"), "the attachment is listed");

    let download = app
        .get(
            &format!("/interactions/{no}/message/attachments/0"),
            Some(&sally),
        )
        .await;
    assert_eq!(download.status, StatusCode::OK);
    let disposition = download
        .headers
        .get(header::CONTENT_DISPOSITION)
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(disposition, "attachment; filename=\"page.html\"");
    assert_eq!(
        download.headers.get(header::CONTENT_TYPE).unwrap(),
        "application/octet-stream"
    );
    assert_eq!(
        app.get(
            &format!("/interactions/{no}/message/attachments/9"),
            Some(&sally)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    let sam = app.login("sam").await;
    assert_eq!(
        app.get(&format!("/interactions/{no}/message"), Some(&sam))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(
            &format!("/interactions/{no}/message/attachments/0"),
            Some(&sam)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

/// The binary's `MessageSource`, for a fixed connection: the IMAP side is
/// the real Dovecot.
struct Storage(ConnectionConfig);

impl MessageSource for Storage {
    fn fetch<'a>(&'a self, record: &'a MessageRecord) -> mailscribe_web::FetchedRaw<'a> {
        Box::pin(async move {
            mailscribe_worker::fetch_stored_message(&self.0, STORAGE, record)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

#[tokio::test]
async fn reference_mode_reads_the_storage_folder_and_says_when_the_message_is_gone() {
    let dovecot = Dovecot::start();
    let connection = ConnectionConfig {
        host: "127.0.0.1".into(),
        port: dovecot.imaps_port,
        security: Security::Tls,
        allow_plaintext: false,
        ca_file: Some(dovecot.ca_file()),
        trust: mailscribe_mail::TlsTrust::Bundled,
        credentials: Credentials::Basic {
            username: dovecot.user().into(),
            password: SecretString::from(dovecot.password()),
        },
        timeout: Duration::from_secs(20),
        ignore_capabilities: Vec::new(),
    };
    let mut app = App::new().await;
    app.router = router(
        AppState::new(app.store.clone(), false)
            .with_message_source(Arc::new(Storage(connection.clone()))),
    );
    let (no, ledger_id) = log_hostile(&app, false).await;
    app.add_user("uma", Role::User, None).await;
    let uma = app.login("uma").await;

    // Not in the storage folder: said plainly.
    let gone = app
        .get(&format!("/interactions/{no}/message"), Some(&uma))
        .await;
    assert_eq!(gone.status, StatusCode::GONE);
    assert!(
        gone.body.contains("can no longer be found"),
        "{}",
        gone.body
    );

    // Put it there, as a run would, and record a wrong UID: the Message-ID finds it.
    dovecot.deliver(STORAGE, HOSTILE.as_bytes(), None, false);
    app.store
        .record_dispositions(&[DispositionUpdate {
            ledger_id,
            disposition: "stored".into(),
            storage: Some((STORAGE.into(), 1, 999)),
            move_error: None,
        }])
        .await
        .unwrap();
    let page = app
        .get(&format!("/interactions/{no}/message"), Some(&uma))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Fetched from the storage folder"));
    assert!(page.body.contains("Plain words here"));

    // With the right UID it is fetched directly.
    let mut session = Session::connect(&connection).await.unwrap();
    let storage = session.resolve_folder(STORAGE).await.unwrap();
    let selected = session.examine(&storage).await.unwrap();
    let uid = session.list_messages(selected).await.unwrap()[0].uid;
    session.logout().await;
    app.store
        .record_dispositions(&[DispositionUpdate {
            ledger_id,
            disposition: "stored".into(),
            storage: Some((STORAGE.into(), selected.uid_validity, uid)),
            move_error: None,
        }])
        .await
        .unwrap();
    assert_eq!(
        app.get(&format!("/interactions/{no}/message"), Some(&uma))
            .await
            .status,
        StatusCode::OK
    );
}
