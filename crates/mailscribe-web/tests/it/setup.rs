//! The email logging setup pages through the router: who may use them,
//! what is locked while logging is enabled, that a web session can never
//! store an `exec:` secret source, the mailbox list and each mailbox's
//! pages (today's `/admin/email-logging` URLs being `default`), and the
//! assisted setup's draft in the database. Checks and folder lists need
//! the mail server: here a fake `SetupBackend` stands in for it where a
//! test needs them to pass; the binary's end-to-end test in the CLI crate
//! runs the real ones.

use std::sync::Arc;

use axum::http::StatusCode;
use mailscribe_core::{
    AuthKind, CheckLine, Enablement, MailboxName, MailboxSetup, Role, SealedSecret, SecretRef,
    Security, TlsTrust,
};
use mailscribe_store::{MailboxStatus, Store};
use mailscribe_web::{AppState, BoxFuture, SecretField, SetupBackend, router};

use crate::App;

const SETUP: &str = "host=imap.example.com&port=993&security=tls&trust=bundled&auth=basic&username=queue\
                     &queue=Public%20Folders%2FEmail%20Logging%2FQueue&storage=Public%20Folders%2FEmail%20Logging%2FStorage";

async fn admin_app() -> (App, String, String) {
    let app = App::new().await;
    app.add_user("root", Role::Admin, None).await;
    let session = app.login("root").await;
    let csrf = app.get("/admin/email-logging", Some(&session)).await.csrf();
    (app, session, csrf)
}

async fn post(app: &App, session: &str, path: &str, form: &str) -> crate::Reply {
    app.send(
        "POST",
        path,
        &[("mailscribe_session", session)],
        Some(form),
        None,
    )
    .await
}

/// The mail server's side of the setup pages, faked at that boundary:
/// every check passes, the folders are Queue and Storage, and sealing
/// returns a marker (never the typed value).
struct FakeMailServer;

const SEALED: &str = "v1:test:nonce:sealed";

impl SetupBackend for FakeMailServer {
    fn seal(
        &self,
        _field: SecretField,
        _plain: &secrecy::SecretString,
    ) -> Result<SealedSecret, String> {
        Ok(SealedSecret(SEALED.into()))
    }
    fn list_folders<'a>(
        &'a self,
        _setup: &'a MailboxSetup,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async { Ok(vec!["Queue".to_owned(), "Storage".to_owned()]) })
    }
    fn check<'a>(&'a self, _setup: &'a MailboxSetup) -> BoxFuture<'a, Vec<CheckLine>> {
        Box::pin(async { vec![CheckLine::pass("login", "logged in as queue")] })
    }
    fn refuse_source(&self, _source: &SecretRef) -> Option<String> {
        None
    }
}

/// A router on `store` whose setup pages reach the fake mail server.
fn router_with_mail_server(store: Store) -> axum::Router {
    router(AppState::new(store, false).with_setup_backend(Arc::new(FakeMailServer)))
}

/// The admin app, its setup pages reaching the fake mail server.
async fn admin_app_with_mail_server() -> (App, String, String) {
    let (app, session, csrf) = admin_app().await;
    let router = router_with_mail_server(app.store.clone());
    (App { router, ..app }, session, csrf)
}

fn name(text: &str) -> MailboxName {
    MailboxName::parse(text).unwrap()
}

pub(crate) fn mailbox_setup(host: &str) -> MailboxSetup {
    MailboxSetup {
        host: host.into(),
        port: 993,
        security: Security::Tls,
        auth: AuthKind::Basic,
        username: "queue".into(),
        password: Some(SecretRef::Env("PW".into())),
        oauth: None,
        queue_folder: "Queue".into(),
        storage_folder: "Storage".into(),
        not_logged_folder: None,
        quarantine_folder: None,
        batch_size: 100,
        allow_plaintext: false,
        ca_file: None,
        tls_trust: TlsTrust::Bundled,
    }
}

/// `default` on a.example and `eu` on eu.example, both disabled.
async fn two_mailboxes(store: &Store) {
    store
        .save_mailbox_setup(&MailboxName::default_name(), &mailbox_setup("a.example"))
        .await
        .unwrap();
    store
        .save_mailbox_setup(&name("eu"), &mailbox_setup("eu.example"))
        .await
        .unwrap();
}

async fn enabled(store: &Store, mailbox: &str) -> bool {
    store.enablement(&name(mailbox)).await.unwrap().enabled
}

async fn host(store: &Store, mailbox: &str) -> Option<String> {
    store
        .mailbox_setup(&name(mailbox))
        .await
        .unwrap()
        .map(|setup| setup.host)
}

