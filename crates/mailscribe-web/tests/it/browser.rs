//! End to end in a real headless Chromium: sign in, filter the log, open
//! an entry, view a hostile message (its script does not run, its remote
//! image is not fetched), and create an opportunity from the entry.
//! `MAILSCRIBE_SCREENSHOTS=DIR` keeps screenshots of the main pages.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Utc;
use mailscribe_core::Role;
use mailscribe_testkit::Browser;
use mailscribe_web::{AppState, router};

use crate::{App, logged_copy};

/// A server that counts the connections it gets: the "remote image host".
fn trap() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, hits)
}

/// A 4 by 3 pixel PNG, sent inline with the message (`cid:logo@customer`).
const LOGO_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAAEElEQVR4nGP4z8AARww4OQD1MQv1NXv7ggAAAABJRU5ErkJggg==";

fn hostile_message(trap_port: u16) -> String {
    format!(
        "From: Carl <c1@customer.example>\r\nTo: sp1@ourco.example\r\nSubject: Quarterly review\r\n\
         Message-ID: <quarterly@customer.example>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/related; boundary=rel\r\n\r\n\
         --rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <p id=\"hello\">Hello from the customer</p>\
         <script>window.parent.document.title = 'pwned'; window.parent.pwned = true;</script>\
         <img src=\"http://127.0.0.1:{trap_port}/pixel.gif\" onerror=\"window.parent.pwned = true\">\
         <img id=\"logo\" src=\"cid:logo@customer\">\
         <div style=\"background:url(http://127.0.0.1:{trap_port}/bg.png)\">styled</div>\r\n\
         --rel\r\nContent-Type: image/png\r\nContent-ID: <logo@customer>\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {LOGO_PNG}\r\n--rel--\r\n"
    )
}

