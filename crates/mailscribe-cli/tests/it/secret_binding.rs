//! Issue 10, item 4: a stored secret is only ever sent to the target it
//! was stored with. A real `mailscribe serve` (with its real setup
//! backend, which reads the secrets and connects) is driven over HTTP by
//! an admin who changes the host, or the token URL, while leaving the
//! secret fields empty, then presses check, lists the folders and steps
//! through the assisted setup. A capturing IMAP server (plaintext, on
//! loopback, so a secret sent would arrive) and a capturing token endpoint
//! stand at the changed targets: neither may receive a secret. At the end
//! the secrets are typed in again, and the captures do receive them,
//! which shows they would have noticed.

use std::net::Ipv4Addr;
use std::time::Duration;

use mailscribe_testkit::{Capture, OAuthServer, QUEUE, STORAGE};

use crate::harness::{Backend, Env};

const ADMIN_PASSWORD: &str = "admin-password-long-1";
const CLIENT_SECRET: &str = "oauthKeptSecret42";
const KEPT_PASSWORD_REFUSED: &str = "give the password or client secret again";

/// A signed-in browser without a browser: cookies kept by hand.
struct Web {
    base: String,
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: u16,
    body: String,
}

impl Page {
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a csrf field") + marker.len();
        self.body[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Web {
    fn new(port: u16) -> Web {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Web {
            base: format!("http://127.0.0.1:{port}"),
            http,
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, response: reqwest::Response) -> Page {
        for set in response.headers().get_all("set-cookie") {
            let text = set.to_str().unwrap_or_default();
            let Some((name, rest)) = text.split_once('=') else {
                continue;
            };
            let value = rest.split(';').next().unwrap_or_default().to_owned();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() && !text.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value));
            }
        }
        let status = response.status().as_u16();
        Page {
            status,
            body: response.text().await.unwrap_or_default(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_secret_never_reaches_a_changed_host_or_token_url() {
    let env = Env::new(Backend::Sqlite).await;
    let imap_port = env.dovecot.imap_port;
    let port_text = imap_port.to_string();
    // The changed host: another loopback address, the same port.
    let imap_capture = Capture::imap(Ipv4Addr::new(127, 0, 0, 2), imap_port);
    let token_capture = Capture::http();
    let oauth = OAuthServer::start(&[("web-client", CLIENT_SECRET, "queue")]);
    let ca_file = env
        .dovecot
        .ca_file()
        .canonicalize()
        .unwrap()
        .display()
        .to_string();

    // Stored from the CLI: `default` (basic, sealed password) on Dovecot's
    // plaintext port, `oa` (OAuth2, sealed client secret) on the test's
    // token endpoint.
    env.configure(&["--security", "none", "--port", &port_text]);
    let output = env
        .command()
        .env("CS", CLIENT_SECRET)
        .args([
            "mailbox",
            "configure",
            "--mailbox",
            "oa",
            "--host",
            "127.0.0.1",
            "--port",
            &port_text,
        ])
        .args([
            "--security",
            "none",
            "--user",
            "queue",
            "--auth",
            "oauth2",
            "--token-url",
            &oauth.token_url(),
        ])
        .args([
            "--client-id",
            "web-client",
            "--client-secret-env",
            "CS",
            "--queue",
            QUEUE,
            "--storage",
            STORAGE,
        ])
        .args(["--ca-file", &ca_file])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = env
        .command()
        .env("PW", ADMIN_PASSWORD)
        .args([
            "user",
            "add",
            "root",
            "--role",
            "admin",
            "--password-env",
            "PW",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let serve = crate::harness::serve(env.command(), Duration::from_secs(60));
    let port = serve.port;

    let mut web = Web::new(port);
    let csrf = web.get("/login").await.csrf();
    let signed_in = web
        .post(
            "/login",
            &[
                ("name", "root"),
                ("password", ADMIN_PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let csrf = web.get("/admin/mailboxes/default").await.csrf();

    let server = |host: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("host", host.to_owned()),
            ("port", port_text.clone()),
            ("security", "none".to_owned()),
            ("trust", "bundled".to_owned()),
            ("ca_file", ca_file.clone()),
            ("queue", QUEUE.to_owned()),
            ("storage", STORAGE.to_owned()),
        ]
    };
    let form = |mut fields: Vec<(&'static str, String)>,
                more: &[(&'static str, &str)]|
     -> Vec<(&'static str, String)> {
        fields.push(("csrf", csrf.clone()));
        fields.extend(more.iter().map(|(k, v)| (*k, (*v).to_owned())));
        fields
    };
    let pairs = |fields: &[(&'static str, String)]| fields.to_vec();

    // The setup page: the host changed, the password left empty.
    let moved = form(
        server("127.0.0.2"),
        &[("auth", "basic"), ("username", "queue"), ("password", "")],
    );
    let page = post_owned(&mut web, "/admin/mailboxes/default", &pairs(&moved)).await;
    assert!(
        page.body.contains(KEPT_PASSWORD_REFUSED),
        "the kept password is not reused: {}",
        page.body
    );
    // A source is judged by the allow-list (none configured here).
    let by_env = form(
        server("127.0.0.2"),
        &[
            ("auth", "basic"),
            ("username", "queue"),
            ("password_source", "env:IMAP_PASSWORD"),
        ],
    );
    let page = post_owned(&mut web, "/admin/mailboxes/default", &pairs(&by_env)).await;
    assert!(page.body.contains("MAILSCRIBE_SECRET_ENV"), "{}", page.body);
    // The user changed.
    let other_user = form(
        server("127.0.0.1"),
        &[("auth", "basic"), ("username", "test"), ("password", "")],
    );
    let page = post_owned(&mut web, "/admin/mailboxes/default", &pairs(&other_user)).await;
    assert!(page.body.contains(KEPT_PASSWORD_REFUSED), "{}", page.body);
    web.post("/admin/mailboxes/default/check", &[("csrf", &csrf)])
        .await;
    web.get("/admin/mailboxes/default?folders=1").await;

    // The token URL changed, the client secret left empty.
    let token_moved = form(
        server("127.0.0.1"),
        &[
            ("auth", "oauth2"),
            ("username", "queue"),
            ("token_url", &token_capture.token_url()),
            ("client_id", ""),
            ("client_secret", ""),
        ],
    );
    let page = post_owned(&mut web, "/admin/mailboxes/oa", &pairs(&token_moved)).await;
    assert!(page.body.contains(KEPT_PASSWORD_REFUSED), "{}", page.body);
    web.post("/admin/mailboxes/oa/check", &[("csrf", &csrf)])
        .await;
    web.get("/admin/mailboxes/oa?folders=1").await;

    // The assisted setup: a password given for Dovecot, then the host
    // changed; folders, check and finish run without it.
    web.get("/admin/email-logging/assisted").await;
    let step = |n: &'static str, fields: Vec<(&'static str, String)>| {
        let mut fields = fields;
        fields.push(("step", n.to_owned()));
        fields.push(("csrf", csrf.clone()));
        fields
    };
    let page = post_owned(
        &mut web,
        "/admin/email-logging/assisted",
        &step("1", vec![("name", "fresh".into())]),
    )
    .await;
    assert_eq!(page.status, 303, "{}", page.body);
    post_owned(
        &mut web,
        "/admin/email-logging/assisted",
        &step("2", server("127.0.0.1")),
    )
    .await;
    let login = vec![
        ("auth", "basic".to_owned()),
        ("username", "queue".to_owned()),
        ("password", env.dovecot.password().to_owned()),
    ];
    let page = post_owned(&mut web, "/admin/email-logging/assisted", &step("3", login)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    post_owned(
        &mut web,
        "/admin/email-logging/assisted",
        &step("2", server("127.0.0.2")),
    )
    .await;
    web.get("/admin/email-logging/assisted?step=4").await;
    web.get("/admin/email-logging/assisted?step=5").await;
    let empty = vec![
        ("auth", "basic".to_owned()),
        ("username", "queue".to_owned()),
        ("password", String::new()),
    ];
    let page = post_owned(&mut web, "/admin/email-logging/assisted", &step("3", empty)).await;
    assert!(
        page.body.contains("needs a password"),
        "the discarded password is asked for again: {}",
        page.body
    );
    post_owned(
        &mut web,
        "/admin/email-logging/assisted",
        &step("7", vec![("accept", "on".into())]),
    )
    .await;

    // The assisted setup with OAuth2: the client secret given for the
    // test's token endpoint, then the token URL changed.
    post_owned(
        &mut web,
        "/admin/email-logging/assisted",
        &step("2", server("127.0.0.1")),
    )
    .await;
    let oauth_login = |url: String, secret: &str| {
        vec![
            ("auth", "oauth2".to_owned()),
            ("username", "queue".to_owned()),
            ("token_url", url),
            ("client_id", "web-client".to_owned()),
            ("client_secret", secret.to_owned()),
        ]
    };
    let page = post_owned(
        &mut web,
        "/admin/email-logging/assisted",
        &step("3", oauth_login(oauth.token_url(), CLIENT_SECRET)),
    )
    .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = post_owned(
        &mut web,
        "/admin/email-logging/assisted",
        &step("3", oauth_login(token_capture.token_url(), "")),
    )
    .await;
    assert!(page.body.contains(KEPT_PASSWORD_REFUSED), "{}", page.body);
    web.get("/admin/email-logging/assisted?step=4").await;
    web.get("/admin/email-logging/assisted?step=5").await;
    post_owned(
        &mut web,
        "/admin/email-logging/assisted",
        &step("7", vec![("accept", "on".into())]),
    )
    .await;

    assert!(
        !imap_capture.saw(env.dovecot.password()),
        "the IMAP capture got the password: {}",
        imap_capture.received()
    );
    assert!(
        !token_capture.saw(CLIENT_SECRET),
        "the token capture got the client secret: {}",
        token_capture.received()
    );
    assert!(!token_capture.saw("web-client"), "nor the client id");

    // Given again, the secrets do go there: the captures would have seen them.
    let retyped = form(
        server("127.0.0.2"),
        &[
            ("auth", "basic"),
            ("username", "queue"),
            ("password", env.dovecot.password()),
        ],
    );
    let page = post_owned(&mut web, "/admin/mailboxes/default", &pairs(&retyped)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    web.post("/admin/mailboxes/default/check", &[("csrf", &csrf)])
        .await;
    assert!(
        imap_capture.saw(env.dovecot.password()),
        "the capture sees a password that is sent: {}",
        imap_capture.received()
    );
    let retyped = form(
        server("127.0.0.1"),
        &[
            ("auth", "oauth2"),
            ("username", "queue"),
            ("token_url", &token_capture.token_url()),
            ("client_id", "web-client"),
            ("client_secret", CLIENT_SECRET),
        ],
    );
    let page = post_owned(&mut web, "/admin/mailboxes/oa", &pairs(&retyped)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    web.post("/admin/mailboxes/oa/check", &[("csrf", &csrf)])
        .await;
    assert!(
        token_capture.saw(CLIENT_SECRET),
        "the capture sees a client secret that is sent: {}",
        token_capture.received()
    );

    // The audit log names what was discarded, never a value.
    let audit = env.ok(&["audit", "export", "--format", "csv"]);
    assert!(
        audit.contains("kept_secret_discarded") && audit.contains("fields: host"),
        "{audit}"
    );
    assert!(!audit.contains(env.dovecot.password()) && !audit.contains(CLIENT_SECRET));

    drop(serve);
}

async fn post_owned(web: &mut Web, path: &str, fields: &[(&'static str, String)]) -> Page {
    let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    web.post(path, &borrowed).await
}
