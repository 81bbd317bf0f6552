//! The setup in the browser, against the real `mailscribe serve`, a real
//! Dovecot (with an OAuth2 passdb whose token and introspection endpoints
//! are the testkit's local stand-in for Entra ID) and headless Chromium:
//! from the first-admin link to logged mail through the assisted setup,
//! with a wrong password on the way; disable and clear; then the assisted
//! setup again with OAuth2, for a mailbox with another name.

use std::io::BufRead;
use std::process::{Child, Stdio};
use std::time::Duration;

use mailscribe_testkit::{Browser, Dovecot, DovecotOptions, OAuthServer, QUEUE, STORAGE};

use crate::harness::{Backend, Env, entry_keys, numbered_message};

const ADMIN_PASSWORD: &str = "admin-password-1";
const CLIENT_SECRET: &str = "web-Client-Secret-77";

struct Serve {
    child: Child,
    base: String,
    setup_link: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(env: &Env) -> Serve {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(env.dir.path().join("serve.log")).expect("serve log");
    let mut child = env
        .command()
        .env("RUST_LOG", "debug")
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start mailscribe serve");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("/setup?token=") {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "serve printed no first-admin link"
        );
    }
    // Keep draining stdout so that serve never blocks on a full pipe.
    std::thread::spawn(move || for _ in stdout.lines() {});
    let base = format!("http://127.0.0.1:{port}");
    let setup_link = format!(
        "{base}{}",
        line[line.find("/setup?token=").unwrap()..].trim()
    );
    Serve {
        child,
        base,
        setup_link,
    }
}

async fn shot(browser: &Browser, name: &str) {
    if let Ok(dir) = std::env::var("MAILSCRIBE_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        browser
            .screenshot(&std::path::Path::new(&dir).join(format!("{name}.png")))
            .await;
    }
}

