//! Issue 10, items 6, 8 and 9: sign-in under abuse (the throttle, through
//! the router, with a clock moved by hand), client addresses behind trusted
//! proxies, HSTS, cookie names and flags, bearer-only API writes, and the
//! rule for new passwords.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use mailscribe_core::Role;
use mailscribe_store::Store;
use mailscribe_testkit::TestDatabase;
use mailscribe_web::{AppState, Clock, hash_token, router};

use crate::{App, Reply};

/// A clock moved by hand: the fake at the time boundary.
struct HandClock(Mutex<Instant>);

impl Clock for HandClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
}

impl HandClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

struct Site {
    app: App,
    clock: Arc<HandClock>,
    /// The cookie names' prefix: `__Host-` with Secure cookies.
    prefix: &'static str,
}

async fn site(secure_cookies: bool, trusted_proxies: &[&str]) -> Site {
    let db = TestDatabase::sqlite();
    let store = Store::open(&db.url().parse().unwrap()).await.unwrap();
    let clock = Arc::new(HandClock(Mutex::new(Instant::now())));
    let state = AppState::new(store.clone(), secure_cookies)
        .with_trusted_proxies(
            trusted_proxies
                .iter()
                .map(|cidr| cidr.parse().unwrap())
                .collect(),
        )
        .with_clock(clock.clone());
    let app = App {
        _db: db,
        store,
        router: router(state),
    };
    Site {
        app,
        clock,
        prefix: if secure_cookies { "__Host-" } else { "" },
    }
}

impl Site {
    /// A request from the socket peer `peer`, with extra headers.
    async fn request(
        &self,
        method: &str,
        uri: &str,
        peer: &str,
        headers: &[(&str, String)],
        form: Option<String>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let body = match form {
            Some(form) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(form)
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).unwrap();
        let peer: SocketAddr = SocketAddr::new(peer.parse().unwrap(), 40000);
        request.extensions_mut().insert(ConnectInfo(peer));
        self.app.answer(request).await
    }

    /// One sign-in through the form from `peer`.
    async fn sign_in(
        &self,
        peer: &str,
        name: &str,
        password: &str,
        headers: &[(&str, String)],
    ) -> Reply {
        let form = self.request("GET", "/login", peer, headers, None).await;
        let csrf_cookie = format!("{}mailscribe_login_csrf", self.prefix);
        let login_csrf = form.cookie(&csrf_cookie).expect("a login cookie");
        let mut headers = headers.to_vec();
        headers.push(("cookie", format!("{csrf_cookie}={login_csrf}")));
        let body = format!("name={name}&password={password}&csrf={}", form.csrf());
        self.request("POST", "/login", peer, &headers, Some(body))
            .await
    }
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After")
}