#[tokio::test]
async fn only_admins_reach_the_setup_and_every_form_needs_its_csrf_token() {
    let (app, session, csrf) = admin_app().await;
    let page = app.get("/admin/email-logging", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Nothing is set up yet")
            && page.body.contains("/admin/email-logging/assisted")
    );
    assert!(
        app.get("/admin/mail-server-guide", Some(&session))
            .await
            .body
            .contains("Exchange Online")
    );

    app.add_user("uma", Role::User, None).await;
    app.add_user("sam", Role::Salesperson, Some("SP1")).await;
    for name in ["uma", "sam"] {
        let other = app.login(name).await;
        for path in [
            "/admin/email-logging",
            "/admin/email-logging/assisted",
            "/admin/mail-server-guide",
            "/admin/mailboxes",
            "/admin/mailboxes/default",
            "/admin/mailboxes/nope",
        ] {
            assert_eq!(
                app.get(path, Some(&other)).await.status,
                StatusCode::FORBIDDEN,
                "{name} {path}"
            );
        }
        let other_csrf = app.get("/interactions", Some(&other)).await.csrf();
        let reply = post(
            &app,
            &other,
            "/admin/email-logging",
            &format!("csrf={other_csrf}&{SETUP}&password_source=env:X"),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{name} cannot save a setup"
        );
        let reply = post(
            &app,
            &other,
            "/admin/mailboxes",
            &format!("csrf={other_csrf}&name=eu"),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{name} cannot add a mailbox"
        );
        assert!(
            !app.get("/interactions", Some(&other))
                .await
                .body
                .contains("/admin/mailboxes"),
            "no Setup link for {name}"
        );
    }
    assert!(
        app.get("/interactions", Some(&session))
            .await
            .body
            .contains("href=\"/admin/mailboxes\""),
        "admins see the link to the list"
    );
    assert_eq!(
        app.get("/admin/email-logging", None).await.status,
        StatusCode::SEE_OTHER,
        "signed out: to the login"
    );

    for path in [
        "/admin/email-logging",
        "/admin/email-logging/check",
        "/admin/email-logging/enable",
        "/admin/email-logging/disable",
        "/admin/email-logging/clear",
        "/admin/email-logging/assisted",
        "/admin/mailboxes",
        "/admin/mailboxes/eu",
        "/admin/mailboxes/default/check",
        "/admin/mailboxes/default/enable",
        "/admin/mailboxes/default/disable",
        "/admin/mailboxes/default/clear",
    ] {
        let reply = post(
            &app,
            &session,
            path,
            &format!("{SETUP}&password_source=env:X&accept=on&step=2&name=eu&create=1"),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{path} without the CSRF token"
        );
    }
    assert_eq!(
        app.store
            .mailbox_setup(&MailboxName::default_name())
            .await
            .unwrap(),
        None
    );
    assert!(app.store.mailboxes().await.unwrap().is_empty());
    let _ = csrf;
}

