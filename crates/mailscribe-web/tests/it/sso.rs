//! Single sign-on through the router against the local OpenID Connect
//! provider of the testkit (Entra ID cannot be reached from here): the
//! happy path, every wrong token the provider mints on request, a replayed
//! or foreign state, the linking rules, the admin page, and password
//! sign-in turned off.

use axum::http::StatusCode;
use mailscribe_core::{Role, SealedSecret, SecretRef, SsoConfig};
use mailscribe_testkit::{Fault, OidcProvider, OidcUser, TestDatabase};
use mailscribe_web::{AppState, BoxFuture, SsoBackend, router};
use secrecy::SecretString;

use crate::{App, Reply};

const CLIENT_ID: &str = "mailscribe-test-client";
const CLIENT_SECRET: &str = "the-client-secret";
const CALLBACK: &str = "http://mailscribe.test/sso/callback";

/// Stands in for the binary's key ring: every reference opens to the one
/// client secret the provider expects.
struct KnownSecret;

impl SsoBackend for KnownSecret {
    fn seal_client_secret(&self, plain: &SecretString) -> Result<SealedSecret, String> {
        use secrecy::ExposeSecret;
        Ok(SealedSecret(format!(
            "v1:test:{}",
            plain.expose_secret().len()
        )))
    }

    fn client_secret<'a>(
        &'a self,
        _secret: &'a SecretRef,
    ) -> BoxFuture<'a, Result<SecretString, String>> {
        Box::pin(async { Ok(SecretString::from(CLIENT_SECRET)) })
    }

    fn refuse_source(&self, source: &SecretRef) -> Option<String> {
        matches!(source, SecretRef::File(path) if path.contains("mailscribe.key"))
            .then(|| "the key file".to_owned())
    }
}

async fn app() -> App {
    let db = TestDatabase::sqlite();
    let store = mailscribe_store::Store::open(&db.url().parse().unwrap())
        .await
        .unwrap();
    let router = router(
        AppState::new(store.clone(), false).with_sso_backend(std::sync::Arc::new(KnownSecret)),
    );
    App {
        _db: db,
        store,
        router,
    }
}

fn config(provider: &OidcProvider, with_roles: bool) -> SsoConfig {
    SsoConfig {
        issuer: provider.issuer(),
        client_id: CLIENT_ID.into(),
        client_secret: SecretRef::Sealed(SealedSecret("v1:test:sealed".into())),
        redirect_url: Some(CALLBACK.into()),
        name_claim: "preferred_username".into(),
        roles: with_roles.then(|| mailscribe_core::RoleMapping {
            claim: "roles".into(),
            admin_value: "Mailscribe.Admin".into(),
            user_value: "Mailscribe.User".into(),
            salesperson_claim: Some("salesperson_code".into()),
        }),
    }
}

async fn configured(with_roles: bool) -> (App, OidcProvider) {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET);
    let app = app().await;
    app.store
        .save_sso_config(&config(&provider, with_roles), chrono::Utc::now())
        .await
        .unwrap();
    (app, provider)
}

/// What the browser does: start, let the provider answer the
/// authorization request, and come back with its code and state.
struct Started {
    callback: String,
    browser: String,
}

async fn start(app: &App) -> Started {
    let start = app.get("/sso/login", None).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let authorize = start.location().to_owned();
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    assert!(authorize.contains("nonce="), "{authorize}");
    let browser = start.cookie("mailscribe_sso").expect("the browser cookie");
    let set_cookie = start
        .headers
        .get_all(axum::http::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert!(set_cookie.iter().any(|c| c.starts_with("mailscribe_sso=")
        && c.contains("HttpOnly")
        && c.contains("SameSite=Lax")));
    let http = openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http.get(&authorize).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 302, "{:?}", answer.text().await);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let path = location
        .strip_prefix("http://mailscribe.test")
        .expect("back to the redirect URL")
        .to_owned();
    Started {
        callback: path,
        browser,
    }
}