async fn next(browser: &Browser, to_step: u8) {
    browser.click("#next").await;
    browser
        .wait_for_url(&format!("step {to_step}"), |url| {
            url.ends_with(&format!("step={to_step}"))
        })
        .await;
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_goes_from_nothing_to_logged_mail_with_the_web_assisted_setup() {
    let oauth = OAuthServer::start(&[("web-client", CLIENT_SECRET, "queue")]);
    let dovecot = Dovecot::start_with(DovecotOptions {
        oauth2_introspection_url: Some(oauth.introspection_url()),
        ..Default::default()
    });
    let env = Env::with_dovecot(Backend::Sqlite, dovecot).await;
    env.import_directory();
    let server = serve(&env);
    let browser = Browser::start().await;

    // The first admin, from the one-time link.
    browser.goto(&server.setup_link).await;
    browser.type_into("input[name=name]", "admin").await;
    browser
        .type_into("input[name=password]", ADMIN_PASSWORD)
        .await;
    browser
        .type_into("input[name=password_again]", ADMIN_PASSWORD)
        .await;
    browser.click("button[type=submit]").await;
    browser
        .wait_for_url("the signed-in app", |url| !url.contains("/setup"))
        .await;

    browser
        .goto(&format!("{}/admin/email-logging", server.base))
        .await;
    assert!(
        browser
            .text("#status")
            .await
            .contains("Nothing is set up yet")
    );
    browser.click("#assisted-link").await;
    browser
        .wait_for_url("step 1", |url| {
            url.contains("/admin/email-logging/assisted")
        })
        .await;
    assert!(browser.text("#step-title").await.contains("Step 1 of 7"));
    assert_eq!(
        browser.count("#guide-link").await,
        1,
        "the introduction links the mail-server guide"
    );
    let suggested = browser
        .execute("return document.getElementById('name').value;")
        .await;
    assert_eq!(
        suggested.as_str(),
        Some("default"),
        "the first mailbox is suggested as default"
    );
    shot(&browser, "assisted-setup-intro").await;
    next(&browser, 2).await;

    browser.type_into("#host", "127.0.0.1").await;
    browser.choose("#security", "tls").await;
    browser
        .type_into("#port", &env.dovecot.imaps_port.to_string())
        .await;
    browser
        .type_into("#ca_file", &env.dovecot.ca_file().display().to_string())
        .await;
    next(&browser, 3).await;

    // The key file cannot be named as the password's source: it would send
    // the key to whatever server is configured.
    browser.choose("#auth", "basic").await;
    browser.type_into("#username", env.dovecot.user()).await;
    browser
        .type_into(
            "#password_source",
            &format!("file:{}", env.dir.path().join("test.key").display()),
        )
        .await;
    browser.click("#next").await;
    assert!(
        browser
            .text("#problem")
            .await
            .contains("Mailscribe's secret key")
    );
    browser.type_into("#password_source", "").await;

    // A wrong password first: the connection test says what to fix.
    browser.choose("#auth", "basic").await;
    browser.type_into("#username", env.dovecot.user()).await;
    browser.type_into("#password", "not-the-password").await;
    next(&browser, 4).await;
    assert!(
        browser
            .text("#folders-problem")
            .await
            .contains("cannot list the folders")
    );
    browser.type_into("#queue", QUEUE).await;
    browser.type_into("#storage", STORAGE).await;
    next(&browser, 5).await;
    let failed = browser.text("tr.check-FAIL").await;
    assert!(
        failed.contains("login") && failed.contains("refused the user name or password"),
        "{failed}"
    );
    assert_eq!(
        browser.count("#next").await,
        0,
        "no way on while a check fails"
    );
    assert!(
        !env.run(&["mailbox", "show"]).status.success(),
        "nothing is saved before the last step"
    );

    browser
        .goto(&format!(
            "{}/admin/email-logging/assisted?step=3",
            server.base
        ))
        .await;
    assert!(
        !browser.source().await.contains("not-the-password"),
        "a typed secret is never sent back"
    );
    browser.type_into("#password", env.dovecot.password()).await;
    next(&browser, 4).await;
    // The pickers now list the server's folders, namespaces included.
    let listed = browser.text("#folder-names").await;
    assert!(
        listed.contains(QUEUE) && listed.contains(STORAGE),
        "{listed}"
    );
    shot(&browser, "assisted-setup-folders").await;
    next(&browser, 5).await;
    assert_eq!(
        browser.count("tr.check-FAIL").await,
        0,
        "{}",
        browser.text("#checks").await
    );
    assert!(browser.text("#checks").await.contains("storage_writable"));
    shot(&browser, "assisted-setup-check").await;
    next(&browser, 6).await;

    browser.type_into("#cost", "2.50").await;
    browser.type_into("#minutes", "5").await;
    browser.type_into("input[name=interval]", "5").await;
    next(&browser, 7).await;
    assert!(
        browser
            .text("#statement")
            .await
            .contains("stay on the mail server"),
        "reference mode's statement"
    );
    // Not accepted: nothing changes.
    browser.click("#next").await;
    assert!(
        browser
            .text("#problem")
            .await
            .contains("accept the data statement")
    );
    assert!(!env.run(&["mailbox", "show"]).status.success());
    shot(&browser, "assisted-setup-statement").await;
    browser.click("#accept").await;
    browser.click("#next").await;
    browser
        .wait_for_url("the setup page", |url| {
            url.contains("/admin/mailboxes/default?notice=")
        })
        .await;
    let status = browser.text("#status").await;
    assert!(
        status.contains("enabled") && status.contains("accepted by admin"),
        "{status}"
    );
    assert_eq!(
        browser.count("fieldset[disabled]").await,
        3,
        "the connection is locked while enabled"
    );
    shot(&browser, "email-logging-setup").await;

    // Logged mail, by the scheduler of the same process.
    env.deliver(&numbered_message(2));
    mailscribe_testkit::wait_until("serve to log the message", Duration::from_secs(60), || {
        entry_keys(&env).len() == 1
    });
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["interactions", "export", "--format", "json"])).unwrap();
    assert_eq!(rows[0]["cost"].as_str(), Some("2.50"));
    let shown = env.ok(&["mailbox", "show"]);
    assert!(
        shown.contains("enabled = true") && shown.contains("accepted by admin"),
        "{shown}"
    );

    // The stored password is only a mask on the page, and sealed in the file.
    let page = browser.source().await;
    assert!(!page.contains(env.dovecot.password()) && page.contains("stored encrypted"));
    for entry in std::fs::read_dir(env.db.sqlite_dir().unwrap())
        .unwrap()
        .filter_map(Result::ok)
    {
        let bytes = std::fs::read(entry.path()).unwrap();
        assert!(
            !contains(&bytes, env.dovecot.password()),
            "{:?} holds the password in plain text",
            entry.path()
        );
    }

    // Check from the page gives the CLI's lines.
    browser.click("#check").await;
    assert!(
        browser
            .text("#checks")
            .await
            .contains("PASS login logged in as")
    );

    // The mailbox list shows it.
    browser.click("#all-mailboxes").await;
    browser
        .wait_for_url("the mailbox list", |url| url.ends_with("/admin/mailboxes"))
        .await;
    let listed = browser.text("#mailbox-default").await;
    assert!(
        listed.contains("enabled") && listed.contains(QUEUE),
        "{listed}"
    );
    shot(&browser, "mailboxes").await;
    browser.click("#mailbox-default a").await;
    browser
        .wait_for_url("the mailbox again", |url| {
            url.ends_with("/admin/mailboxes/default")
        })
        .await;

    // Disable, then clear: the secrets go with the setup.
    browser.click("#disable").await;
    browser
        .wait_for_url("disabled", |url| {
            url.contains("notice=Logging%20is%20disabled")
        })
        .await;
    assert!(browser.text("#status").await.contains("disabled"));
    browser.click("#clear").await;
    browser
        .wait_for_url("cleared", |url| url.contains("notice=Setup%20cleared"))
        .await;
    assert!(
        !env.run(&["mailbox", "show"]).status.success(),
        "the setup is gone"
    );

    // Again with OAuth2 against the token endpoint, named this time.
    browser
        .goto(&format!("{}/admin/email-logging/assisted", server.base))
        .await;
    browser.type_into("#name", "exchange").await;
    next(&browser, 2).await;
    browser.type_into("#host", "127.0.0.1").await;
    browser
        .type_into("#port", &env.dovecot.imaps_port.to_string())
        .await;
    browser
        .type_into("#ca_file", &env.dovecot.ca_file().display().to_string())
        .await;
    next(&browser, 3).await;
    assert_eq!(
        browser.size("#tenant").await,
        (0.0, 0.0),
        "the OAuth2 fields hide while basic is chosen"
    );
    browser.choose("#auth", "oauth2").await;
    assert_eq!(
        browser.size("#password").await,
        (0.0, 0.0),
        "and the password hides for OAuth2"
    );
    browser.type_into("#username", env.dovecot.user()).await;
    browser.type_into("#token_url", &oauth.token_url()).await;
    browser.type_into("#client_id", "web-client").await;
    browser.type_into("#client_secret", CLIENT_SECRET).await;
    next(&browser, 4).await;
    browser.type_into("#queue", QUEUE).await;
    browser.type_into("#storage", STORAGE).await;
    next(&browser, 5).await;
    assert_eq!(
        browser.count("tr.check-FAIL").await,
        0,
        "{}",
        browser.text("#checks").await
    );
    assert!(
        browser
            .text("#checks")
            .await
            .contains("token obtained from")
    );
    next(&browser, 6).await;
    next(&browser, 7).await;
    browser.click("#accept").await;
    browser.click("#next").await;
    browser
        .wait_for_url("the setup page", |url| {
            url.contains("/admin/mailboxes/exchange?notice=")
        })
        .await;
    assert!(
        env.ok(&["mailbox", "show", "--mailbox", "exchange"])
            .contains("enabled = true")
    );
    env.deliver(&numbered_message(4));
    mailscribe_testkit::wait_until("serve to log over OAuth2", Duration::from_secs(60), || {
        entry_keys(&env).len() == 2
    });
    assert!(oauth.token_requests() >= 1);
    for entry in std::fs::read_dir(env.db.sqlite_dir().unwrap())
        .unwrap()
        .filter_map(Result::ok)
    {
        let bytes = std::fs::read(entry.path()).unwrap();
        assert!(
            !contains(&bytes, CLIENT_SECRET),
            "{:?} holds the client secret in plain text",
            entry.path()
        );
    }
    // Nor in serve's debug log, which saw both setups and both runs.
    let log = std::fs::read(env.dir.path().join("serve.log")).unwrap();
    assert!(
        contains(&log, "run completed"),
        "the log is the one of the runs"
    );
    for secret in [env.dovecot.password(), CLIENT_SECRET, ADMIN_PASSWORD] {
        assert!(!contains(&log, secret), "serve's log holds a secret");
    }
}
