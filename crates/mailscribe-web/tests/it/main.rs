//! The router without sockets (`oneshot`), on a real SQLite store: every
//! page and endpoint, and the rules of who sees what.

mod api_contract;
mod browser;
mod business_central;
mod message;
mod setup;
mod signin;
mod sso;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{TimeZone, Utc};
use http_body_util::BodyExt;
use mailscribe_core::{
    ContactNo, ContactRef, Direction, InteractionTemplate, PlannedEntry, Reason, Role,
    SalespersonCode,
};
use mailscribe_store::{DecidedCopy, Store};
use mailscribe_testkit::TestDatabase;
use mailscribe_web::{AppState, hash_password, hash_token, router};
use tower::ServiceExt;

pub(crate) struct App {
    _db: TestDatabase,
    pub(crate) store: Store,
    pub(crate) router: Router,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                v.strip_prefix(&format!("{name}="))
                    .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
            })
    }

    pub(crate) fn csrf(&self) -> String {
        let start = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + "name=\"csrf\" value=\"".len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }

    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl App {
    pub(crate) async fn new() -> App {
        App::on(TestDatabase::sqlite()).await
    }

    /// The app on a given database (SQLite or PostgreSQL).
    pub(crate) async fn on(db: TestDatabase) -> App {
        let store = Store::open(&db.url().parse().unwrap()).await.unwrap();
        let router = router(AppState::new(store.clone(), false));
        App {
            _db: db,
            store,
            router,
        }
    }

    pub(crate) async fn send(
        &self,
        method: &str,
        uri: &str,
        cookies: &[(&str, &str)],
        form: Option<&str>,
        bearer: Option<&str>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        let cookie_header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !cookie_header.is_empty() {
            request = request.header(header::COOKIE, cookie_header.join("; "));
        }
        if let Some(token) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match form {
            Some(form) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(form.to_owned())
            }
            None => Body::empty(),
        };
        self.answer(request.body(body).unwrap()).await
    }

    pub(crate) async fn answer(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// A JSON request with a bearer token.
    pub(crate) async fn send_json(
        &self,
        method: &str,
        uri: &str,
        bearer: &str,
        body: Option<serde_json::Value>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {bearer}"));
        let body = match body {
            Some(value) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        self.answer(request.body(body).unwrap()).await
    }

    pub(crate) async fn get(&self, uri: &str, session: Option<&str>) -> Reply {
        match session {
            Some(session) => {
                self.send("GET", uri, &[("mailscribe_session", session)], None, None)
                    .await
            }
            None => self.send("GET", uri, &[], None, None).await,
        }
    }

    pub(crate) async fn add_user(&self, name: &str, role: Role, code: Option<&str>) {
        let hash = hash_password(format!("{name}-password")).await.unwrap();
        let code = code.map(|c| SalespersonCode::parse(c).unwrap());
        self.store
            .create_user(name, &hash, role, code.as_ref(), Utc::now())
            .await
            .unwrap();
    }

    /// Signs in through the form and returns the session cookie.
    pub(crate) async fn login(&self, name: &str) -> String {
        let form = self.get("/login", None).await;
        let login_csrf = form.cookie("mailscribe_login_csrf").unwrap();
        let reply = self
            .send(
                "POST",
                "/login",
                &[("mailscribe_login_csrf", &login_csrf)],
                Some(&format!(
                    "name={name}&password={name}-password&csrf={}",
                    form.csrf()
                )),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        reply
            .cookie("mailscribe_session")
            .expect("a session cookie")
    }

    /// Entries: SP1 writes to contact 1 (three), SP2 to contact 2 (two).
    pub(crate) async fn seed_entries(&self) -> Vec<i64> {
        let copies: Vec<DecidedCopy> = (0..5u32)
            .map(|i| {
                let (sp, contact) = if i < 3 { ("SP1", "1") } else { ("SP2", "2") };
                let subject = if i == 4 {
                    "<script>alert(1)</script> offer".to_owned()
                } else {
                    format!("Offer number {i}")
                };
                logged_copy(i + 1, &format!("m{i}@x"), &subject, sp, contact, None)
            })
            .collect();
        self.store
            .commit_batch(&copies, &email_template(), Utc::now(), None)
            .await
            .unwrap();
        let mut numbers: Vec<i64> = self
            .store
            .entries_after(0, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.entry_no)
            .collect();
        numbers.sort();
        numbers
    }
}

/// One logged copy with one entry for `salesperson` and `contact`.
pub(crate) fn logged_copy(
    uid: u32,
    key: &str,
    subject: &str,
    salesperson: &str,
    contact: &str,
    raw: Option<Vec<u8>>,
) -> DecidedCopy {
    let at = Utc.with_ymd_and_hms(2026, 3, 3, 8, 0, 0).unwrap()
        + chrono::Duration::hours(i64::from(uid));
    DecidedCopy {
        mailbox: "m".into(),
        mailbox_name: "default".into(),
        uid_validity: 1,
        uid,
        run_id: 1,
        message_id: Some(format!("<{key}>")),
        message_key: format!("mid:{key}"),
        sha256: "00".repeat(32),
        sender: Some("someone@customer.example".into()),
        subject: subject.into(),
        reason: Reason::Logged,
        ambiguous: false,
        error: None,
        entries: vec![PlannedEntry {
            direction: Direction::Outbound,
            salesperson: SalespersonCode::parse(salesperson).unwrap(),
            contact: ContactRef {
                no: ContactNo::parse(contact).unwrap(),
                company_no: None,
            },
        }],
        occurred_at: at,
        sent_at: Some(at),
        received_at: at,
        date_fallback: false,
        size: raw.as_ref().map_or(10, |r| r.len() as u64),
        raw,
    }
}

pub(crate) fn email_template() -> InteractionTemplate {
    InteractionTemplate {
        code: "EMAIL".into(),
        description: "Email".into(),
        cost: Default::default(),
        duration_minutes: 0,
        interaction_group: None,
        campaign_no: None,
    }
}

fn json(reply: &Reply) -> serde_json::Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|_| panic!("not JSON: {}", reply.body))
}

#[tokio::test]
async fn health_needs_no_login_and_everything_else_does() {
    let app = App::new().await;
    let health = app.get("/healthz", None).await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok")
    );
    let page = app.get("/interactions", None).await;
    assert_eq!(
        (page.status, page.location()),
        (StatusCode::SEE_OTHER, "/login")
    );
    let api = app.get("/api/v1/interactions", None).await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    assert_eq!(json(&api)["error"]["code"], "unauthenticated");
    let login = app.get("/login", None).await;
    assert!(login.body.contains("no users yet") || login.body.contains("There are no users yet"));
    let cookie = login
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
}