async fn shot(browser: &Browser, name: &str) {
    if let Ok(dir) = std::env::var("MAILSCRIBE_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        browser
            .screenshot(&std::path::Path::new(&dir).join(format!("{name}.png")))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_filter_open_view_and_create_an_opportunity_in_chromium() {
    let app = App::new().await;
    app.seed_entries().await;
    let (trap_port, trap_hits) = trap();
    let copy = logged_copy(
        100,
        "quarterly@customer.example",
        "Quarterly review",
        "SP1",
        "1",
        Some(hostile_message(trap_port).into_bytes()),
    );
    let template = crate::email_template();
    app.store
        .commit_batch(&[copy], &template, Utc::now(), None)
        .await
        .unwrap();
    app.add_user("root", Role::Admin, None).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(
        axum::serve(listener, router(AppState::new(app.store.clone(), false))).into_future(),
    );

    let browser = Browser::start().await;
    browser.goto(&format!("{base}/interactions")).await;
    assert!(
        browser.url().await.ends_with("/login"),
        "signed out users land on the sign-in page"
    );
    shot(&browser, "sign-in").await;
    browser.type_into("input[name=name]", "root").await;
    browser
        .type_into("input[name=password]", "root-password")
        .await;
    browser.click("button[type=submit]").await;
    browser
        .wait_for_url("the log after signing in", |url| {
            url.ends_with("/interactions")
        })
        .await;
    assert_eq!(
        browser.count("#log tbody tr").await,
        6,
        "the whole log after signing in"
    );
    shot(&browser, "interaction-log").await;

    browser.type_into("input[name=q]", "quarterly").await;
    browser.click("form.filters button[type=submit]").await;
    browser
        .wait_for_url("the filtered log", |url| url.contains("q=quarterly"))
        .await;
    assert_eq!(
        browser.count("#log tbody tr").await,
        1,
        "filtered by a subject word"
    );
    browser.click("#log tbody tr td a").await;
    browser
        .wait_for_url("the entry", |url| url.contains("/interactions/"))
        .await;
    assert_eq!(browser.text("#subject").await, "Quarterly review");
    shot(&browser, "entry").await;

    browser.click("#show-message").await;
    browser
        .wait_for_url("the message", |url| url.ends_with("/message"))
        .await;
    assert!(browser.text("#remote-notice").await.contains("not loaded"));
    browser.enter_frame("#html-body").await;
    let shown = browser.text("body").await;
    assert!(
        shown.contains("Hello from the customer") && shown.contains("styled"),
        "{shown}"
    );
    assert_eq!(
        browser.size("img[src^='data:image/png']").await,
        (4.0, 3.0),
        "the message's own inline image is shown"
    );
    browser.leave_frame().await;
    shot(&browser, "message").await;
    assert_ne!(
        browser.title().await,
        "pwned",
        "the message's script did not run"
    );
    assert_eq!(
        browser.execute("return window.pwned === undefined;").await,
        serde_json::Value::Bool(true)
    );
    assert_eq!(
        trap_hits.load(Ordering::SeqCst),
        0,
        "no remote content was fetched"
    );

    browser.click("h1 a").await;
    browser
        .wait_for_url("the entry again", |url| !url.ends_with("/message"))
        .await;
    browser.click("#create-opportunity").await;
    browser
        .wait_for_url("the new opportunity", |url| {
            url.ends_with("/opportunities/OP-1")
        })
        .await;
    assert_eq!(browser.text("#description").await, "Quarterly review");
    shot(&browser, "opportunity").await;
    browser.click("#entries a").await;
    browser
        .wait_for_url("the linked entry", |url| url.contains("/interactions/"))
        .await;
    assert_eq!(
        browser.text("#opportunity-link").await,
        "OP-1",
        "linked both ways"
    );

    drop(browser);
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn leaving_the_assisted_setup_with_unsaved_answers_asks_first() {
    let app = App::new().await;
    app.add_user("root", Role::Admin, None).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(
        axum::serve(listener, router(AppState::new(app.store.clone(), false))).into_future(),
    );
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/login")).await;
    browser.type_into("input[name=name]", "root").await;
    browser
        .type_into("input[name=password]", "root-password")
        .await;
    browser.click("button[type=submit]").await;
    browser
        .wait_for_url("signed in", |url| url.ends_with("/interactions"))
        .await;
    let unsaved = || async {
        browser
            .execute("return document.getElementById('step-form').dataset.unsaved")
            .await
    };
    let registered = || async {
        // The page's handler cancels the unload when there is something to lose.
        browser
            .execute("var e = new Event('beforeunload', {cancelable: true}); window.dispatchEvent(e); return e.defaultPrevented")
            .await
    };
    browser
        .goto(&format!("{base}/admin/email-logging/assisted"))
        .await;
    assert_eq!(
        unsaved().await,
        "false",
        "nothing typed on the first step yet"
    );
    assert_eq!(registered().await, false);
    browser.type_into("input[name=name]", "eu").await;
    assert_eq!(unsaved().await, "true", "typing is an unsaved answer");
    assert_eq!(registered().await, true, "leaving now asks");
    browser.click("#next").await;
    browser
        .wait_for_url("step 2", |url| url.contains("assisted"))
        .await;
    assert!(browser.text("#step-title").await.starts_with("Step 2"));
    assert_eq!(
        unsaved().await,
        "true",
        "earlier answers are not in a mailbox yet"
    );
    assert_eq!(registered().await, true);
    server.abort();
}

/// Signs `name` in through the form in `browser` and waits for the log.
async fn sign_in(browser: &Browser, base: &str, name: &str, password: &str) {
    browser.goto(&format!("{base}/login")).await;
    browser.type_into("input[name=name]", name).await;
    browser.type_into("input[name=password]", password).await;
    browser.click("button[type=submit]").await;
    browser
        .wait_for_url("the log after signing in", |url| {
            url.ends_with("/interactions")
        })
        .await;
}

/// The Users page and the account page in Chromium: an admin disables a
/// signed-in user, whose very next page is the sign-in page; the admin
/// changes their own password, which ends their own session too, and
/// signs in again with the new one only.
#[tokio::test(flavor = "multi_thread")]
async fn disabling_a_user_and_changing_ones_password_in_chromium() {
    let app = App::new().await;
    app.add_user("root", Role::Admin, None).await;
    app.add_user("uma", Role::User, None).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(
        axum::serve(listener, router(AppState::new(app.store.clone(), false))).into_future(),
    );

    let uma = Browser::start().await;
    sign_in(&uma, &base, "uma", "uma-password").await;
    let root = Browser::start().await;
    sign_in(&root, &base, "root", "root-password").await;

    root.goto(&format!("{base}/admin/users")).await;
    assert_eq!(root.text("#user-uma td:nth-child(4)").await, "active");
    shot(&root, "users").await;
    root.click("#user-uma form[action$='/disable'] button")
        .await;
    root.wait_for_url("the Users page again", |url| url.contains("/admin/users"))
        .await;
    assert_eq!(root.text("#user-uma td:nth-child(4)").await, "disabled");

    uma.goto(&format!("{base}/interactions")).await;
    assert!(
        uma.url().await.ends_with("/login"),
        "a disabled user's session ends at once"
    );

    root.goto(&format!("{base}/account")).await;
    root.type_into("#password input[name=current]", "root-password")
        .await;
    root.type_into("#password input[name=new]", "quiet-harbor-lantern")
        .await;
    root.type_into("#password input[name=repeat]", "quiet-harbor-lantern")
        .await;
    root.click("#password button[type=submit]").await;
    root.wait_for_url("the sign-in page after the change", |url| {
        url.ends_with("/login")
    })
    .await;
    root.goto(&format!("{base}/admin/users")).await;
    assert!(
        root.url().await.ends_with("/login"),
        "changing one's password ends one's own session too"
    );
    // The old password no longer signs in; the new one does.
    root.type_into("input[name=name]", "root").await;
    root.type_into("input[name=password]", "root-password")
        .await;
    root.click("button[type=submit]").await;
    root.wait_for_url("the sign-in page again", |url| url.ends_with("/login"))
        .await;
    assert!(
        root.text("#problem")
            .await
            .contains("Wrong user name or password"),
        "the old password is refused: {}",
        root.source().await
    );
    sign_in(&root, &base, "root", "quiet-harbor-lantern").await;
    server.abort();
}