#[tokio::test]
async fn a_web_session_cannot_store_a_command_as_a_secret_source() {
    let (app, session, csrf) = admin_app().await;
    for field in ["password_source", "client_secret_source"] {
        let base = if field == "password_source" {
            SETUP.to_owned()
        } else {
            SETUP.replace(
                "auth=basic",
                "auth=oauth2&tenant=contoso.example&client_id_source=env%3ACID",
            )
        };
        let form = format!("csrf={csrf}&{base}&{field}=exec%3Acat%20%2Fetc%2Fshadow");
        let reply = post(&app, &session, "/admin/email-logging", &form).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{field}");
        assert!(
            reply
                .body
                .contains("can only be set with `mailscribe mailbox configure`"),
            "{}",
            reply.body
        );
        assert_eq!(
            app.store
                .mailbox_setup(&MailboxName::default_name())
                .await
                .unwrap(),
            None,
            "nothing saved"
        );
    }
    // Mailscribe's own variables cannot be sent to a server as a password.
    let reply = post(
        &app,
        &session,
        "/admin/email-logging",
        &format!("csrf={csrf}&{SETUP}&password_source=env%3AMAILSCRIBE_SECRET_KEY"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body.contains("MAILSCRIBE_ variables"),
        "{}",
        reply.body
    );
    // The same through the assisted setup's authentication step.
    app.get("/admin/email-logging/assisted", Some(&session))
        .await;
    let reply = post(
        &app,
        &session,
        "/admin/email-logging/assisted",
        &format!("csrf={csrf}&step=3&auth=basic&username=q&password_source=exec%3Aid"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    // A typed secret needs the server's key; this router has no backend,
    // and says so instead of storing anything.
    let reply = post(
        &app,
        &session,
        "/admin/email-logging",
        &format!("csrf={csrf}&{SETUP}&password=hunter2hunter2"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("mailscribe serve"), "{}", reply.body);
    assert!(
        !reply.body.contains("hunter2hunter2"),
        "a typed secret is never sent back"
    );

    // env: and file: sources are fine, and shown as such (they are not secrets).
    let reply = post(
        &app,
        &session,
        "/admin/email-logging",
        &format!("csrf={csrf}&{SETUP}&password_source=env%3AIMAP_PASSWORD"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let setup = app
        .store
        .mailbox_setup(&MailboxName::default_name())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(setup.password, Some(SecretRef::Env("IMAP_PASSWORD".into())));
    assert_eq!((setup.host.as_str(), setup.port), ("imap.example.com", 993));
    assert!(
        app.get("/admin/email-logging", Some(&session))
            .await
            .body
            .contains("env:IMAP_PASSWORD")
    );

    // Saved again with the secret fields empty: the stored source is kept.
    let reply = post(
        &app,
        &session,
        "/admin/email-logging",
        &format!("csrf={csrf}&{SETUP}&batch_size=50"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let setup = app
        .store
        .mailbox_setup(&MailboxName::default_name())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (setup.password, setup.batch_size),
        (Some(SecretRef::Env("IMAP_PASSWORD".into())), 50)
    );
}

#[tokio::test]
async fn the_connection_is_locked_while_logging_is_enabled_and_clear_needs_it_disabled() {
    let (app, session, csrf) = admin_app().await;
    let reply = post(
        &app,
        &session,
        "/admin/email-logging",
        &format!("csrf={csrf}&{SETUP}&password_source=env%3AP"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);

    // Enabling needs the statement accepted (and then a passing check).
    let reply = post(
        &app,
        &session,
        "/admin/email-logging/enable",
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("accept the data statement"));
    let reply = post(
        &app,
        &session,
        "/admin/email-logging/enable",
        &format!("csrf={csrf}&accept=on"),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "no check can run without the mail server"
    );
    assert!(
        !app.store
            .enablement(&MailboxName::default_name())
            .await
            .unwrap()
            .enabled
    );

    app.store
        .set_enablement(
            &MailboxName::default_name(),
            &Enablement {
                enabled: true,
                accepted_by: Some("root".into()),
                accepted_at: Some(chrono::Utc::now()),
            },
        )
        .await
        .unwrap();
    let page = app.get("/admin/email-logging", Some(&session)).await;
    assert!(
        page.body.contains("fieldset disabled") && page.body.contains("accepted by root"),
        "{}",
        page.body
    );

    // A changed host is ignored, options are saved.
    let changed = SETUP.replace("imap.example.com", "evil.example.com");
    let reply = post(
        &app,
        &session,
        "/admin/email-logging",
        &format!("csrf={csrf}&{changed}&interval=5m&cost=1.25"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(
        app.store
            .mailbox_setup(&MailboxName::default_name())
            .await
            .unwrap()
            .unwrap()
            .host,
        "imap.example.com"
    );
    assert_eq!(app.store.settings().await.unwrap().interval_seconds, 300);
    assert_eq!(
        app.store
            .template("EMAIL")
            .await
            .unwrap()
            .unwrap()
            .cost
            .to_string(),
        "1.25"
    );
    // The storage mode is part of what was accepted.
    let reply = post(
        &app,
        &session,
        "/admin/email-logging",
        &format!("csrf={csrf}&storage_mode=full"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("disable logging to change it"));
    // The assisted setup only adds new mailboxes: it refuses the name.
    let page = app
        .get("/admin/email-logging/assisted", Some(&session))
        .await;
    assert!(
        page.body.contains("id=\"name\" value=\"\""),
        "no name suggested once a mailbox exists"
    );
    let reply = post(
        &app,
        &session,
        "/admin/email-logging/assisted",
        &format!("csrf={csrf}&step=1&name=DEFAULT"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply
            .body
            .contains("a mailbox named default exists already"),
        "{}",
        reply.body
    );

    let reply = post(
        &app,
        &session,
        "/admin/email-logging/clear",
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        app.store
            .mailbox_setup(&MailboxName::default_name())
            .await
            .unwrap()
            .is_some(),
        "not cleared while enabled"
    );

    let reply = post(
        &app,
        &session,
        "/admin/email-logging/disable",
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(
        !app.store
            .enablement(&MailboxName::default_name())
            .await
            .unwrap()
            .enabled
    );
    let reply = post(
        &app,
        &session,
        "/admin/email-logging/clear",
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.store
            .mailbox_setup(&MailboxName::default_name())
            .await
            .unwrap(),
        None,
        "the setup and its secrets are gone"
    );
}

#[tokio::test]
async fn leaving_the_assisted_setup_unfinished_changes_nothing() {
    let (app, session, csrf) = admin_app().await;
    let first = app
        .get("/admin/email-logging/assisted", Some(&session))
        .await;
    assert!(first.body.contains("Step 1 of 7") && first.body.contains("/admin/mail-server-guide"));
    assert!(
        first.body.contains("id=\"name\" value=\"default\""),
        "the first mailbox is suggested as default"
    );
    let reply = post(
        &app,
        &session,
        "/admin/email-logging/assisted",
        &format!("csrf={csrf}&step=1&name="),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "a name is needed");
    let reply = post(
        &app,
        &session,
        "/admin/email-logging/assisted",
        &format!("csrf={csrf}&step=1&name=default"),
    )
    .await;
    assert_eq!(reply.location(), "/admin/email-logging/assisted?step=2");
    let reply = post(
        &app,
        &session,
        "/admin/email-logging/assisted",
        &format!("csrf={csrf}&step=2&host=&security=tls"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "the host is needed");
    assert!(reply.body.contains("the server host is needed"));
    let reply = post(
        &app,
        &session,
        "/admin/email-logging/assisted",
        &format!("csrf={csrf}&step=2&host=imap.example.com&security=starttls"),
    )
    .await;
    assert_eq!(reply.location(), "/admin/email-logging/assisted?step=3");
    let page = app
        .get("/admin/email-logging/assisted?step=2", Some(&session))
        .await;
    assert!(
        page.body.contains("value=\"imap.example.com\"") && page.body.contains("value=\"143\""),
        "the draft keeps the answers"
    );
    let reply = post(
        &app,
        &session,
        "/admin/email-logging/assisted",
        &format!("csrf={csrf}&step=3&auth=basic&username=queue&password_source=env%3AP"),
    )
    .await;
    assert_eq!(reply.location(), "/admin/email-logging/assisted?step=4");
    let reply = post(
        &app,
        &session,
        "/admin/email-logging/assisted",
        &format!("csrf={csrf}&step=4&queue=Q&storage=Q"),
    )
    .await;
    assert!(reply.body.contains("must be different folders"));
    let reply = post(
        &app,
        &session,
        "/admin/email-logging/assisted",
        &format!("csrf={csrf}&step=7"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("nothing has been saved"));
    assert_eq!(
        app.store
            .mailbox_setup(&MailboxName::default_name())
            .await
            .unwrap(),
        None
    );
    assert!(
        !app.store
            .enablement(&MailboxName::default_name())
            .await
            .unwrap()
            .enabled
    );
    assert!(app.store.mailboxes().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_mailbox_list_shows_every_mailbox_and_a_second_one_is_added_through_its_page() {
    let (app, session, csrf) = admin_app().await;
    two_mailboxes(&app.store).await;
    let status = MailboxStatus {
        status: "retrying".into(),
        last_run_at: Some(chrono::Utc::now()),
        last_error: Some("connection refused by eu.example".into()),
        next_attempt_at: Some(chrono::Utc::now()),
        consecutive_failures: 2,
    };
    app.store
        .record_mailbox_status(&name("eu"), &status)
        .await
        .unwrap();
    let list = app.get("/admin/mailboxes", Some(&session)).await;
    assert_eq!(list.status, StatusCode::OK);
    for shown in [
        "href=\"/admin/mailboxes/default\"",
        "href=\"/admin/mailboxes/eu\"",
        "a.example",
        "eu.example",
        "retrying",
        "connection refused by eu.example",
        "2 failures in a row",
    ] {
        assert!(list.body.contains(shown), "{shown}: {}", list.body);
    }
    assert_eq!(list.body.matches("<tr id=\"mailbox-").count(), 2);

    // Adding by name: it must parse and be free (names ignore case).
    for (typed, why) in [
        ("eu%20west", "may only hold"),
        ("all", "reserved"),
        ("EU", "a mailbox named eu exists already"),
        ("", "1 to 40 characters"),
    ] {
        let reply = post(
            &app,
            &session,
            "/admin/mailboxes",
            &format!("csrf={csrf}&name={typed}"),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{typed}");
        assert!(reply.body.contains(why), "{typed}: {}", reply.body);
    }
    let reply = post(
        &app,
        &session,
        "/admin/mailboxes",
        &format!("csrf={csrf}&name=Nordic"),
    )
    .await;
    assert_eq!(
        (reply.status, reply.location()),
        (StatusCode::SEE_OTHER, "/admin/mailboxes/Nordic?new=1")
    );
    assert_eq!(
        app.get("/admin/mailboxes/Nordic", Some(&session))
            .await
            .status,
        StatusCode::NOT_FOUND,
        "nothing stored yet"
    );
    let page = app
        .get("/admin/mailboxes/Nordic?new=1", Some(&session))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Nothing is set up yet") && page.body.contains("name=\"create\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("action=\"/admin/mailboxes/Nordic\""));

    let nordic = SETUP.replace("imap.example.com", "nordic.example");
    let reply = post(
        &app,
        &session,
        "/admin/mailboxes/Nordic",
        &format!("csrf={csrf}&create=1&{nordic}&password_source=env%3AP"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert!(
        reply
            .location()
            .starts_with("/admin/mailboxes/Nordic?notice=Mailbox%20added"),
        "{}",
        reply.location()
    );
    assert_eq!(
        host(&app.store, "nordic").await.as_deref(),
        Some("nordic.example")
    );
    assert_eq!(
        host(&app.store, "default").await.as_deref(),
        Some("a.example"),
        "the others are untouched"
    );
    assert_eq!(host(&app.store, "eu").await.as_deref(), Some("eu.example"));
    let page = app.get("/admin/mailboxes/nordic", Some(&session)).await;
    assert!(
        page.body.contains("id=\"mailbox-name\">Nordic<")
            && page.body.contains("Status: <strong>new</strong>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Last run: never") && !page.body.contains("name=\"create\""));

    // A second "new" page for a name taken meanwhile does not overwrite it.
    let other = SETUP.replace("imap.example.com", "other.example");
    let reply = post(
        &app,
        &session,
        "/admin/mailboxes/NORDIC",
        &format!("csrf={csrf}&create=1&{other}&password_source=env%3AP"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body.contains("a mailbox named NORDIC exists already"),
        "{}",
        reply.body
    );
    assert_eq!(
        host(&app.store, "nordic").await.as_deref(),
        Some("nordic.example")
    );
    // Without the "new" page, a name nobody added is not created.
    let reply = post(
        &app,
        &session,
        "/admin/mailboxes/us",
        &format!("csrf={csrf}&{other}&password_source=env%3AP"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(app.store.mailboxes().await.unwrap().len(), 3);
}

#[tokio::test]
async fn enable_disable_check_and_clear_act_on_the_named_mailbox_alone_and_the_old_urls_on_default()
{
    let (app, session, csrf) = admin_app_with_mail_server().await;
    two_mailboxes(&app.store).await;

    let reply = post(
        &app,
        &session,
        "/admin/mailboxes/eu/check",
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.body.contains("logged in as queue")
            && reply.body.contains("action=\"/admin/mailboxes/eu/enable\"")
    );
    let reply = post(
        &app,
        &session,
        "/admin/mailboxes/eu/enable",
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "the statement must be accepted"
    );
    let reply = post(
        &app,
        &session,
        "/admin/mailboxes/eu/enable",
        &format!("csrf={csrf}&accept=on"),
    )
    .await;
    assert!(
        reply
            .location()
            .starts_with("/admin/mailboxes/eu?notice=Logging%20is%20enabled"),
        "{}",
        reply.location()
    );
    assert!(enabled(&app.store, "eu").await && !enabled(&app.store, "default").await);
    assert_eq!(
        app.store
            .enablement(&name("eu"))
            .await
            .unwrap()
            .accepted_by
            .as_deref(),
        Some("root")
    );
    let page = app.get("/admin/mailboxes/eu", Some(&session)).await;
    assert!(page.body.contains("fieldset disabled") && page.body.contains("accepted by root"));
    assert!(
        !app.get("/admin/mailboxes/default", Some(&session))
            .await
            .body
            .contains("fieldset disabled"),
        "default is not locked"
    );

    // eu's connection is locked; default's is not.
    let changed = SETUP.replace("imap.example.com", "changed.example");
    let reply = post(
        &app,
        &session,
        "/admin/mailboxes/eu",
        &format!("csrf={csrf}&{changed}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(host(&app.store, "eu").await.as_deref(), Some("eu.example"));
    let reply = post(
        &app,
        &session,
        "/admin/mailboxes/eu/clear",
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "not cleared while enabled"
    );
    assert!(host(&app.store, "eu").await.is_some());

    // Today's URLs are `default`.
    let page = app.get("/admin/email-logging", Some(&session)).await;
    assert!(
        page.body.contains("value=\"a.example\"")
            && page.body.contains("action=\"/admin/email-logging/enable\""),
        "{}",
        page.body
    );
    let reply = post(
        &app,
        &session,
        "/admin/email-logging",
        &format!("csrf={csrf}&{changed}&password_source=env%3AP"),
    )
    .await;
    assert!(
        reply.location().starts_with("/admin/email-logging?notice="),
        "{}",
        reply.location()
    );
    assert_eq!(
        host(&app.store, "default").await.as_deref(),
        Some("changed.example")
    );
    let reply = post(
        &app,
        &session,
        "/admin/email-logging/enable",
        &format!("csrf={csrf}&accept=on"),
    )
    .await;
    assert!(
        reply
            .location()
            .starts_with("/admin/email-logging?notice=Logging%20is%20enabled"),
        "{}",
        reply.location()
    );
    assert!(enabled(&app.store, "default").await && enabled(&app.store, "eu").await);
    let reply = post(
        &app,
        &session,
        "/admin/email-logging/disable",
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(
        !enabled(&app.store, "default").await && enabled(&app.store, "eu").await,
        "disabling default leaves eu on"
    );

    let reply = post(
        &app,
        &session,
        "/admin/mailboxes/eu/disable",
        &format!("csrf={csrf}"),
    )
    .await;
    assert!(
        reply
            .location()
            .starts_with("/admin/mailboxes/eu?notice=Logging%20is%20disabled")
    );
    assert!(!enabled(&app.store, "eu").await);
    let reply = post(
        &app,
        &session,
        "/admin/mailboxes/eu/clear",
        &format!("csrf={csrf}"),
    )
    .await;
    assert!(
        reply
            .location()
            .starts_with("/admin/mailboxes?notice=Setup%20cleared"),
        "{}",
        reply.location()
    );
    assert_eq!(host(&app.store, "eu").await, None);
    assert_eq!(
        host(&app.store, "default").await.as_deref(),
        Some("changed.example"),
        "clearing eu leaves default"
    );
    assert!(
        app.get("/admin/mailboxes?notice=Setup%20cleared", Some(&session))
            .await
            .body
            .contains("id=\"notice\">Setup cleared")
    );
    assert_eq!(
        app.get("/admin/mailboxes/eu", Some(&session)).await.status,
        StatusCode::NOT_FOUND
    );

    let reply = post(
        &app,
        &session,
        "/admin/email-logging/clear",
        &format!("csrf={csrf}"),
    )
    .await;
    assert!(
        reply
            .location()
            .starts_with("/admin/email-logging?notice=Setup%20cleared"),
        "{}",
        reply.location()
    );
    assert!(app.store.mailboxes().await.unwrap().is_empty());
    let page = app.get("/admin/email-logging", Some(&session)).await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "today's page works before default exists"
    );
    assert!(page.body.contains("Nothing is set up yet"));
}

#[tokio::test]
async fn a_bad_mailbox_name_is_400_and_an_unknown_one_404() {
    let (app, session, csrf) = admin_app().await;
    two_mailboxes(&app.store).await;
    let too_long = format!("/admin/mailboxes/{}", "x".repeat(41));
    for path in [
        "/admin/mailboxes/eu%20west",
        "/admin/mailboxes/all",
        "/admin/mailboxes/a%2Fb",
        too_long.as_str(),
    ] {
        let reply = app.get(path, Some(&session)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
    }
    let reply = post(
        &app,
        &session,
        "/admin/mailboxes/SMTP/enable",
        &format!("csrf={csrf}&accept=on"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/admin/mailboxes/nope", Some(&session))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/admin/mailboxes/nope?folders=1", Some(&session))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    for action in ["check", "enable", "disable", "clear"] {
        let reply = post(
            &app,
            &session,
            &format!("/admin/mailboxes/nope/{action}"),
            &format!("csrf={csrf}&accept=on"),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{action}");
    }
    assert_eq!(app.store.mailboxes().await.unwrap().len(), 2);
    // Names ignore case: the page shows the stored spelling.
    let page = app.get("/admin/mailboxes/EU", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("value=\"eu.example\""));
}

#[tokio::test]
async fn the_storage_mode_is_refused_while_another_mailbox_is_enabled() {
    let (app, session, csrf) = admin_app().await;
    two_mailboxes(&app.store).await;
    app.store
        .set_enablement(
            &name("eu"),
            &Enablement {
                enabled: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let page = app.get("/admin/mailboxes/default", Some(&session)).await;
    assert!(
        !page.body.contains("fieldset disabled"),
        "default's own setup is free"
    );
    assert!(
        page.body
            .contains("name=\"storage_mode\" id=\"storage_mode\" disabled")
            && page.body.contains("id=\"mode-locked\""),
        "{}",
        page.body
    );
    for path in ["/admin/mailboxes/default", "/admin/email-logging"] {
        let reply = post(
            &app,
            &session,
            path,
            &format!("csrf={csrf}&{SETUP}&password_source=env%3AP&storage_mode=full"),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(
            reply.body.contains("logging is enabled on eu")
                && reply.body.contains("disable logging on every mailbox"),
            "{}",
            reply.body
        );
    }
    assert_eq!(
        app.store.settings().await.unwrap().storage_mode.as_str(),
        "reference"
    );
    assert_eq!(
        host(&app.store, "default").await.as_deref(),
        Some("a.example"),
        "nothing saved"
    );
    // The assisted setup's options step says the same.
    app.get("/admin/email-logging/assisted", Some(&session))
        .await;
    let reply = post(
        &app,
        &session,
        "/admin/email-logging/assisted",
        &format!("csrf={csrf}&step=6&storage_mode=full"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("logging is enabled on eu"));

    // With every mailbox disabled it changes.
    app.store
        .set_enablement(&name("eu"), &Enablement::default())
        .await
        .unwrap();
    let reply = post(
        &app,
        &session,
        "/admin/mailboxes/default",
        &format!("csrf={csrf}&{SETUP}&password_source=env%3AP&storage_mode=full"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(
        app.store.settings().await.unwrap().storage_mode.as_str(),
        "full"
    );
}

#[tokio::test]
async fn the_assisted_setup_keeps_its_draft_in_the_database_and_creates_a_new_mailbox() {
    let (app, session, csrf) = admin_app_with_mail_server().await;
    app.store
        .save_mailbox_setup(&MailboxName::default_name(), &mailbox_setup("a.example"))
        .await
        .unwrap();
    let root = app.store.user_by_name("root").await.unwrap().unwrap().0.id;
    let assisted = "/admin/email-logging/assisted";

    app.get(assisted, Some(&session)).await;
    let reply = post(
        &app,
        &session,
        assisted,
        &format!("csrf={csrf}&step=1&name=Default"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body.contains("exists already") && reply.body.contains("value=\"Default\""),
        "{}",
        reply.body
    );
    let reply = post(
        &app,
        &session,
        assisted,
        &format!("csrf={csrf}&step=1&name=eu"),
    )
    .await;
    assert_eq!(reply.location(), "/admin/email-logging/assisted?step=2");
    post(
        &app,
        &session,
        assisted,
        &format!("csrf={csrf}&step=2&host=eu.example&security=tls"),
    )
    .await;
    let reply = post(
        &app,
        &session,
        assisted,
        &format!("csrf={csrf}&step=3&auth=basic&username=queue&password=hunter2hunter2"),
    )
    .await;
    assert_eq!(
        reply.location(),
        "/admin/email-logging/assisted?step=4",
        "{}",
        reply.body
    );

    // The draft is in the database, its secret sealed.
    let stored = app
        .store
        .setup_draft(root)
        .await
        .unwrap()
        .expect("a stored draft");
    assert!(
        stored.contains("eu.example") && stored.contains(SEALED),
        "{stored}"
    );
    assert!(
        !stored.contains("hunter2hunter2"),
        "a typed secret is never stored"
    );

    // Another instance: a new state on a new pool over the same database.
    let store = Store::open(&app._db.url().parse().unwrap()).await.unwrap();
    let other = App {
        router: router_with_mail_server(store),
        ..app
    };
    let page = other
        .get("/admin/email-logging/assisted?step=2", Some(&session))
        .await;
    assert!(
        page.body.contains("value=\"eu.example\"")
            && page.body.contains("Assisted setup of a new mailbox: eu"),
        "{}",
        page.body
    );
    let page = other
        .get("/admin/email-logging/assisted?step=1", Some(&session))
        .await;
    assert!(
        page.body.contains("id=\"name\" value=\"eu\""),
        "going back to the name keeps the draft"
    );
    let page = other
        .get("/admin/email-logging/assisted?step=4", Some(&session))
        .await;
    assert!(
        page.body.contains("<li>Queue</li>"),
        "the fake server's folders: {}",
        page.body
    );
    let reply = post(
        &other,
        &session,
        assisted,
        &format!("csrf={csrf}&step=4&queue=Queue&storage=Storage"),
    )
    .await;
    assert_eq!(reply.location(), "/admin/email-logging/assisted?step=5");
    assert!(
        other
            .get("/admin/email-logging/assisted?step=5", Some(&session))
            .await
            .body
            .contains("id=\"checks-passed\"")
    );
    let reply = post(
        &other,
        &session,
        assisted,
        &format!("csrf={csrf}&step=6&cost=1.50&minutes=3"),
    )
    .await;
    assert_eq!(reply.location(), "/admin/email-logging/assisted?step=7");

    // The name was taken meanwhile (in another case): back to the first step.
    other
        .store
        .save_mailbox_setup(&name("EU"), &mailbox_setup("someone-else.example"))
        .await
        .unwrap();
    let reply = post(
        &other,
        &session,
        assisted,
        &format!("csrf={csrf}&step=7&accept=on"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body.contains("a mailbox named EU exists already")
            && reply.body.contains("Step 1 of 7"),
        "{}",
        reply.body
    );
    assert_eq!(
        host(&other.store, "eu").await.as_deref(),
        Some("someone-else.example"),
        "not overwritten"
    );
    let reply = post(
        &other,
        &session,
        assisted,
        &format!("csrf={csrf}&step=1&name=eu-west"),
    )
    .await;
    assert_eq!(reply.location(), "/admin/email-logging/assisted?step=2");
    let reply = post(
        &other,
        &session,
        assisted,
        &format!("csrf={csrf}&step=7&accept=on"),
    )
    .await;
    assert!(
        reply
            .location()
            .starts_with("/admin/mailboxes/eu-west?notice=Assisted%20setup%20finished"),
        "{} {}",
        reply.location(),
        reply.body
    );

    let created = other
        .store
        .mailbox(&name("eu-west"))
        .await
        .unwrap()
        .expect("created");
    assert_eq!(
        (
            created.setup.host.as_str(),
            created.setup.queue_folder.as_str()
        ),
        ("eu.example", "Queue")
    );
    assert_eq!(
        created.setup.password,
        Some(SecretRef::Sealed(SealedSecret(SEALED.into())))
    );
    assert!(
        created.enablement.enabled && created.enablement.accepted_by.as_deref() == Some("root")
    );
    assert_eq!(
        other
            .store
            .template("EMAIL")
            .await
            .unwrap()
            .unwrap()
            .cost
            .to_string(),
        "1.50"
    );
    assert!(
        !enabled(&other.store, "default").await,
        "the other mailboxes are untouched"
    );
    assert_eq!(
        other.store.setup_draft(root).await.unwrap(),
        None,
        "the draft is gone"
    );
}

#[tokio::test]
async fn run_now_asks_through_the_database_and_shows_the_summary() {
    let app = App::new().await;
    app.add_user("root", Role::Admin, None).await;
    let root = app.login("root").await;
    let name = MailboxName::default_name();
    app.store
        .save_mailbox_setup(&name, &mailbox_setup("imap.example.com"))
        .await
        .unwrap();
    let page = app.get("/admin/email-logging", Some(&root)).await;
    let csrf = page.csrf();
    assert!(
        !page.body.contains("id=\"run-now\""),
        "no Run now while logging is disabled"
    );
    let refused = app
        .send(
            "POST",
            "/admin/email-logging/run",
            &[("mailscribe_session", &root)],
            Some(&format!("csrf={csrf}")),
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    app.store
        .set_enablement(
            &name,
            &Enablement {
                enabled: true,
                accepted_by: Some("root".into()),
                accepted_at: Some(chrono::Utc::now()),
            },
        )
        .await
        .unwrap();
    assert!(
        app.get("/admin/mailboxes/default", Some(&root))
            .await
            .body
            .contains("id=\"run-now\"")
    );
    let asked = app
        .send(
            "POST",
            "/admin/mailboxes/default/run",
            &[("mailscribe_session", &root)],
            Some(&format!("csrf={csrf}")),
            None,
        )
        .await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER);
    let location = asked.location().to_owned();
    assert!(
        location.starts_with("/admin/mailboxes/default/runs/"),
        "{location}"
    );
    let pending = app.get(&location, Some(&root)).await;
    assert!(
        pending.body.contains("id=\"pending\"") && pending.body.contains("http-equiv=\"refresh\""),
        "{}",
        pending.body
    );
    // The instance that holds the mailbox claims the request and answers it
    // (what `serve` does through these same store calls).
    let ids = app
        .store
        .claim_run_requests("default", "instance-a")
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    let summary = r#"{"run_id":41,"seen":3,"logged":2,"duplicate":0,"entries":2,"not_logged":1,"not_logged_by_reason":{},"failed":0,"failures":[],"resumed":0,"vanished":0,"stopped_early":false}"#;
    app.store
        .finish_run_requests(&ids, chrono::Utc::now(), Some(41), Some(summary), None)
        .await
        .unwrap();
    let done = app.get(&location, Some(&root)).await;
    assert!(
        done.body.contains("Run 41: seen 3, logged 2 (2 entries)"),
        "{}",
        done.body
    );
    assert!(!done.body.contains("http-equiv=\"refresh\""));
}

/// The mail server's side, recording every target it was asked to reach
/// with a secret: (host, whether a password or OAuth2 client came along).
#[derive(Default)]
struct RecordingMailServer {
    reached: std::sync::Mutex<Vec<(String, bool)>>,
}

impl RecordingMailServer {
    fn note(&self, setup: &MailboxSetup) {
        let with_secret = setup.password.is_some() || setup.oauth.is_some();
        self.reached
            .lock()
            .unwrap()
            .push((setup.host.clone(), with_secret));
    }
}

impl SetupBackend for RecordingMailServer {
    fn seal(
        &self,
        _field: SecretField,
        _plain: &secrecy::SecretString,
    ) -> Result<SealedSecret, String> {
        Ok(SealedSecret(SEALED.into()))
    }
    fn list_folders<'a>(
        &'a self,
        setup: &'a MailboxSetup,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        self.note(setup);
        Box::pin(async { Ok(vec!["Queue".to_owned(), "Storage".to_owned()]) })
    }
    fn check<'a>(&'a self, setup: &'a MailboxSetup) -> BoxFuture<'a, Vec<CheckLine>> {
        self.note(setup);
        Box::pin(async { vec![CheckLine::pass("login", "logged in as queue")] })
    }
    fn refuse_source(&self, _source: &SecretRef) -> Option<String> {
        None
    }
}

/// Issue 10, item 4, through the router: an empty secret field keeps the
/// stored secret only while the target is unchanged, and the assisted
/// setup forgets a secret when its server step changes the target; the
/// backend is never asked to reach a changed host with a secret.
#[tokio::test]
async fn a_kept_secret_is_kept_only_for_its_own_target() {
    let (app, session, csrf) = admin_app().await;
    let backend = Arc::new(RecordingMailServer::default());
    let app = App {
        router: router(AppState::new(app.store.clone(), false).with_setup_backend(backend.clone())),
        ..app
    };
    app.store
        .save_mailbox_setup(&MailboxName::default_name(), &mailbox_setup("a.example"))
        .await
        .unwrap();
    let page = "/admin/mailboxes/default";
    let form = |host: &str, more: &str| {
        format!(
            "csrf={csrf}&host={host}&port=993&security=tls&trust=bundled&auth=basic&username=queue&queue=Queue&storage=Storage{more}"
        )
    };

    // Folders change, the target does not: the stored source stays.
    let reply = post(
        &app,
        &session,
        page,
        &form("a.example", "").replace("storage=Storage", "storage=Archive"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(
        app.store
            .mailbox_setup(&name("default"))
            .await
            .unwrap()
            .unwrap()
            .password,
        Some(SecretRef::Env("PW".into()))
    );

    // Each field of the target, changed with the password left empty.
    for (field, changed) in [
        ("host", form("evil.example", "")),
        (
            "port",
            form("a.example", "").replace("port=993", "port=994"),
        ),
        (
            "security",
            form("a.example", "").replace("security=tls", "security=starttls"),
        ),
        (
            "trust",
            form("a.example", "").replace("trust=bundled", "trust=system"),
        ),
        ("CA file", form("a.example", "&ca_file=/tmp/evil-ca.pem")),
        (
            "user",
            form("a.example", "").replace("username=queue", "username=other"),
        ),
    ] {
        let reply = post(&app, &session, page, &changed).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{field}");
        assert!(
            reply.body.contains(&format!("the {field} changed"))
                && reply.body.contains("give the password"),
            "{field}: {}",
            reply.body
        );
    }
    assert_eq!(
        host(&app.store, "default").await.as_deref(),
        Some("a.example"),
        "nothing was saved"
    );
    post(
        &app,
        &session,
        &format!("{page}/check"),
        &format!("csrf={csrf}"),
    )
    .await;
    app.get(&format!("{page}?folders=1"), Some(&session)).await;

    // OAuth2: the token URL changed, the client secret left empty.
    let mut oauth = mailbox_setup("a.example");
    oauth.auth = AuthKind::OAuth2;
    oauth.password = None;
    oauth.oauth = Some(mailscribe_core::OAuthSetup {
        token_url: "https://login.example.com/token".into(),
        tenant: None,
        client_id: SecretRef::Env("CID".into()),
        client_secret: SecretRef::Env("CSECRET".into()),
        scope: "s".into(),
    });
    app.store
        .save_mailbox_setup(&name("oa"), &oauth)
        .await
        .unwrap();
    let oauth_form = |url: &str| {
        form("a.example", &format!("&token_url={url}")).replace("auth=basic", "auth=oauth2")
    };
    let reply = post(
        &app,
        &session,
        "/admin/mailboxes/oa",
        &oauth_form("https%3A%2F%2Fevil.example%2Ftoken"),
    )
    .await;
    assert!(
        reply.body.contains("the token URL changed"),
        "{}",
        reply.body
    );
    let reply = post(
        &app,
        &session,
        "/admin/mailboxes/oa",
        &oauth_form("http%3A%2F%2Fidp.example%2Ftoken"),
    )
    .await;
    assert!(
        reply.body.contains("must start with https://"),
        "{}",
        reply.body
    );
    let reply = post(
        &app,
        &session,
        "/admin/mailboxes/oa",
        &oauth_form("https%3A%2F%2Flogin.example.com%2Ftoken"),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::SEE_OTHER,
        "the same token URL keeps the client: {}",
        reply.body
    );

    // The assisted setup: a password for a.example, then another host.
    let assisted = "/admin/email-logging/assisted";
    app.get(assisted, Some(&session)).await;
    post(
        &app,
        &session,
        assisted,
        &format!("csrf={csrf}&step=1&name=eu"),
    )
    .await;
    post(
        &app,
        &session,
        assisted,
        &format!("csrf={csrf}&step=2&host=a.example&security=tls"),
    )
    .await;
    let reply = post(
        &app,
        &session,
        assisted,
        &format!("csrf={csrf}&step=3&auth=basic&username=queue&password=hunter2hunter2"),
    )
    .await;
    assert_eq!(reply.location(), "/admin/email-logging/assisted?step=4");
    post(
        &app,
        &session,
        assisted,
        &format!("csrf={csrf}&step=2&host=evil.example&security=tls"),
    )
    .await;
    app.get("/admin/email-logging/assisted?step=4", Some(&session))
        .await;
    app.get("/admin/email-logging/assisted?step=5", Some(&session))
        .await;
    let reply = post(
        &app,
        &session,
        assisted,
        &format!("csrf={csrf}&step=3&auth=basic&username=queue"),
    )
    .await;
    assert!(
        reply.body.contains("needs a password"),
        "the password is asked for again: {}",
        reply.body
    );

    let reached = backend.reached.lock().unwrap().clone();
    assert!(
        reached.iter().any(|(host, _)| host == "evil.example"),
        "the changed host was tried, without a secret: {reached:?}"
    );
    assert!(
        !reached
            .iter()
            .any(|(host, with_secret)| host == "evil.example" && *with_secret),
        "{reached:?}"
    );
    let audit = app
        .store
        .audit_page(Some("kept_secret_discarded"), None, None, 10)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "the discarded secret is audited");
    assert_eq!(
        audit[0].event.detail.as_deref(),
        Some("assisted setup: secrets discarded, fields: host")
    );
}