#[tokio::test]
async fn only_the_setup_link_creates_the_first_admin() {
    let app = App::new().await;
    assert_eq!(app.get("/setup", None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/setup?token=guess", None).await.status,
        StatusCode::NOT_FOUND
    );
    let grab = app
        .send(
            "POST",
            "/setup",
            &[],
            Some("token=guess&name=eve&password=kettle-orbit-7&password_again=kettle-orbit-7"),
            None,
        )
        .await;
    assert_eq!(
        grab.status,
        StatusCode::NOT_FOUND,
        "whoever reaches the port first cannot take over"
    );

    app.store
        .put_setup_token(
            &hash_token("the-link-token"),
            Utc::now() + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(
        app.get("/setup?token=the-link-token", None).await.status,
        StatusCode::OK
    );
    let short = app
        .send(
            "POST",
            "/setup",
            &[],
            Some("token=the-link-token&name=root&password=short&password_again=short"),
            None,
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(short.body.contains("at least 12 characters"));
    let common = app.send("POST", "/setup", &[], Some("token=the-link-token&name=root&password=Password2026!&password_again=Password2026!"), None).await;
    assert_eq!(common.status, StatusCode::BAD_REQUEST);
    assert!(common.body.contains("too common"), "{}", common.body);
    let created = app
        .send("POST", "/setup", &[], Some("token=the-link-token&name=root&password=kettle-orbit-7&password_again=kettle-orbit-7"), None)
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    let session = created.cookie("mailscribe_session").unwrap();
    assert_eq!(
        app.get("/interactions", Some(&session)).await.status,
        StatusCode::OK
    );
    let again = app
        .send(
            "POST",
            "/setup",
            &[],
            Some("token=the-link-token&name=eve&password=0123456789&password_again=0123456789"),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "the link works once");
    assert_eq!(app.store.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn a_salesperson_sees_only_their_own_entries_in_pages_and_api() {
    let app = App::new().await;
    let numbers = app.seed_entries().await;
    app.add_user("sally", Role::Salesperson, Some("SP1")).await;
    app.add_user("uma", Role::User, None).await;
    let sally = app.login("sally").await;
    let uma = app.login("uma").await;

    let page = app.get("/interactions", Some(&sally)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body.matches("<td>SP1</td>").count(), 3);
    assert!(!page.body.contains("<td>SP2</td>"));
    // Asking for SP2's entries by filter changes nothing.
    let page = app.get("/interactions?salesperson=SP2", Some(&sally)).await;
    assert_eq!(page.body.matches("<td>SP1</td>").count(), 3);
    assert!(!page.body.contains("<td>SP2</td>"));
    // Nor does guessing an entry number.
    let theirs = numbers[4];
    assert_eq!(
        app.get(&format!("/interactions/{theirs}"), Some(&sally))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/v1/interactions/{theirs}"), Some(&sally))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/interactions/{}", numbers[0]), Some(&sally))
            .await
            .status,
        StatusCode::OK
    );

    let api = json(&app.get("/api/v1/interactions", Some(&sally)).await);
    assert_eq!(api["items"].as_array().unwrap().len(), 3);
    let all = json(&app.get("/api/v1/interactions", Some(&uma)).await);
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    assert_eq!(all["items"][0]["entry_no"], numbers[4], "newest first");
    assert_eq!(all["items"][0]["message_id"], "<m4@x>");
}

#[tokio::test]
async fn forms_need_their_csrf_token() {
    let app = App::new().await;
    let numbers = app.seed_entries().await;
    app.add_user("uma", Role::User, None).await;
    let uma = app.login("uma").await;
    let no = numbers[0];
    let entry = app.get(&format!("/interactions/{no}"), Some(&uma)).await;
    let csrf = entry.csrf();
    let uri = format!("/interactions/{no}/comments");
    let forged = app
        .send(
            "POST",
            &uri,
            &[("mailscribe_session", &uma)],
            Some("comment=hello&csrf=forged"),
            None,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let missing = app
        .send(
            "POST",
            &uri,
            &[("mailscribe_session", &uma)],
            Some("comment=hello"),
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let ok = app
        .send(
            "POST",
            &uri,
            &[("mailscribe_session", &uma)],
            Some(&format!("comment=called+back&csrf={csrf}")),
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let entry = app.get(&format!("/interactions/{no}"), Some(&uma)).await;
    assert!(entry.body.contains("called back"));

    let cancel = app
        .send(
            "POST",
            &format!("/interactions/{no}/cancel"),
            &[("mailscribe_session", &uma)],
            Some(&format!("csrf={csrf}")),
            None,
        )
        .await;
    assert_eq!(cancel.status, StatusCode::SEE_OTHER);
    assert!(
        app.get(&format!("/interactions/{no}"), Some(&uma))
            .await
            .body
            .contains("<dd id=\"canceled\">yes</dd>")
    );
    app.send(
        "POST",
        &format!("/interactions/{no}/restore"),
        &[("mailscribe_session", &uma)],
        Some(&format!("csrf={csrf}")),
        None,
    )
    .await;
    assert!(
        app.get(&format!("/interactions/{no}"), Some(&uma))
            .await
            .body
            .contains("<dd id=\"canceled\">no</dd>")
    );

    // Signing out ends the session.
    let out = app
        .send(
            "POST",
            "/logout",
            &[("mailscribe_session", &uma)],
            Some(&format!("csrf={csrf}")),
            None,
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/interactions", Some(&uma)).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled() {
    let app = App::new().await;
    app.add_user("uma", Role::User, None).await;
    let form = app.get("/login", None).await;
    let login_csrf = form.cookie("mailscribe_login_csrf").unwrap();
    let attempt = |password: &'static str| {
        let body = format!("name=uma&password={password}&csrf={login_csrf}");
        let cookie = login_csrf.clone();
        let app = &app;
        async move {
            app.send(
                "POST",
                "/login",
                &[("mailscribe_login_csrf", &cookie)],
                Some(&body),
                None,
            )
            .await
            .status
        }
    };
    for _ in 0..5 {
        assert_eq!(attempt("wrong").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        attempt("uma-password").await,
        StatusCode::TOO_MANY_REQUESTS,
        "locked even with the right password"
    );
    // A login form from another site has no matching cookie.
    let forged = app
        .send(
            "POST",
            "/login",
            &[],
            Some("name=uma&password=uma-password&csrf=x"),
            None,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bearer_tokens_open_the_api() {
    let app = App::new().await;
    app.seed_entries().await;
    app.add_user("bot", Role::Salesperson, Some("SP2")).await;
    let (user, _) = app.store.user_by_name("bot").await.unwrap().unwrap();
    app.store
        .create_api_token(&hash_token("tok-123"), user.id, Utc::now(), None)
        .await
        .unwrap();
    let me = app
        .send("GET", "/api/v1/me", &[], None, Some("tok-123"))
        .await;
    assert_eq!(json(&me)["salesperson_code"], "SP2");
    let list = json(
        &app.send(
            "GET",
            "/api/v1/interactions?limit=1",
            &[],
            None,
            Some("tok-123"),
        )
        .await,
    );
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let next = format!(
        "/api/v1/interactions?limit=1&before_at={}&before_no={}",
        list["next_before_at"].as_str().unwrap().replace('+', "%2B"),
        list["next_before_no"]
    );
    let second = json(&app.send("GET", &next, &[], None, Some("tok-123")).await);
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_ne!(second["items"][0]["entry_no"], list["items"][0]["entry_no"]);
    assert_eq!(
        app.send("GET", "/api/v1/me", &[], None, Some("wrong"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let bad = app
        .send(
            "GET",
            "/api/v1/interactions?direction=sideways",
            &[],
            None,
            Some("tok-123"),
        )
        .await;
    assert_eq!(
        (bad.status, json(&bad)["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
}

#[tokio::test]
async fn message_content_is_escaped_and_filters_apply() {
    let app = App::new().await;
    app.seed_entries().await;
    app.add_user("uma", Role::User, None).await;
    let uma = app.login("uma").await;
    let page = app.get("/interactions", Some(&uma)).await;
    assert!(!page.body.contains("<script>alert(1)</script>"));
    assert!(
        page.body.contains("script&#62;alert(1)") || page.body.contains("script&gt;alert(1)"),
        "the subject is shown, escaped"
    );
    let filtered = app.get("/interactions?q=number+2", Some(&uma)).await;
    assert_eq!(filtered.body.matches("Offer number").count(), 1);
    let none = app
        .get("/interactions?from=2026-03-04&to=2026-03-05", Some(&uma))
        .await;
    assert!(none.body.contains("No entries match these filters."));
    let bad = app.get("/interactions?from=yesterday", Some(&uma)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // The last day chrono can parse, which has no next day.
    let far = app
        .get("/api/v1/interactions?to=%2B262142-12-31", Some(&uma))
        .await;
    assert_eq!(far.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_opportunity_from_an_entry_links_both_ways() {
    let app = App::new().await;
    let numbers = app.seed_entries().await;
    app.add_user("sally", Role::Salesperson, Some("SP1")).await;
    app.add_user("sam", Role::Salesperson, Some("SP2")).await;
    let sally = app.login("sally").await;
    let no = numbers[0];
    let entry = app.get(&format!("/interactions/{no}"), Some(&sally)).await;
    assert!(entry.body.contains("id=\"create-opportunity\""));
    let csrf = entry.csrf();
    let uri = format!("/interactions/{no}/opportunity");
    let made = app
        .send(
            "POST",
            &uri,
            &[("mailscribe_session", &sally)],
            Some(&format!("csrf={csrf}")),
            None,
        )
        .await;
    assert_eq!(
        (made.status, made.location()),
        (StatusCode::SEE_OTHER, "/opportunities/OP-1")
    );
    let card = app.get("/opportunities/OP-1", Some(&sally)).await;
    assert!(
        card.body.contains("Offer number 0") && card.body.contains(&format!("/interactions/{no}")),
        "{}",
        card.body
    );
    let entry = app.get(&format!("/interactions/{no}"), Some(&sally)).await;
    assert!(
        entry.body.contains("id=\"opportunity-link\"")
            && !entry.body.contains("id=\"create-opportunity\"")
    );
    // Only once.
    let again = app
        .send(
            "POST",
            &uri,
            &[("mailscribe_session", &sally)],
            Some(&format!("csrf={csrf}")),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    // Status and value.
    let saved = app
        .send(
            "POST",
            "/opportunities/OP-1",
            &[("mailscribe_session", &sally)],
            Some(&format!("csrf={csrf}&status=won&value=1500")),
            None,
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert!(
        app.get("/opportunities/OP-1", Some(&sally))
            .await
            .body
            .contains("<dd id=\"status\">won</dd>")
    );
    // Another salesperson sees neither the card nor the list row.
    let sam = app.login("sam").await;
    assert_eq!(
        app.get("/opportunities/OP-1", Some(&sam)).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        !app.get("/opportunities", Some(&sam))
            .await
            .body
            .contains("OP-1")
    );
    // By hand: a salesperson's own opportunity is theirs.
    let sam_csrf = app.get("/opportunities", Some(&sam)).await.csrf();
    let manual = app
        .send(
            "POST",
            "/opportunities",
            &[("mailscribe_session", &sam)],
            Some(&format!(
                "csrf={sam_csrf}&description=Renewal&salesperson=SP1&value=12.5"
            )),
            None,
        )
        .await;
    assert_eq!(manual.status, StatusCode::SEE_OTHER);
    assert!(
        app.get(manual.location(), Some(&sam))
            .await
            .body
            .contains("<dd>SP2</dd>")
    );
}

#[tokio::test]
async fn runs_and_decisions_are_for_admins_and_users_only() {
    let app = App::new().await;
    app.seed_entries().await;
    app.add_user("uma", Role::User, None).await;
    app.add_user("sally", Role::Salesperson, Some("SP1")).await;
    let uma = app.login("uma").await;
    let sally = app.login("sally").await;
    let run = app
        .store
        .start_run("m", "default", Utc::now())
        .await
        .unwrap();
    app.store
        .finish_run(run, Utc::now(), "completed", &Default::default(), None)
        .await
        .unwrap();
    assert_eq!(app.get("/runs", Some(&uma)).await.status, StatusCode::OK);
    let decisions = app.get("/decisions?reason=logged&q=m3", Some(&uma)).await;
    assert_eq!(decisions.status, StatusCode::OK);
    assert!(
        decisions.body.contains("&lt;m3@x&gt;") || decisions.body.contains("&#60;m3@x&#62;"),
        "{}",
        decisions.body
    );
    assert!(!decisions.body.contains("m2@x"));
    assert_eq!(
        app.get("/decisions?reason=bogus", Some(&uma)).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/runs", Some(&sally)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/decisions", Some(&sally)).await.status,
        StatusCode::NOT_FOUND
    );
}

/// Checks that `value` has every property the schema requires, and no
/// other, following `$ref` and `allOf` (the subset of OpenAPI we use).
fn check_against(
    document: &serde_json::Value,
    schema: &serde_json::Value,
    value: &serde_json::Value,
    at: &str,
) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return check_against(
            document,
            &document["components"]["schemas"][name],
            value,
            at,
        );
    }
    if let Some(parts) = schema["allOf"].as_array() {
        let mut merged = serde_json::Map::new();
        for part in parts {
            let part = match part["$ref"].as_str() {
                Some(reference) => {
                    &document["components"]["schemas"][reference.rsplit('/').next().unwrap()]
                }
                None => part,
            };
            for (key, property) in part["properties"].as_object().unwrap() {
                merged.insert(key.clone(), property.clone());
            }
        }
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), merged.len(), "{at}: {keys:?}");
        return;
    }
    match schema["type"].as_str() {
        Some("object") => {
            let object = value
                .as_object()
                .unwrap_or_else(|| panic!("{at}: not an object: {value}"));
            // A map (additionalProperties) names no properties.
            let Some(properties) = schema["properties"].as_object() else {
                return;
            };
            for required in schema["required"].as_array().unwrap() {
                assert!(
                    object.contains_key(required.as_str().unwrap()),
                    "{at}: {required} is missing"
                );
            }
            for (key, item) in object {
                let property = properties
                    .get(key)
                    .unwrap_or_else(|| panic!("{at}: {key} is not documented"));
                if !(item.is_null() && property["nullable"] == true) {
                    check_against(document, property, item, &format!("{at}.{key}"));
                }
            }
        }
        Some("array") => {
            for (i, item) in value.as_array().unwrap().iter().enumerate() {
                check_against(document, &schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        Some("string") => assert!(value.is_string(), "{at}: not a string: {value}"),
        Some("integer") => assert!(value.is_i64(), "{at}: not an integer: {value}"),
        Some("boolean") => assert!(value.is_boolean(), "{at}: not a boolean: {value}"),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_describes_what_the_api_answers() {
    let app = App::new().await;
    let numbers = app.seed_entries().await;
    app.add_user("uma", Role::User, None).await;
    let uma = app.login("uma").await;
    let document = json(&app.get("/api/v1/openapi.json", None).await);
    assert_eq!(document["openapi"], "3.0.3");
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/api/v1/me",
        "/api/v1/interactions",
        "/api/v1/interactions/{entry_no}",
        "/api/v1/interactions/{entry_no}/opportunity",
        "/api/v1/interactions/{entry_no}/comments",
        "/api/v1/interactions/{entry_no}/cancel",
        "/api/v1/interactions/{entry_no}/restore",
        "/api/v1/salespeople/{code}",
        "/api/v1/contacts/import",
        "/api/v1/salespeople/import",
        "/api/v1/opportunities",
        "/api/v1/opportunities/{no}",
        "/api/v1/contacts",
        "/api/v1/contacts/{no}",
        "/api/v1/salespeople",
        "/api/v1/runs",
        "/api/v1/decisions",
        "/api/v1/openapi.json",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    let schema = |name: &str| serde_json::json!({ "$ref": format!("#/components/schemas/{name}") });
    check_against(
        &document,
        &schema("Me"),
        &json(&app.get("/api/v1/me", Some(&uma)).await),
        "me",
    );
    check_against(
        &document,
        &schema("InteractionPage"),
        &json(&app.get("/api/v1/interactions?limit=2", Some(&uma)).await),
        "page",
    );
    let one = json(
        &app.get(&format!("/api/v1/interactions/{}", numbers[0]), Some(&uma))
            .await,
    );
    check_against(&document, &schema("InteractionWithComments"), &one, "entry");
    check_against(
        &document,
        &schema("Error"),
        &json(&app.get("/api/v1/interactions/999999", Some(&uma)).await),
        "error",
    );

    // The rest of the API, each answer against its schema.
    let (user, _) = app.store.user_by_name("uma").await.unwrap().unwrap();
    app.store
        .create_api_token(&hash_token("uma-token"), user.id, Utc::now(), None)
        .await
        .unwrap();
    let post = |uri: String| {
        let app = &app;
        async move { app.send("POST", &uri, &[], None, Some("uma-token")).await }
    };
    let created = post(format!("/api/v1/interactions/{}/opportunity", numbers[1])).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    check_against(
        &document,
        &schema("Opportunity"),
        &json(&created),
        "created",
    );
    assert_eq!(
        post(format!("/api/v1/interactions/{}/opportunity", numbers[1]))
            .await
            .status,
        StatusCode::CONFLICT,
        "only once"
    );
    let by_cookie = app
        .send(
            "POST",
            &format!("/api/v1/interactions/{}/opportunity", numbers[2]),
            &[("mailscribe_session", &uma)],
            None,
            None,
        )
        .await;
    assert_eq!(
        by_cookie.status,
        StatusCode::UNAUTHORIZED,
        "a browser session cannot write through the API"
    );
    assert_eq!(by_cookie.headers[header::WWW_AUTHENTICATE], "Bearer");
    let no = json(&created)["no"].as_str().unwrap().to_owned();
    let list = |name: &str| serde_json::json!({ "type": "object", "required": ["items"], "properties": { "items": { "type": "array", "items": { "$ref": format!("#/components/schemas/{name}") } } } });
    check_against(
        &document,
        &list("Opportunity"),
        &json(&app.get("/api/v1/opportunities", Some(&uma)).await),
        "opportunities",
    );
    let card = json(
        &app.get(&format!("/api/v1/opportunities/{no}"), Some(&uma))
            .await,
    );
    check_against(&document, &schema("OpportunityCard"), &card, "opportunity");
    assert_eq!(card["entries"][0], numbers[1]);

    let contacts = [mailscribe_core::Contact {
        no: ContactNo::parse("1").unwrap(),
        name: "Carl".into(),
        kind: mailscribe_core::ContactKind::Person,
        company_name: Some("Customer Corp".into()),
        addresses: vec![mailscribe_core::EmailAddress::parse("c1@customer.example").unwrap()],
        privacy_blocked: None,
    }];
    app.store.import_contacts(&contacts).await.unwrap();
    check_against(
        &document,
        &list("Contact"),
        &json(&app.get("/api/v1/contacts?q=carl", Some(&uma)).await),
        "contacts",
    );
    check_against(
        &document,
        &schema("Contact"),
        &json(&app.get("/api/v1/contacts/1", Some(&uma)).await),
        "contact",
    );
    check_against(
        &document,
        &list("Salesperson"),
        &json(&app.get("/api/v1/salespeople", Some(&uma)).await),
        "salespeople",
    );
    let run = app
        .store
        .start_run("m", "default", Utc::now())
        .await
        .unwrap();
    app.store
        .finish_run(run, Utc::now(), "completed", &Default::default(), None)
        .await
        .unwrap();
    check_against(
        &document,
        &list("Run"),
        &json(&app.get("/api/v1/runs", Some(&uma)).await),
        "runs",
    );
    let decisions = json(&app.get("/api/v1/decisions?reason=logged", Some(&uma)).await);
    check_against(&document, &schema("DecisionPage"), &decisions, "decisions");
    assert_eq!(decisions["items"].as_array().unwrap().len(), 5);

    // A salesperson sees no ledger, and no one else's opportunity.
    app.add_user("sam", Role::Salesperson, Some("SP2")).await;
    let sam = app.login("sam").await;
    assert_eq!(
        app.get("/api/v1/runs", Some(&sam)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/decisions", Some(&sam)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/v1/opportunities/{no}"), Some(&sam))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        json(&app.get("/api/v1/opportunities", Some(&sam)).await)["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_api_writes_comments_cancelations_and_the_directory() {
    let app = App::new().await;
    let numbers = app.seed_entries().await;
    let document = json(&app.get("/api/v1/openapi.json", None).await);
    let schema = |name: &str| serde_json::json!({ "$ref": format!("#/components/schemas/{name}") });
    for (name, role, code) in [
        ("root", Role::Admin, None),
        ("uma", Role::User, None),
        ("sam", Role::Salesperson, Some("SP2")),
    ] {
        app.add_user(name, role, code).await;
        let (user, _) = app.store.user_by_name(name).await.unwrap().unwrap();
        app.store
            .create_api_token(
                &hash_token(&format!("{name}-token")),
                user.id,
                Utc::now(),
                None,
            )
            .await
            .unwrap();
    }

    // Comments and cancelation, on entries the caller may see.
    let entry = numbers[0];
    let reply = app
        .send_json(
            "POST",
            &format!("/api/v1/interactions/{entry}/comments"),
            "uma-token",
            Some(serde_json::json!({ "comment": "Called back" })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let body = json(&reply);
    check_against(
        &document,
        &schema("InteractionWithComments"),
        &body,
        "commented",
    );
    assert_eq!(body["comments"][0]["comment"], "Called back");
    for bad in [
        serde_json::json!({ "comment": "   " }),
        serde_json::json!({ "text": "x" }),
    ] {
        let reply = app
            .send_json(
                "POST",
                &format!("/api/v1/interactions/{entry}/comments"),
                "uma-token",
                Some(bad),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        check_against(&document, &schema("Error"), &json(&reply), "bad comment");
    }
    let reply = app
        .send_json(
            "POST",
            &format!("/api/v1/interactions/{entry}/cancel"),
            "uma-token",
            None,
        )
        .await;
    assert_eq!(
        (reply.status, json(&reply)["canceled"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let reply = app
        .send_json(
            "POST",
            &format!("/api/v1/interactions/{entry}/restore"),
            "uma-token",
            None,
        )
        .await;
    assert_eq!(json(&reply)["canceled"].as_bool(), Some(false));
    // Entry 0 belongs to SP1: SP2's salesperson cannot touch it, nor find it.
    for path in ["comments", "cancel"] {
        let reply = app
            .send_json(
                "POST",
                &format!("/api/v1/interactions/{entry}/{path}"),
                "sam-token",
                Some(serde_json::json!({ "comment": "x" })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert!(!app.store.entry(entry).await.unwrap().unwrap().canceled);

    // The directory: admins only, by the import rules.
    let carl = serde_json::json!({ "name": "Carl", "company": "Customer Corp", "addresses": ["c1@customer.example"] });
    let reply = app
        .send_json(
            "PUT",
            "/api/v1/contacts/1",
            "root-token",
            Some(carl.clone()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    check_against(&document, &schema("Contact"), &json(&reply), "put contact");
    assert_eq!(json(&reply)["addresses"][0], "c1@customer.example");
    assert_eq!(
        app.send_json("PUT", "/api/v1/contacts/1", "uma-token", Some(carl))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let reply = app
        .send_json(
            "PUT",
            "/api/v1/contacts/9",
            "root-token",
            Some(serde_json::json!({ "name": "Bad", "addresses": ["not an address"] })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        json(&reply)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not an address"),
        "{}",
        reply.body
    );
    let reply = app
        .send_json(
            "PUT",
            "/api/v1/salespeople/SP9",
            "root-token",
            Some(serde_json::json!({ "name": "Nina", "addresses": ["nina@ourco.example"] })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    check_against(
        &document,
        &schema("Salesperson"),
        &json(&reply),
        "put salesperson",
    );
    assert_eq!(
        app.send_json("DELETE", "/api/v1/salespeople/SP9", "uma-token", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.send_json("DELETE", "/api/v1/salespeople/SP9", "root-token", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.send_json("DELETE", "/api/v1/salespeople/SP9", "root-token", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.send_json(
            "PUT",
            "/api/v1/contacts/77",
            "root-token",
            Some(serde_json::json!({ "name": "Temp" }))
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.send_json("DELETE", "/api/v1/contacts/77", "root-token", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert!(app.store.contact("77").await.unwrap().is_none());

    // CSV imports through the API: all or nothing, errors with line numbers.
    let csv_request = |path: &str, token: &str, csv: &str| {
        Request::builder()
            .method("POST")
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "text/csv")
            .body(Body::from(csv.to_owned()))
            .unwrap()
    };
    let bad = "no,name,email,company\n5,Eve,eve@customer.example,Acme\n5,Again,x@y.example,\n";
    let reply = app
        .answer(csv_request("/api/v1/contacts/import", "root-token", bad))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        json(&reply)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 3"),
        "{}",
        reply.body
    );
    assert!(
        app.store.contact("5").await.unwrap().is_none(),
        "nothing imported"
    );
    let good = "no,name,email,company\n5,Eve,eve@customer.example,Acme\n6,Finn,finn@customer.example,Acme\n";
    let reply = app
        .answer(csv_request("/api/v1/contacts/import", "root-token", good))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    check_against(&document, &schema("ImportSummary"), &json(&reply), "import");
    assert_eq!(
        (
            json(&reply)["created"].as_u64(),
            json(&reply)["companies_created"].as_array().map(Vec::len)
        ),
        (Some(2), Some(1))
    );
    let reply = app
        .answer(csv_request(
            "/api/v1/salespeople/import",
            "uma-token",
            "code,name,email\nSP7,Seven,s7@ourco.example\n",
        ))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "admins only");
    let reply = app
        .answer(csv_request(
            "/api/v1/salespeople/import",
            "root-token",
            "code,name,email\nSP7,Seven,s7@ourco.example\n",
        ))
        .await;
    assert_eq!(
        (reply.status, json(&reply)["created"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{}",
        reply.body
    );

    // Opportunities by hand, and their status: a salesperson's are their own.
    let reply = app.send_json("POST", "/api/v1/opportunities", "sam-token", Some(serde_json::json!({
        "description": "Renewal", "contact_no": "2", "salesperson_code": "SP1", "estimated_value": "1200.50" }))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let created = json(&reply);
    check_against(
        &document,
        &schema("Opportunity"),
        &created,
        "created by hand",
    );
    assert_eq!(
        (
            created["salesperson_code"].as_str(),
            created["estimated_value"].as_str()
        ),
        (Some("SP2"), Some("1200.50"))
    );
    let no = created["no"].as_str().unwrap().to_owned();
    let reply = app
        .send_json(
            "PATCH",
            &format!("/api/v1/opportunities/{no}"),
            "sam-token",
            Some(serde_json::json!({ "status": "won" })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    check_against(
        &document,
        &schema("OpportunityCard"),
        &json(&reply),
        "changed",
    );
    assert_eq!(json(&reply)["status"], "won");
    let reply = app
        .send_json(
            "PATCH",
            &format!("/api/v1/opportunities/{no}"),
            "uma-token",
            Some(serde_json::json!({ "status": "sold" })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let reply = app
        .send_json(
            "POST",
            "/api/v1/opportunities",
            "uma-token",
            Some(serde_json::json!({ "description": " " })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let theirs = app
        .send_json(
            "POST",
            "/api/v1/opportunities",
            "uma-token",
            Some(serde_json::json!({ "description": "Other", "salesperson_code": "SP1" })),
        )
        .await;
    let theirs = json(&theirs)["no"].as_str().unwrap().to_owned();
    let reply = app
        .send_json(
            "PATCH",
            &format!("/api/v1/opportunities/{theirs}"),
            "sam-token",
            Some(serde_json::json!({ "status": "lost" })),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "SP2 cannot change SP1's opportunity"
    );
}

#[tokio::test]
async fn contacts_and_salespeople_with_their_history_and_csv_import() {
    let app = App::new().await;
    app.seed_entries().await;
    app.add_user("root", Role::Admin, None).await;
    app.add_user("sally", Role::Salesperson, Some("SP1")).await;
    let root = app.login("root").await;
    let csrf = app.get("/contacts", Some(&root)).await.csrf();

    // A bad file imports nothing and says where.
    let bad =
        "no,name,email,company\n1,Carl,c1@customer.example,Customer Corp\n1,Again,x@y.example,\n";
    let reply = app
        .send(
            "POST",
            "/contacts/import",
            &[("mailscribe_session", &root)],
            Some(&format!("csrf={csrf}&csv={}", urlencode(bad))),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply
            .body
            .contains("line 3: the number 1 is also on line 2"),
        "{}",
        reply.body
    );
    assert!(app.store.contact("1").await.unwrap().is_none());

    let good = "no,name,email,company\n1,Carl,c1@customer.example,Customer Corp\n2,Cora,c2@customer.example,Customer Corp\n";
    let reply = app
        .send(
            "POST",
            "/contacts/import",
            &[("mailscribe_session", &root)],
            Some(&format!("csrf={csrf}&csv={}", urlencode(good))),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let list = app.get("/contacts?q=car", Some(&root)).await;
    assert!(
        list.body.contains("Carl") && !list.body.contains("Cora"),
        "{}",
        list.body
    );
    let card = app.get("/contacts/1", Some(&root)).await;
    assert!(card.body.contains("c1@customer.example") && card.body.contains("/contacts/CO-1"));
    assert_eq!(
        card.body
            .matches("<tr><td><a href=\"/interactions/")
            .count(),
        3,
        "contact 1's history"
    );

    let people = "code,name,email\nSP1,Sally,sp1@ourco.example\nSP2,Sam,sp2@ourco.example\n";
    let reply = app
        .send(
            "POST",
            "/salespeople/import",
            &[("mailscribe_session", &root)],
            Some(&format!("csrf={csrf}&csv={}", urlencode(people))),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);

    // A salesperson sees only themselves, and only their own history.
    let sally = app.login("sally").await;
    let list = app.get("/salespeople", Some(&sally)).await;
    assert!(list.body.contains("Sally") && !list.body.contains("Sam"));
    assert_eq!(
        app.get("/salespeople/SP2", Some(&sally)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/contacts/2", Some(&sally))
            .await
            .body
            .matches("<tr><td><a href=\"/interactions/")
            .count(),
        0
    );
    let sally_csrf = list.csrf();
    let denied = app
        .send(
            "POST",
            "/salespeople/import",
            &[("mailscribe_session", &sally)],
            Some(&format!("csrf={sally_csrf}&csv={}", urlencode(people))),
            None,
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
}

pub(crate) fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn admins_add_change_and_delete_single_contacts_and_salespeople() {
    let app = App::new().await;
    app.add_user("root", Role::Admin, None).await;
    app.add_user("uma", Role::User, None).await;
    let root = app.login("root").await;
    let csrf = app.get("/contacts", Some(&root)).await.csrf();
    let session = [("mailscribe_session", root.as_str())];

    let add = app
        .send(
            "POST",
            "/contacts",
            &session,
            Some(&format!(
                "csrf={csrf}&key=7&name=Ann&email=ann%40acme.example&company=Acme&kind=person"
            )),
            None,
        )
        .await;
    assert_eq!(
        (add.status, add.location()),
        (StatusCode::SEE_OTHER, "/contacts/7")
    );
    let card = app.get("/contacts/7", Some(&root)).await;
    assert!(
        card.body.contains("ann@acme.example") && card.body.contains("/contacts/CO-1"),
        "{}",
        card.body
    );
    // The same rules as a file: a bad address is refused with its reason.
    let bad = app
        .send(
            "POST",
            "/contacts",
            &session,
            Some(&format!(
                "csrf={csrf}&key=8&name=Bob&email=not-an-address&kind=person"
            )),
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("not a usable email address"),
        "{}",
        bad.body
    );
    // Changing replaces the name and the addresses.
    app.send(
        "POST",
        "/contacts",
        &session,
        Some(&format!(
            "csrf={csrf}&key=7&name=Ann+B&email=ann.b%40acme.example&company=Acme&kind=person"
        )),
        None,
    )
    .await;
    let card = app.get("/contacts/7", Some(&root)).await;
    assert!(
        card.body.contains("Ann B")
            && card.body.contains("ann.b@acme.example")
            && !card.body.contains("ann@acme.example")
    );
    // Privacy blocking: set explicitly, kept by a change that leaves the
    // choice empty, cleared explicitly.
    let contact_form = |name: &str, blocked: &str| {
        format!(
            "csrf={csrf}&key=7&name={name}&email=ann.b%40acme.example&company=Acme&kind=person&privacy_blocked={blocked}"
        )
    };
    let is_blocked = |body: &str| body.contains("id=\"privacy-blocked\"");
    app.send(
        "POST",
        "/contacts",
        &session,
        Some(&contact_form("Ann+B", "true")),
        None,
    )
    .await;
    assert!(is_blocked(&app.get("/contacts/7", Some(&root)).await.body));
    app.send(
        "POST",
        "/contacts",
        &session,
        Some(&contact_form("Ann+C", "")),
        None,
    )
    .await;
    let card = app.get("/contacts/7", Some(&root)).await;
    assert!(
        card.body.contains("Ann C") && is_blocked(&card.body),
        "a name change keeps the block: {}",
        card.body
    );
    let bad_flag = app
        .send(
            "POST",
            "/contacts",
            &session,
            Some(&contact_form("Ann+C", "maybe")),
            None,
        )
        .await;
    assert_eq!(bad_flag.status, StatusCode::BAD_REQUEST);
    app.send(
        "POST",
        "/contacts",
        &session,
        Some(&contact_form("Ann+B", "false")),
        None,
    )
    .await;
    assert!(!is_blocked(&app.get("/contacts/7", Some(&root)).await.body));
    // A company with people cannot go; the person can, then the company.
    let refused = app
        .send(
            "POST",
            "/contacts/CO-1/delete",
            &session,
            Some(&format!("csrf={csrf}")),
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("belong to company CO-1"),
        "{}",
        refused.body
    );
    assert_eq!(
        app.send(
            "POST",
            "/contacts/7/delete",
            &session,
            Some(&format!("csrf={csrf}")),
            None
        )
        .await
        .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.send(
            "POST",
            "/contacts/CO-1/delete",
            &session,
            Some(&format!("csrf={csrf}")),
            None
        )
        .await
        .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.get("/contacts/7", Some(&root)).await.status,
        StatusCode::NOT_FOUND
    );

    let saved = app
        .send(
            "POST",
            "/salespeople",
            &session,
            Some(&format!(
                "csrf={csrf}&key=SP9&name=Sue&email=sue%40ourco.example"
            )),
            None,
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert!(
        app.get("/salespeople/SP9", Some(&root))
            .await
            .body
            .contains("sue@ourco.example")
    );
    let taken = app
        .send(
            "POST",
            "/salespeople",
            &session,
            Some(&format!(
                "csrf={csrf}&key=SP8&name=Sid&email=sue%40ourco.example"
            )),
            None,
        )
        .await;
    assert_eq!(
        taken.status,
        StatusCode::BAD_REQUEST,
        "an address on two salespeople"
    );
    assert_eq!(
        app.send(
            "POST",
            "/salespeople/SP9/delete",
            &session,
            Some(&format!("csrf={csrf}")),
            None
        )
        .await
        .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.get("/salespeople/SP9", Some(&root)).await.status,
        StatusCode::NOT_FOUND
    );

    // Users who are not admins change nothing.
    let uma = app.login("uma").await;
    let uma_csrf = app.get("/contacts", Some(&uma)).await.csrf();
    let denied = app
        .send(
            "POST",
            "/contacts",
            &[("mailscribe_session", &uma)],
            Some(&format!("csrf={uma_csrf}&key=9&name=X&kind=person")),
            None,
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn readiness_follows_the_database_and_the_scheduler_pulse() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    let db = TestDatabase::sqlite();
    let store = Store::open(&db.url().parse().unwrap()).await.unwrap();
    let last_tick_ms = Arc::new(AtomicI64::new(Utc::now().timestamp_millis()));
    let pulse = mailscribe_web::SchedulerPulse {
        last_tick_ms: last_tick_ms.clone(),
        max_silence: std::time::Duration::from_secs(15),
    };
    let renderer: mailscribe_web::MetricsRenderer =
        Arc::new(|| "# TYPE up gauge\nup 1\n".to_owned());
    let app = App {
        _db: db,
        store: store.clone(),
        router: router(
            AppState::new(store.clone(), false)
                .with_scheduler_pulse(pulse)
                .with_metrics(renderer),
        ),
    };
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(json(&ready)["ready"], true);
    // The scheduler stopped ticking a minute ago.
    last_tick_ms.store(Utc::now().timestamp_millis() - 60_000, Ordering::Relaxed);
    let stuck = app.get("/readyz", None).await;
    assert_eq!(stuck.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        json(&stuck)["reasons"][0]
            .as_str()
            .unwrap()
            .contains("scheduler has not ticked"),
        "{}",
        stuck.body
    );
    // Without a peer address (no socket: these requests come through no
    // listener) /metrics is refused on the main router.
    assert_eq!(
        app.get("/metrics", None).await.status,
        StatusCode::FORBIDDEN
    );
    let open = mailscribe_web::operations_router(
        AppState::new(store.clone(), false).with_metrics(Arc::new(|| "up 1\n".to_owned())),
    );
    let response = open
        .oneshot(
            Request::builder()
                .uri("/metrics")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A database that is gone is a reason too.
    store.close().await;
    let gone = app.get("/readyz", None).await;
    assert_eq!(gone.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        json(&gone)["reasons"][0]
            .as_str()
            .unwrap()
            .contains("database does not answer"),
        "{}",
        gone.body
    );
}

#[tokio::test]
async fn a_disabled_user_is_locked_out_of_every_read_route_at_once() {
    use mailscribe_store::UserChange;
    let app = App::new().await;
    let entries = app.seed_entries().await;
    app.add_user("root", Role::Admin, None).await;
    app.add_user("sally", Role::Salesperson, Some("SP1")).await;
    let session = app.login("sally").await;
    let (user, _) = app.store.user_by_name("sally").await.unwrap().unwrap();
    app.store
        .create_api_token(&hash_token("sally-token"), user.id, Utc::now(), None)
        .await
        .unwrap();
    let entry = entries[0];
    let pages = [
        "/interactions".to_owned(),
        format!("/interactions/{entry}"),
        "/opportunities".into(),
        "/contacts".into(),
        "/salespeople".into(),
    ];
    let api = [
        "/api/v1/me".to_owned(),
        "/api/v1/interactions".into(),
        format!("/api/v1/interactions/{entry}"),
        "/api/v1/opportunities".into(),
        "/api/v1/contacts".into(),
        "/api/v1/salespeople".into(),
    ];
    assert_eq!(
        app.get("/api/v1/me", Some(&session)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.send("GET", "/api/v1/me", &[], None, Some("sally-token"))
            .await
            .status,
        StatusCode::OK
    );
    app.store
        .change_user("sally", &UserChange::Disable)
        .await
        .unwrap();
    for page in &pages {
        let reply = app.get(page, Some(&session)).await;
        assert_eq!(
            (reply.status, reply.location()),
            (StatusCode::SEE_OTHER, "/login"),
            "{page}"
        );
    }
    for route in &api {
        assert_eq!(
            app.get(route, Some(&session)).await.status,
            StatusCode::UNAUTHORIZED,
            "{route} with the cookie"
        );
        assert_eq!(
            app.send("GET", route, &[], None, Some("sally-token"))
                .await
                .status,
            StatusCode::UNAUTHORIZED,
            "{route} with the token"
        );
    }
    // Enabled again, the old cookie and token stay dead.
    app.store
        .change_user("sally", &UserChange::Enable)
        .await
        .unwrap();
    assert_eq!(
        app.get("/api/v1/me", Some(&session)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.send("GET", "/api/v1/me", &[], None, Some("sally-token"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // A new sign-in works.
    let again = app.login("sally").await;
    assert_eq!(
        app.get("/api/v1/me", Some(&again)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn admins_manage_users_and_everyone_their_own_password() {
    let app = App::new().await;
    app.add_user("root", Role::Admin, None).await;
    app.add_user("uma", Role::User, None).await;
    let root = app.login("root").await;
    let uma = app.login("uma").await;
    let uma_elsewhere = app.login("uma").await;
    // Only admins see the Users page.
    assert_eq!(
        app.get("/admin/users", Some(&uma)).await.status,
        StatusCode::FORBIDDEN
    );
    let page = app.get("/admin/users", Some(&root)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("id=\"user-uma\"") && page.body.contains("href=\"/admin/users\""),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let post = |uri: &'static str, session: String, form: String| {
        let app = &app;
        async move {
            app.send(
                "POST",
                uri,
                &[("mailscribe_session", &session)],
                Some(&form),
                None,
            )
            .await
        }
    };
    // The last admin cannot be disabled; the page says why.
    let refused = post(
        "/admin/users/root/disable",
        root.clone(),
        format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("last active admin"),
        "{}",
        refused.body
    );
    // Without the CSRF token nothing happens.
    assert_eq!(
        post(
            "/admin/users/uma/disable",
            root.clone(),
            "csrf=wrong".into()
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    // Disabling uma ends both of her sessions at once.
    let done = post(
        "/admin/users/uma/disable",
        root.clone(),
        format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/api/v1/me", Some(&uma)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/v1/me", Some(&uma_elsewhere)).await.status,
        StatusCode::UNAUTHORIZED
    );
    post(
        "/admin/users/uma/enable",
        root.clone(),
        format!("csrf={csrf}"),
    )
    .await;
    let role = post(
        "/admin/users/uma/role",
        root.clone(),
        format!("csrf={csrf}&role=salesperson&salesperson="),
    )
    .await;
    assert_eq!(
        role.status,
        StatusCode::BAD_REQUEST,
        "a salesperson needs a code"
    );
    let role = post(
        "/admin/users/uma/role",
        root.clone(),
        format!("csrf={csrf}&role=salesperson&salesperson=SP1"),
    )
    .await;
    assert_eq!(role.status, StatusCode::SEE_OTHER);
    assert!(
        app.get("/admin/users", Some(&root))
            .await
            .body
            .contains("SP1")
    );

    // Her own password: the current one is needed; the change ends her sessions.
    let uma = app.login("uma").await;
    let account = app.get("/account", Some(&uma)).await;
    assert_eq!(account.status, StatusCode::OK);
    let csrf = account.csrf();
    let wrong = post(
        "/account/password",
        uma.clone(),
        format!("csrf={csrf}&current=nope&new=a-new-password-1&repeat=a-new-password-1"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let changed = post(
        "/account/password",
        uma.clone(),
        format!("csrf={csrf}&current=uma-password&new=a-new-password-1&repeat=a-new-password-1"),
    )
    .await;
    assert_eq!(
        (changed.status, changed.location()),
        (StatusCode::SEE_OTHER, "/login")
    );
    assert_eq!(
        app.get("/api/v1/me", Some(&uma)).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Sign out everywhere: every session of root's ends.
    let root_elsewhere = app.login("root").await;
    let csrf = app.get("/account", Some(&root)).await.csrf();
    let out = post(
        "/account/sign-out-everywhere",
        root.clone(),
        format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/api/v1/me", Some(&root_elsewhere)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_entry_names_its_mailbox_and_links_the_run_that_wrote_it() {
    let app = App::new().await;
    let entries = app.seed_entries().await;
    app.add_user("uma", Role::User, None).await;
    app.add_user("sam", Role::Salesperson, Some("SP1")).await;
    let uma = app.login("uma").await;
    let page = app
        .get(&format!("/interactions/{}", entries[0]), Some(&uma))
        .await;
    assert!(
        page.body.contains("through mailbox default")
            && page.body.contains(r#"href="/runs#run-1""#),
        "{}",
        page.body
    );
    // A salesperson, who may not see the runs, reads the number only.
    let sam = app.login("sam").await;
    let own = app
        .store
        .entries_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.salesperson_code == "SP1")
        .unwrap();
    let page = app
        .get(&format!("/interactions/{}", own.entry_no), Some(&sam))
        .await;
    assert!(
        page.body.contains("run 1") && !page.body.contains("/runs#run-1"),
        "{}",
        page.body
    );
    let api = app
        .get(&format!("/api/v1/interactions/{}", entries[0]), Some(&uma))
        .await;
    assert_eq!(json(&api)["run_id"], 1);
}

#[tokio::test]
async fn a_first_run_shows_the_way_until_a_mailbox_logs() {
    use mailscribe_core::{
        Contact, ContactKind, EmailAddress, Enablement, MailboxName, Salesperson,
    };
    let app = App::new().await;
    app.add_user("root", Role::Admin, None).await;
    let root = app.login("root").await;
    let page = app.get("/interactions", Some(&root)).await;
    assert!(page.body.contains("id=\"first-steps\""), "{}", page.body);
    for step in [
        "step-salespeople",
        "step-contacts",
        "step-mailbox",
        "step-enable",
    ] {
        assert!(
            page.body.contains(&format!("id=\"{step}\" class=\"todo\"")),
            "{step}: {}",
            page.body
        );
    }
    assert!(page.body.contains("no mailbox logs mail yet"));
    let address = |a: &str| EmailAddress::parse(a).unwrap();
    app.store
        .import_salespeople(&[Salesperson {
            code: SalespersonCode::parse("SP1").unwrap(),
            name: "S".into(),
            addresses: vec![address("sp1@ourco.example")],
        }])
        .await
        .unwrap();
    app.store
        .import_contacts(&[Contact {
            no: ContactNo::parse("1").unwrap(),
            name: "C".into(),
            kind: ContactKind::Person,
            company_name: None,
            addresses: vec![address("c1@customer.example")],
            privacy_blocked: None,
        }])
        .await
        .unwrap();
    let name = MailboxName::default_name();
    app.store
        .save_mailbox_setup(&name, &crate::setup::mailbox_setup("imap.example.com"))
        .await
        .unwrap();
    let page = app.get("/interactions", Some(&root)).await;
    for step in ["step-salespeople", "step-contacts", "step-mailbox"] {
        assert!(
            page.body.contains(&format!("id=\"{step}\" class=\"done\"")),
            "{step}"
        );
    }
    assert!(page.body.contains("id=\"step-enable\" class=\"todo\""));
    app.store
        .set_enablement(
            &name,
            &Enablement {
                enabled: true,
                accepted_by: Some("root".into()),
                accepted_at: Some(Utc::now()),
            },
        )
        .await
        .unwrap();
    let page = app.get("/interactions", Some(&root)).await;
    assert!(
        !page.body.contains("first-steps") && page.body.contains("No entries yet"),
        "{}",
        page.body
    );
    let filtered = app.get("/interactions?q=nothing", Some(&root)).await;
    assert!(filtered.body.contains("No entries match these filters"));
}

#[tokio::test]
async fn admins_delete_an_entry_or_old_canceled_ones() {
    let app = App::new().await;
    let entries = app.seed_entries().await;
    app.add_user("root", Role::Admin, None).await;
    app.add_user("uma", Role::User, None).await;
    let root = app.login("root").await;
    let uma = app.login("uma").await;
    let entry = entries[0];
    let page = app.get(&format!("/interactions/{entry}"), Some(&uma)).await;
    assert!(
        !page.body.contains("delete-entry"),
        "only admins see the button"
    );
    let csrf = page.csrf();
    let refused = app
        .send(
            "POST",
            &format!("/interactions/{entry}/delete"),
            &[("mailscribe_session", &uma)],
            Some(&format!("csrf={csrf}")),
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let page = app
        .get(&format!("/interactions/{entry}"), Some(&root))
        .await;
    assert!(page.body.contains("id=\"delete-entry\""));
    let csrf = page.csrf();
    let done = app
        .send(
            "POST",
            &format!("/interactions/{entry}/delete"),
            &[("mailscribe_session", &root)],
            Some(&format!("csrf={csrf}")),
            None,
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert!(
        app.get(done.location(), Some(&root))
            .await
            .body
            .contains(&format!("Entry {entry} deleted."))
    );
    assert_eq!(
        app.get(&format!("/interactions/{entry}"), Some(&root))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Canceled entries before a day: two are canceled, all seeded on 2026-03-03.
    for entry in &entries[1..3] {
        app.store.set_entry_canceled(*entry, true).await.unwrap();
    }
    let form = |day: &str| format!("csrf={csrf}&before={day}");
    let kept = app
        .send(
            "POST",
            "/interactions/delete-canceled",
            &[("mailscribe_session", &root)],
            Some(&form("2026-03-03")),
            None,
        )
        .await;
    assert!(
        app.get(kept.location(), Some(&root))
            .await
            .body
            .contains("0 canceled entries from before 2026-03-03 deleted.")
    );
    let gone = app
        .send(
            "POST",
            "/interactions/delete-canceled",
            &[("mailscribe_session", &root)],
            Some(&form("2026-03-04")),
            None,
        )
        .await;
    assert!(
        app.get(gone.location(), Some(&root))
            .await
            .body
            .contains("2 canceled entries from before 2026-03-04 deleted.")
    );
    assert_eq!(
        app.store.entries_after(0, 100).await.unwrap().len(),
        entries.len() - 3
    );
    let bad = app
        .send(
            "POST",
            "/interactions/delete-canceled",
            &[("mailscribe_session", &root)],
            Some(&form("yesterday")),
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_log_filters_by_campaign() {
    let app = App::new().await;
    app.seed_entries().await;
    let campaign_template = InteractionTemplate {
        campaign_no: Some("CP-1".into()),
        interaction_group: Some("OUT".into()),
        ..email_template()
    };
    let copy = logged_copy(50, "campaign@x", "Campaign mail", "SP1", "1", None);
    app.store
        .commit_batch(&[copy], &campaign_template, Utc::now(), None)
        .await
        .unwrap();
    app.add_user("uma", Role::User, None).await;
    let uma = app.login("uma").await;
    let page = json(
        &app.get("/api/v1/interactions?campaign=cp-1", Some(&uma))
            .await,
    );
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(
        (
            items[0]["campaign_no"].as_str(),
            items[0]["interaction_group"].as_str()
        ),
        (Some("CP-1"), Some("OUT"))
    );
    let log = app.get("/interactions?campaign=CP-1", Some(&uma)).await;
    assert!(
        log.body.contains("Campaign mail") && !log.body.contains("Offer number"),
        "{}",
        log.body
    );
}

#[tokio::test]
async fn sign_ins_go_to_the_audit_log_which_admins_read() {
    let app = App::new().await;
    app.add_user("root", Role::Admin, None).await;
    app.add_user("uma", Role::User, None).await;
    let form = app.get("/login", None).await;
    let login_csrf = form.cookie("mailscribe_login_csrf").unwrap();
    let failed = app
        .send(
            "POST",
            "/login",
            &[("mailscribe_login_csrf", &login_csrf)],
            Some(&format!("name=uma&password=wrong&csrf={}", form.csrf())),
            None,
        )
        .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    let root = app.login("root").await;
    let uma = app.login("uma").await;
    assert_eq!(
        app.get("/admin/audit", Some(&uma)).await.status,
        StatusCode::FORBIDDEN
    );
    let page = app.get("/admin/audit", Some(&root)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("sign_in_failed") && page.body.contains("<td>sign_in</td>"),
        "{}",
        page.body
    );
    let failures = app
        .get("/admin/audit?event=sign_in_failed", Some(&root))
        .await;
    assert_eq!(failures.body.matches("<td>sign_in_failed</td>").count(), 1);
    assert!(!failures.body.contains("<td>sign_in</td>"));
    let rows = app
        .store
        .audit_page(Some("sign_in"), None, None, 10)
        .await
        .unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r.event.actor.as_str())
            .collect::<Vec<_>>(),
        ["uma", "root"]
    );
}

#[tokio::test]
async fn every_page_gets_the_security_headers_and_no_inline_script() {
    let app = App::new().await;
    app.add_user("root", Role::Admin, None).await;
    let root = app.login("root").await;
    for uri in [
        "/login",
        "/interactions",
        "/admin/mailboxes",
        "/admin/email-logging/assisted",
        "/contacts",
    ] {
        let reply = app.get(uri, Some(&root)).await;
        let header = |name: &str| {
            reply
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let policy = header("content-security-policy");
        assert!(
            policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"),
            "{uri}: {policy}"
        );
        assert!(
            !policy
                .split(';')
                .any(|d| d.trim().starts_with("script-src") && d.contains("unsafe-inline")),
            "{uri}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{uri}");
        assert_eq!(header("cache-control"), "no-store", "{uri}");
        assert_eq!(header("referrer-policy"), "same-origin", "{uri}");
        assert!(
            !reply.body.contains("<script>"),
            "{uri} has an inline script"
        );
    }
    let script = app.get("/static/mailscribe.js", None).await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.body.contains("beforeunload"));
}