#[tokio::test]
async fn a_pair_is_locked_after_five_failures_but_not_from_another_address() {
    let site = site(false, &[]).await;
    site.app.add_user("uma", Role::User, None).await;
    for _ in 0..5 {
        assert_eq!(
            site.sign_in("192.0.2.1", "uma", "wrong", &[]).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = site.sign_in("192.0.2.1", "uma", "uma-password", &[]).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "locked even with the right password"
    );
    assert_eq!(retry_after(&locked), 60);
    // Uma herself, elsewhere, is not locked out by the guesser.
    assert_eq!(
        site.sign_in("198.51.100.7", "uma", "uma-password", &[])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    // The lock ends after its minute; the next failure locks for two.
    site.clock.advance(Duration::from_secs(61));
    assert_eq!(
        site.sign_in("192.0.2.1", "uma", "wrong", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        retry_after(&site.sign_in("192.0.2.1", "uma", "uma-password", &[]).await),
        120
    );
    site.clock.advance(Duration::from_secs(121));
    assert_eq!(
        site.sign_in("192.0.2.1", "uma", "uma-password", &[])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn an_address_fails_at_most_ten_times_a_minute_ipv6_per_64() {
    let site = site(false, &[]).await;
    site.app.add_user("uma", Role::User, None).await;
    for n in 0..10 {
        let peer = format!("2001:db8:1:2::{n:x}");
        assert_eq!(
            site.sign_in(&peer, &format!("guess{n}"), "x", &[])
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    let refused = site
        .sign_in("2001:db8:1:2:ffff::1", "uma", "uma-password", &[])
        .await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the same /64"
    );
    assert_eq!(retry_after(&refused), 60);
    assert_eq!(
        site.sign_in("2001:db8:1:3::1", "uma", "uma-password", &[])
            .await
            .status,
        StatusCode::SEE_OTHER,
        "another /64"
    );
    site.clock.advance(Duration::from_secs(60));
    assert_eq!(
        site.sign_in("2001:db8:1:2:ffff::1", "uma", "uma-password", &[])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn at_most_twenty_hashes_a_second_with_some_kept_for_known_users() {
    let site = site(false, &[]).await;
    site.app.add_user("uma", Role::User, None).await;
    assert_eq!(
        site.sign_in("192.0.2.1", "uma", "uma-password", &[])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    // The clock stands still: 19 hashes are left this second, 4 of them
    // kept for pairs that signed in before.
    for n in 0..15 {
        let peer = format!("198.18.0.{n}");
        assert_eq!(
            site.sign_in(&peer, &format!("guess{n}"), "x", &[])
                .await
                .status,
            StatusCode::UNAUTHORIZED,
            "{n}"
        );
    }
    let busy = site.sign_in("198.18.1.1", "guess", "x", &[]).await;
    assert_eq!(busy.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&busy), 1);
    assert_eq!(
        site.sign_in("192.0.2.1", "uma", "uma-password", &[])
            .await
            .status,
        StatusCode::SEE_OTHER,
        "uma still gets in"
    );
    site.clock.advance(Duration::from_secs(1));
    assert_eq!(
        site.sign_in("198.18.1.1", "guess", "x", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn long_user_names_are_refused_before_the_throttle() {
    let site = site(false, &[]).await;
    let long = "n".repeat(257);
    for _ in 0..12 {
        assert_eq!(
            site.sign_in("192.0.2.1", &long, "x", &[]).await.status,
            StatusCode::BAD_REQUEST
        );
    }
    site.app.add_user("uma", Role::User, None).await;
    assert_eq!(
        site.sign_in("192.0.2.1", "uma", "uma-password", &[])
            .await
            .status,
        StatusCode::SEE_OTHER,
        "nothing was counted"
    );
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let site = site(false, &["10.0.0.0/8"]).await;
    site.app.add_user("uma", Role::User, None).await;
    // Behind the proxy, each client is throttled under its own address.
    for n in 0..10 {
        let via = [("x-forwarded-for", "203.0.113.5".to_owned())];
        assert_eq!(
            site.sign_in("10.0.0.2", &format!("guess{n}"), "x", &via)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    let same_client = [("x-forwarded-for", "203.0.113.5".to_owned())];
    assert_eq!(
        site.sign_in("10.0.0.2", "uma", "uma-password", &same_client)
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let other_client = [("x-forwarded-for", "203.0.113.6".to_owned())];
    assert_eq!(
        site.sign_in("10.0.0.2", "uma", "uma-password", &other_client)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let audit = site
        .app
        .store
        .audit_page(Some("sign_in_failed"), None, None, 1)
        .await
        .unwrap();
    assert_eq!(
        audit[0].event.client_address.as_deref(),
        Some("203.0.113.5"),
        "the audit log names the client"
    );

    // From anyone else the header is ignored: a new claimed address per
    // guess does not escape the limit. (A second later, so that the hash
    // budget has refilled.)
    site.clock.advance(Duration::from_secs(1));
    for n in 0..10 {
        let forged = [("x-forwarded-for", format!("198.18.0.{n}"))];
        assert_eq!(
            site.sign_in("192.0.2.9", &format!("guess{n}"), "x", &forged)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    let forged = [("x-forwarded-for", "198.18.1.1".to_owned())];
    assert_eq!(
        site.sign_in("192.0.2.9", "uma", "uma-password", &forged)
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn hsts_only_over_tls_or_from_a_trusted_proxy_that_says_so() {
    let site = site(true, &["10.0.0.0/8"]).await;
    let hsts = |reply: &Reply| {
        reply
            .headers
            .get(header::STRICT_TRANSPORT_SECURITY)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let https = [("x-forwarded-proto", "https".to_owned())];
    assert_eq!(
        hsts(&site.request("GET", "/login", "192.0.2.1", &[], None).await),
        None,
        "plain HTTP"
    );
    assert_eq!(
        hsts(
            &site
                .request("GET", "/login", "192.0.2.1", &https, None)
                .await
        ),
        None,
        "an untrusted peer's claim"
    );
    assert_eq!(
        hsts(
            &site
                .request(
                    "GET",
                    "/login",
                    "10.0.0.2",
                    &[("x-forwarded-proto", "http".to_owned())],
                    None
                )
                .await
        ),
        None
    );
    assert_eq!(
        hsts(
            &site
                .request("GET", "/login", "10.0.0.2", &https, None)
                .await
        )
        .as_deref(),
        Some("max-age=63072000")
    );
    assert!(
        hsts(
            &site
                .request(
                    "GET",
                    "https://mailscribe.example/healthz",
                    "192.0.2.1",
                    &[],
                    None
                )
                .await
        )
        .is_some(),
        "direct TLS"
    );
}

#[tokio::test]
async fn cookies_are_secure_and_host_prefixed_unless_insecure_cookies() {
    let secure = site(true, &[]).await;
    secure.app.add_user("uma", Role::User, None).await;
    let set_cookies = |reply: &Reply| -> Vec<String> {
        reply
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let form = secure
        .request("GET", "/login", "127.0.0.1", &[], None)
        .await;
    let login_cookie = &set_cookies(&form)[0];
    assert!(
        login_cookie.starts_with("__Host-mailscribe_login_csrf="),
        "{login_cookie}"
    );
    assert!(
        login_cookie.contains("; Secure")
            && login_cookie.contains("Path=/")
            && !login_cookie.contains("Domain"),
        "{login_cookie}"
    );
    let signed_in = secure
        .sign_in("127.0.0.1", "uma", "uma-password", &[])
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    let cookies = set_cookies(&signed_in);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("__Host-mailscribe_session="))
        .expect("a __Host- session cookie");
    assert!(
        session.contains("; Secure")
            && session.contains("HttpOnly")
            && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("mailscribe_session=;") && c.contains("Max-Age=0")),
        "the plain name is deleted"
    );
    let token = signed_in.cookie("__Host-mailscribe_session").unwrap();
    let with = |name: &str| [("cookie", format!("{name}={token}"))];
    assert_eq!(
        secure
            .request(
                "GET",
                "/api/v1/me",
                "127.0.0.1",
                &with("__Host-mailscribe_session"),
                None
            )
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        secure
            .request(
                "GET",
                "/api/v1/me",
                "127.0.0.1",
                &with("mailscribe_session"),
                None
            )
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "a plain-named session cookie is not read with Secure cookies"
    );

    let insecure = site(false, &[]).await;
    insecure.app.add_user("uma", Role::User, None).await;
    let signed_in = insecure
        .sign_in("192.0.2.1", "uma", "uma-password", &[])
        .await;
    let cookies = set_cookies(&signed_in);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(
        cookies[0].starts_with("mailscribe_session=") && !cookies[0].contains("Secure"),
        "{cookies:?}"
    );
}

#[tokio::test]
async fn api_writes_need_a_bearer_token_whatever_the_authorization_header_holds() {
    let app = App::new().await;
    let entries = app.seed_entries().await;
    app.add_user("uma", Role::User, None).await;
    let session = app.login("uma").await;
    let (user, _) = app.store.user_by_name("uma").await.unwrap().unwrap();
    app.store
        .create_api_token(&hash_token("uma-token"), user.id, Utc::now(), None)
        .await
        .unwrap();
    let uri = format!("/api/v1/interactions/{}/cancel", entries[0]);
    let with_authorization = |authorization: &'static str| {
        let (app, uri, session) = (&app, uri.clone(), session.clone());
        async move {
            let request = Request::builder()
                .method("POST")
                .uri(uri)
                .header(header::COOKIE, format!("mailscribe_session={session}"))
                .header(header::AUTHORIZATION, authorization)
                .body(Body::empty())
                .unwrap();
            app.answer(request).await.status
        }
    };
    for other in [
        "Basic dW1hOnVtYS1wYXNzd29yZA==",
        "bearer",
        "Bearer ",
        "Token uma-token",
        "uma-token",
    ] {
        assert_eq!(
            with_authorization(other).await,
            StatusCode::UNAUTHORIZED,
            "{other}: the session cookie is no fallback, and no bearer credential is a 401"
        );
    }
    assert_eq!(
        with_authorization("Bearer not-a-token").await,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        !app.store.entry(entries[0]).await.unwrap().unwrap().canceled,
        "nothing was written"
    );
    assert_eq!(with_authorization("Bearer uma-token").await, StatusCode::OK);
    // Reads still take the session.
    assert_eq!(
        app.get("/api/v1/me", Some(&session)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn new_passwords_need_twelve_characters_and_not_a_common_one_old_ones_still_work() {
    let app = App::new().await;
    // Set before the rule: nine characters.
    let old = mailscribe_web::hash_password("short-old".into())
        .await
        .unwrap();
    app.store
        .create_user("oscar", &old, Role::User, None, Utc::now())
        .await
        .unwrap();
    let form = app.get("/login", None).await;
    let login_csrf = form.cookie("mailscribe_login_csrf").unwrap();
    let signed_in = app
        .send(
            "POST",
            "/login",
            &[("mailscribe_login_csrf", &login_csrf)],
            Some(&format!(
                "name=oscar&password=short-old&csrf={}",
                form.csrf()
            )),
            None,
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "an existing password keeps working"
    );
    let session = signed_in.cookie("mailscribe_session").unwrap();
    let account = app.get("/account", Some(&session)).await;
    let csrf = account.csrf();
    let change = |new: &'static str| {
        let (app, session, csrf) = (&app, session.clone(), csrf.clone());
        async move {
            let form = format!("csrf={csrf}&current=short-old&new={new}&repeat={new}");
            app.send(
                "POST",
                "/account/password",
                &[("mailscribe_session", &session)],
                Some(&form),
                None,
            )
            .await
        }
    };
    assert!(
        change("eleven-char")
            .await
            .body
            .contains("at least 12 characters")
    );
    assert!(change("Password2026%21").await.body.contains("too common"));
    assert!(change("oscar1234567").await.body.contains("user name"));
    assert_eq!(
        change("kettle-orbit-tulip").await.status,
        StatusCode::SEE_OTHER
    );
}

/// Issue 10, "Tests and evidence": after `user disable`, the user's cookie
/// and token are replayed against every read route of the pages and the API
/// (an admin's, so that the admin pages were really open before).
#[tokio::test]
async fn a_disabled_admin_is_refused_on_every_read_route() {
    use mailscribe_store::UserChange;
    let app = App::new().await;
    let entry = app.seed_entries().await[0];
    app.add_user("root", Role::Admin, None).await;
    app.add_user("ada", Role::Admin, None).await;
    let session = app.login("ada").await;
    let (user, _) = app.store.user_by_name("ada").await.unwrap().unwrap();
    app.store
        .create_api_token(&hash_token("ada-token"), user.id, Utc::now(), None)
        .await
        .unwrap();
    let pages = [
        "/interactions".to_owned(),
        format!("/interactions/{entry}"),
        format!("/interactions/{entry}/message"),
        format!("/interactions/{entry}/message/attachments/0"),
        "/opportunities".into(),
        "/opportunities/OP-1".into(),
        "/contacts".into(),
        "/contacts/1".into(),
        "/salespeople".into(),
        "/salespeople/SP1".into(),
        "/runs".into(),
        "/decisions".into(),
        "/account".into(),
        "/admin/users".into(),
        "/admin/audit".into(),
        "/admin/mailboxes".into(),
        "/admin/mailboxes/default".into(),
        "/admin/mailboxes/default/runs/1".into(),
        "/admin/email-logging".into(),
        "/admin/email-logging/assisted".into(),
        "/admin/mail-server-guide".into(),
    ];
    let api = [
        "/api/v1/me".to_owned(),
        "/api/v1/interactions".into(),
        format!("/api/v1/interactions/{entry}"),
        "/api/v1/opportunities".into(),
        "/api/v1/opportunities/OP-1".into(),
        "/api/v1/contacts".into(),
        "/api/v1/contacts/1".into(),
        "/api/v1/salespeople".into(),
        "/api/v1/runs".into(),
        "/api/v1/decisions".into(),
        "/api/v1/mailboxes/default/runs/1".into(),
    ];
    let refused_page =
        |reply: &Reply| reply.status == StatusCode::SEE_OTHER && reply.location() == "/login";
    for page in &pages {
        let reply = app.get(page, Some(&session)).await;
        assert!(
            !refused_page(&reply) && reply.status != StatusCode::UNAUTHORIZED,
            "{page} was open before: {}",
            reply.status
        );
    }
    for route in &api {
        assert_ne!(
            app.get(route, Some(&session)).await.status,
            StatusCode::UNAUTHORIZED,
            "{route} with the cookie, before"
        );
        assert_ne!(
            app.send("GET", route, &[], None, Some("ada-token"))
                .await
                .status,
            StatusCode::UNAUTHORIZED,
            "{route}, before"
        );
    }
    app.store
        .change_user("ada", &UserChange::Disable)
        .await
        .unwrap();
    for page in &pages {
        let reply = app.get(page, Some(&session)).await;
        assert!(
            refused_page(&reply),
            "{page}: {} {}",
            reply.status,
            reply.location()
        );
    }
    for route in &api {
        assert_eq!(
            app.get(route, Some(&session)).await.status,
            StatusCode::UNAUTHORIZED,
            "{route} with the cookie"
        );
        assert_eq!(
            app.send("GET", route, &[], None, Some("ada-token"))
                .await
                .status,
            StatusCode::UNAUTHORIZED,
            "{route} with the token"
        );
    }
}
