//! The email logging setup pages through the router: who may use them,
//! what is locked while logging is enabled, and that a web session can
//! never store an `exec:` secret source. (Checks and folder lists need the
//! mail server; the binary's end-to-end test in the CLI crate covers them.)

use axum::http::StatusCode;
use mailscribe_core::{Enablement, MailboxName, Role, SecretRef};

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
    app.send("POST", path, &[("mailscribe_session", session)], Some(form), None).await
}

#[tokio::test]
async fn only_admins_reach_the_setup_and_every_form_needs_its_csrf_token() {
    let (app, session, csrf) = admin_app().await;
    let page = app.get("/admin/email-logging", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Nothing is set up yet") && page.body.contains("/admin/email-logging/assisted"));
    assert!(app.get("/admin/mail-server-guide", Some(&session)).await.body.contains("Exchange Online"));

    app.add_user("uma", Role::User, None).await;
    app.add_user("sam", Role::Salesperson, Some("SP1")).await;
    for name in ["uma", "sam"] {
        let other = app.login(name).await;
        for path in ["/admin/email-logging", "/admin/email-logging/assisted", "/admin/mail-server-guide"] {
            assert_eq!(app.get(path, Some(&other)).await.status, StatusCode::FORBIDDEN, "{name} {path}");
        }
        let other_csrf = app.get("/interactions", Some(&other)).await.csrf();
        let reply = post(&app, &other, "/admin/email-logging", &format!("csrf={other_csrf}&{SETUP}&password_source=env:X")).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{name} cannot save a setup");
        assert!(!app.get("/interactions", Some(&other)).await.body.contains("/admin/email-logging"), "no Setup link for {name}");
    }
    assert!(app.get("/interactions", Some(&session)).await.body.contains("/admin/email-logging"), "admins see the link");
    assert_eq!(app.get("/admin/email-logging", None).await.status, StatusCode::SEE_OTHER, "signed out: to the login");

    for path in ["/admin/email-logging", "/admin/email-logging/check", "/admin/email-logging/enable", "/admin/email-logging/disable", "/admin/email-logging/clear", "/admin/email-logging/assisted"] {
        let reply = post(&app, &session, path, &format!("{SETUP}&password_source=env:X&accept=on&step=2")).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path} without the CSRF token");
    }
    assert_eq!(app.store.mailbox_setup(&MailboxName::default_name()).await.unwrap(), None);
    let _ = csrf;
}