async fn finish(app: &App, started: &Started) -> Reply {
    app.send(
        "GET",
        &started.callback,
        &[("mailscribe_sso", &started.browser)],
        None,
        None,
    )
    .await
}

async fn sign_in(app: &App) -> Reply {
    let started = start(app).await;
    finish(app, &started).await
}

async fn audit_events(app: &App) -> Vec<(String, String, Option<String>, Option<String>)> {
    app.store
        .audit_after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            (
                row.event.event,
                row.event.actor,
                row.event.target,
                row.event.detail,
            )
        })
        .collect()
}

fn assert_signed_in(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.contains("url=/interactions"), "{}", reply.body);
    reply
        .cookie("mailscribe_session")
        .expect("a session cookie")
}

fn assert_refused(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(
        reply.body.contains("Single sign-on failed"),
        "{}",
        reply.body
    );
    assert!(reply.cookie("mailscribe_session").is_none());
}

#[tokio::test]
async fn an_existing_user_signs_in_by_name_and_then_by_link() {
    let (app, provider) = configured(false).await;
    app.add_user("sally", Role::User, None).await;
    let login = app.get("/login", None).await;
    assert!(
        login.body.contains("Sign in with 127.0.0.1:"),
        "{}",
        login.body
    );
    provider.sign_in_as(OidcUser::new("sub-sally", "sally", &[]));
    let session = assert_signed_in(&sign_in(&app).await);
    let page = app.get("/interactions", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("sally"));
    // The second sign-in follows the link (issuer, sub), not the name.
    provider.sign_in_as(OidcUser::new("sub-sally", "sally.after-rename", &[]));
    assert_signed_in(&sign_in(&app).await);
    let events = audit_events(&app).await;
    let sign_ins: Vec<_> = events.iter().filter(|e| e.0 == "sso_sign_in").collect();
    assert_eq!(sign_ins.len(), 2, "{events:?}");
    assert!(
        sign_ins
            .iter()
            .all(|e| e.1 == "sally" && e.2.as_deref() == Some("sally"))
    );
    assert_eq!(provider.token_requests(), 2);
}

#[tokio::test]
async fn wrong_id_tokens_are_refused() {
    let (app, provider) = configured(false).await;
    app.add_user("sally", Role::User, None).await;
    provider.sign_in_as(OidcUser::new("sub-sally", "sally", &[]));
    for fault in [
        Fault::WrongNonce,
        Fault::WrongAudience,
        Fault::Expired,
        Fault::TamperedSignature,
        Fault::WrongIssuer,
        Fault::UnknownKey,
    ] {
        provider.set_fault(Some(fault));
        let reply = sign_in(&app).await;
        assert_refused(&reply);
        let events = audit_events(&app).await;
        let last = events.last().unwrap();
        assert_eq!(
            (last.0.as_str(), last.1.as_str()),
            ("sso_sign_in_failed", "sso"),
            "{fault:?}"
        );
        assert!(
            last.3
                .as_deref()
                .unwrap_or("")
                .starts_with("id_token_refused"),
            "{fault:?}: {last:?}"
        );
    }
    // Nothing was linked by the refused tokens: the first good sign-in
    // links now.
    provider.set_fault(None);
    assert_signed_in(&sign_in(&app).await);
    let events = audit_events(&app).await;
    assert_eq!(
        events.last().unwrap().3.as_deref(),
        Some("first sign-in: linked to the existing user")
    );
}

#[tokio::test]
async fn a_state_is_used_once_and_only_in_its_browser() {
    let (app, provider) = configured(false).await;
    app.add_user("sally", Role::User, None).await;
    provider.sign_in_as(OidcUser::new("sub-sally", "sally", &[]));
    // Another browser (no cookie, or another one) cannot finish a sign-in.
    let started = start(&app).await;
    assert_refused(&app.send("GET", &started.callback, &[], None, None).await);
    let started = start(&app).await;
    assert_refused(
        &app.send(
            "GET",
            &started.callback,
            &[("mailscribe_sso", "someone-elses")],
            None,
            None,
        )
        .await,
    );
    // The pending sign-in was consumed by that attempt: not even the right
    // browser can use it now.
    assert_refused(&finish(&app, &started).await);
    // A used state cannot be replayed.
    let started = start(&app).await;
    assert_signed_in(&finish(&app, &started).await);
    assert_refused(&finish(&app, &started).await);
    // The provider's own error comes back refused too.
    let started = start(&app).await;
    let state = started.callback.split("state=").nth(1).unwrap();
    let error = format!("/sso/callback?error=access_denied&error_description=no&state={state}");
    assert_refused(
        &app.send(
            "GET",
            &error,
            &[("mailscribe_sso", &started.browser)],
            None,
            None,
        )
        .await,
    );
}