#[tokio::test]
async fn a_web_session_cannot_store_a_command_as_a_secret_source() {
    let (app, session, csrf) = admin_app().await;
    for field in ["password_source", "client_secret_source"] {
        let base = if field == "password_source" {
            SETUP.to_owned()
        } else {
            SETUP.replace("auth=basic", "auth=oauth2&tenant=contoso.example&client_id_source=env%3ACID")
        };
        let form = format!("csrf={csrf}&{base}&{field}=exec%3Acat%20%2Fetc%2Fshadow");
        let reply = post(&app, &session, "/admin/email-logging", &form).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{field}");
        assert!(reply.body.contains("can only be set with `mailscribe mailbox configure`"), "{}", reply.body);
        assert_eq!(app.store.mailbox_setup(&MailboxName::default_name()).await.unwrap(), None, "nothing saved");
    }
    // Mailscribe's own variables cannot be sent to a server as a password.
    let reply = post(&app, &session, "/admin/email-logging", &format!("csrf={csrf}&{SETUP}&password_source=env%3AMAILSCRIBE_SECRET_KEY")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("MAILSCRIBE_ variables"), "{}", reply.body);
    // The same through the assisted setup's authentication step.
    app.get("/admin/email-logging/assisted", Some(&session)).await;
    let reply = post(&app, &session, "/admin/email-logging/assisted", &format!("csrf={csrf}&step=3&auth=basic&username=q&password_source=exec%3Aid")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    // A typed secret needs the server's key; this router has no backend,
    // and says so instead of storing anything.
    let reply = post(&app, &session, "/admin/email-logging", &format!("csrf={csrf}&{SETUP}&password=hunter2hunter2")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("mailscribe serve"), "{}", reply.body);
    assert!(!reply.body.contains("hunter2hunter2"), "a typed secret is never sent back");

    // env: and file: sources are fine, and shown as such (they are not secrets).
    let reply = post(&app, &session, "/admin/email-logging", &format!("csrf={csrf}&{SETUP}&password_source=env%3AIMAP_PASSWORD")).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let setup = app.store.mailbox_setup(&MailboxName::default_name()).await.unwrap().unwrap();
    assert_eq!(setup.password, Some(SecretRef::Env("IMAP_PASSWORD".into())));
    assert_eq!((setup.host.as_str(), setup.port), ("imap.example.com", 993));
    assert!(app.get("/admin/email-logging", Some(&session)).await.body.contains("env:IMAP_PASSWORD"));

    // Saved again with the secret fields empty: the stored source is kept.
    let reply = post(&app, &session, "/admin/email-logging", &format!("csrf={csrf}&{SETUP}&batch_size=50")).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let setup = app.store.mailbox_setup(&MailboxName::default_name()).await.unwrap().unwrap();
    assert_eq!((setup.password, setup.batch_size), (Some(SecretRef::Env("IMAP_PASSWORD".into())), 50));
}

#[tokio::test]
async fn the_connection_is_locked_while_logging_is_enabled_and_clear_needs_it_disabled() {
    let (app, session, csrf) = admin_app().await;
    let reply = post(&app, &session, "/admin/email-logging", &format!("csrf={csrf}&{SETUP}&password_source=env%3AP")).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);

    // Enabling needs the statement accepted (and then a passing check).
    let reply = post(&app, &session, "/admin/email-logging/enable", &format!("csrf={csrf}")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("accept the data statement"));
    let reply = post(&app, &session, "/admin/email-logging/enable", &format!("csrf={csrf}&accept=on")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "no check can run without the mail server");
    assert!(!app.store.enablement(&MailboxName::default_name()).await.unwrap().enabled);

    app.store
        .set_enablement(&MailboxName::default_name(), &Enablement { enabled: true, accepted_by: Some("root".into()), accepted_at: Some(chrono::Utc::now()) })
        .await
        .unwrap();
    let page = app.get("/admin/email-logging", Some(&session)).await;
    assert!(page.body.contains("fieldset disabled") && page.body.contains("accepted by root"), "{}", page.body);

    // A changed host is ignored, options are saved.
    let changed = SETUP.replace("imap.example.com", "evil.example.com");
    let reply = post(&app, &session, "/admin/email-logging", &format!("csrf={csrf}&{changed}&interval=5m&cost=1.25")).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(app.store.mailbox_setup(&MailboxName::default_name()).await.unwrap().unwrap().host, "imap.example.com");
    assert_eq!(app.store.settings().await.unwrap().interval_seconds, 300);
    assert_eq!(app.store.template("EMAIL").await.unwrap().unwrap().cost.to_string(), "1.25");
    // The storage mode is part of what was accepted.
    let reply = post(&app, &session, "/admin/email-logging", &format!("csrf={csrf}&storage_mode=full")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("disable logging to change it"));
    // The assisted setup refuses too.
    let page = app.get("/admin/email-logging/assisted", Some(&session)).await;
    assert!(page.body.contains("the setup is locked"));
    let reply = post(&app, &session, "/admin/email-logging/assisted", &format!("csrf={csrf}&step=2&host=evil.example.com&security=tls")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    let reply = post(&app, &session, "/admin/email-logging/clear", &format!("csrf={csrf}")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(app.store.mailbox_setup(&MailboxName::default_name()).await.unwrap().is_some(), "not cleared while enabled");

    let reply = post(&app, &session, "/admin/email-logging/disable", &format!("csrf={csrf}")).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(!app.store.enablement(&MailboxName::default_name()).await.unwrap().enabled);
    let reply = post(&app, &session, "/admin/email-logging/clear", &format!("csrf={csrf}")).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(app.store.mailbox_setup(&MailboxName::default_name()).await.unwrap(), None, "the setup and its secrets are gone");
}

#[tokio::test]
async fn leaving_the_assisted_setup_unfinished_changes_nothing() {
    let (app, session, csrf) = admin_app().await;
    let first = app.get("/admin/email-logging/assisted", Some(&session)).await;
    assert!(first.body.contains("Step 1 of 7") && first.body.contains("/admin/mail-server-guide"));
    let reply = post(&app, &session, "/admin/email-logging/assisted", &format!("csrf={csrf}&step=1")).await;
    assert_eq!(reply.location(), "/admin/email-logging/assisted?step=2");
    let reply = post(&app, &session, "/admin/email-logging/assisted", &format!("csrf={csrf}&step=2&host=&security=tls")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "the host is needed");
    assert!(reply.body.contains("the server host is needed"));
    let reply = post(&app, &session, "/admin/email-logging/assisted", &format!("csrf={csrf}&step=2&host=imap.example.com&security=starttls")).await;
    assert_eq!(reply.location(), "/admin/email-logging/assisted?step=3");
    let page = app.get("/admin/email-logging/assisted?step=2", Some(&session)).await;
    assert!(page.body.contains("value=\"imap.example.com\"") && page.body.contains("value=\"143\""), "the draft keeps the answers");
    let reply = post(&app, &session, "/admin/email-logging/assisted", &format!("csrf={csrf}&step=3&auth=basic&username=queue&password_source=env%3AP")).await;
    assert_eq!(reply.location(), "/admin/email-logging/assisted?step=4");
    let reply = post(&app, &session, "/admin/email-logging/assisted", &format!("csrf={csrf}&step=4&queue=Q&storage=Q")).await;
    assert!(reply.body.contains("must be different folders"));
    let reply = post(&app, &session, "/admin/email-logging/assisted", &format!("csrf={csrf}&step=7")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("nothing has been saved"));
    assert_eq!(app.store.mailbox_setup(&MailboxName::default_name()).await.unwrap(), None);
    assert!(!app.store.enablement(&MailboxName::default_name()).await.unwrap().enabled);
}