#[tokio::test]
async fn new_users_come_from_the_role_claim_or_are_refused() {
    let (app, provider) = configured(true).await;
    app.store
        .import_salespeople(&[mailscribe_core::Salesperson {
            code: mailscribe_core::SalespersonCode::parse("SP1").unwrap(),
            name: "One".into(),
            addresses: vec![mailscribe_core::EmailAddress::parse("one@ourco.example").unwrap()],
        }])
        .await
        .unwrap();
    provider.sign_in_as(OidcUser::new("sub-nina", "nina", &["Mailscribe.Admin"]));
    let session = assert_signed_in(&sign_in(&app).await);
    assert_eq!(
        app.get("/admin/sso", Some(&session)).await.status,
        StatusCode::OK,
        "nina is an admin"
    );
    provider.sign_in_as(
        OidcUser::new("sub-sam", "sam", &["Other"]).with_claim("salesperson_code", "SP1".into()),
    );
    let session = assert_signed_in(&sign_in(&app).await);
    assert_eq!(
        app.get("/admin/sso", Some(&session)).await.status,
        StatusCode::FORBIDDEN,
        "sam is a salesperson"
    );
    let users = app.store.list_users().await.unwrap();
    let sam = users.iter().find(|u| u.user.name == "sam").unwrap();
    assert_eq!(
        (
            sam.user.role,
            sam.user.salesperson.as_ref().map(|c| c.as_str())
        ),
        (Role::Salesperson, Some("SP1"))
    );
    // No role: refused, and nobody is created.
    provider.sign_in_as(OidcUser::new("sub-ivy", "ivy@ourco.example", &["Other"]));
    assert_refused(&sign_in(&app).await);
    assert!(
        app.store
            .user_by_name("ivy@ourco.example")
            .await
            .unwrap()
            .is_none()
    );
    let events = audit_events(&app).await;
    let refused = events
        .iter()
        .rev()
        .find(|e| e.0 == "sso_sign_in_failed")
        .unwrap();
    assert_eq!(
        refused.2.as_deref(),
        Some("sub:sub-ivy"),
        "the audit log names the subject, never the e-mail-like claim"
    );
    assert_eq!(refused.3.as_deref(), Some("no_role"));
    assert!(
        !events
            .iter()
            .any(|e| format!("{e:?}").contains("ivy@ourco.example")),
        "{events:?}"
    );
    // A disabled user is refused (another admin stays).
    app.add_user("olga", Role::Admin, None).await;
    app.store
        .change_user("nina", &mailscribe_store::UserChange::Disable)
        .await
        .unwrap();
    provider.sign_in_as(OidcUser::new("sub-nina", "nina", &["Mailscribe.Admin"]));
    assert_refused(&sign_in(&app).await);
}

#[tokio::test]
async fn password_sign_in_can_be_turned_off() {
    let (app, provider) = configured(false).await;
    app.add_user("sally", Role::User, None).await;
    let session = app.login("sally").await;
    app.store
        .save_setting("local_passwords", "off")
        .await
        .unwrap();
    let form = app.get("/login", None).await;
    assert!(form.body.contains("id=\"passwords-off\""), "{}", form.body);
    assert!(!form.body.contains("type=\"password\""));
    assert!(form.body.contains("Sign in with"));
    let login_csrf = form.cookie("mailscribe_login_csrf").unwrap();
    let start = form.body.find("name=\"csrf\"");
    assert!(start.is_none(), "no password form");
    let refused = app
        .send(
            "POST",
            "/login",
            &[("mailscribe_login_csrf", &login_csrf)],
            Some(&format!(
                "name=sally&password=sally-password&csrf={login_csrf}"
            )),
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.cookie("mailscribe_session").is_none());
    // Sessions that exist stay; single sign-on still works.
    assert_eq!(
        app.get("/interactions", Some(&session)).await.status,
        StatusCode::OK
    );
    provider.sign_in_as(OidcUser::new("sub-sally", "sally", &[]));
    assert_signed_in(&sign_in(&app).await);
    // On again (as `mailscribe settings set local_passwords on` does).
    app.store
        .save_setting("local_passwords", "on")
        .await
        .unwrap();
    app.login("sally").await;
}

#[tokio::test]
async fn admins_configure_sso_on_the_web() {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET);
    let app = app().await;
    app.add_user("olga", Role::Admin, None).await;
    app.add_user("uma", Role::User, None).await;
    let uma = app.login("uma").await;
    assert_eq!(
        app.get("/admin/sso", Some(&uma)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/sso/login", None).await.status,
        StatusCode::NOT_FOUND,
        "not configured"
    );
    let olga = app.login("olga").await;
    let page = app.get("/admin/sso", Some(&olga)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"sso-status\">off"));
    let csrf = page.csrf();
    let post = |form: String| {
        let olga = olga.clone();
        let app = &app;
        async move {
            app.send(
                "POST",
                "/admin/sso",
                &[("mailscribe_session", &olga)],
                Some(&form),
                None,
            )
            .await
        }
    };
    let issuer = crate::sso::encode(&provider.issuer());
    // Without a secret: refused. An exec: source from the web: refused.
    let base =
        format!("csrf={csrf}&issuer={issuer}&client_id={CLIENT_ID}&name_claim=preferred_username");
    let reply = post(base.clone()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let reply = post(format!(
        "{base}&client_secret_from=exec%3Acat%20%2Fetc%2Fshadow"
    ))
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = post(format!(
        "{base}&client_secret_from=file%3A%2Fsrv%2Fmailscribe.key"
    ))
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = post(format!(
        "csrf={csrf}&issuer=http%3A%2F%2Fidp.example&client_id=x&client_secret=s"
    ))
    .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "plain http to a remote issuer"
    );
    // With a typed secret: sealed and saved; the page shows a mask.
    let reply = post(format!(
        "{base}&client_secret=typed-secret&role_claim=roles&admin_value=A&user_value=U"
    ))
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let stored = app.store.sso_config().await.unwrap().unwrap();
    assert_eq!(stored.issuer, provider.issuer());
    assert!(matches!(stored.client_secret, SecretRef::Sealed(_)));
    assert_eq!(
        stored.roles.as_ref().map(|r| r.admin_value.as_str()),
        Some("A")
    );
    let page = app.get("/admin/sso", Some(&olga)).await;
    assert!(page.body.contains("id=\"sso-status\">on"));
    assert!(!page.body.contains("typed-secret"));
    // Saving again without a secret keeps it while issuer and client stay;
    // another issuer needs the secret again.
    let reply = post(base.clone()).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let moved = format!("csrf={csrf}&issuer=https%3A%2F%2Fidp.example&client_id={CLIENT_ID}");
    let reply = post(moved).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body.contains("give the client secret again"),
        "{}",
        reply.body
    );
    // Turned off.
    let reply = app
        .send(
            "POST",
            "/admin/sso/disable",
            &[("mailscribe_session", &olga)],
            Some(&format!("csrf={csrf}")),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(app.store.sso_config().await.unwrap().is_none());
    assert!(!app.get("/login", None).await.body.contains("Sign in with"));
    let events: Vec<String> = audit_events(&app).await.into_iter().map(|e| e.0).collect();
    assert!(
        events.contains(&"sso_configured".to_owned())
            && events.contains(&"sso_disabled".to_owned()),
        "{events:?}"
    );
}

pub(crate) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
