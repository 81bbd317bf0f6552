//! Single sign-on from the CLI (`sso configure|show|disable`, the setting
//! `local_passwords`, the key rotation of the client secret) on SQLite and
//! PostgreSQL, and one sign-in end to end: headless Chromium, the real
//! `mailscribe serve`, and the testkit's local OpenID Connect provider
//! standing in for Entra ID (which cannot be reached from here).

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use mailscribe_testkit::{Browser, OidcProvider, OidcUser, TestDatabase, wait_until};

const CLIENT_ID: &str = "cli-client";
const CLIENT_SECRET: &str = "cli-Client-Secret-42";

struct Install {
    dir: tempfile::TempDir,
    db: TestDatabase,
}

impl Install {
    async fn new(postgres: bool) -> Install {
        let db = if postgres {
            TestDatabase::postgres().await
        } else {
            TestDatabase::sqlite()
        };
        Install {
            dir: tempfile::tempdir().unwrap(),
            db,
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mailscribe"));
        command
            .current_dir(self.dir.path())
            .env("MAILSCRIBE_DB", self.db.url())
            .env("MAILSCRIBE_KEY_FILE", self.dir.path().join("test.key"))
            .env("SSO_SECRET", CLIENT_SECRET)
            .env("PW", "a-long-password-1")
            .env_remove("MAILSCRIBE_SECRET_KEY")
            .env_remove("RUST_LOG");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "mailscribe {args:?}: {:?}\n{}\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

async fn configure_show_disable(postgres: bool) {
    let install = Install::new(postgres).await;
    // Usage errors: no secret, a plain-http remote issuer, values without a claim.
    let base = [
        "sso",
        "configure",
        "--issuer",
        "https://login.microsoftonline.com/tenant-id/v2.0",
        "--client-id",
        CLIENT_ID,
    ];
    assert_eq!(install.run(&base).status.code(), Some(2));
    let insecure = [
        "sso",
        "configure",
        "--issuer",
        "http://idp.example",
        "--client-id",
        "x",
        "--client-secret-env",
        "SSO_SECRET",
    ];
    assert_eq!(install.run(&insecure).status.code(), Some(2));
    let mut values_alone = base.to_vec();
    values_alone.extend(["--client-secret-env", "SSO_SECRET", "--admin-value", "A"]);
    assert_eq!(install.run(&values_alone).status.code(), Some(2));
    assert_eq!(
        install.run(&["sso", "show"]).status.code(),
        Some(3),
        "not configured"
    );

    let mut full = base.to_vec();
    full.extend([
        "--client-secret-env",
        "SSO_SECRET",
        "--role-claim",
        "roles",
        "--admin-value",
        "Mailscribe.Admin",
        "--user-value",
        "Mailscribe.User",
        "--salesperson-claim",
        "salesperson_code",
    ]);
    install.ok(&full);
    let shown = install.ok(&["sso", "show"]);
    assert!(
        shown.contains("issuer = https://login.microsoftonline.com/tenant-id/v2.0"),
        "{shown}"
    );
    assert!(
        shown.contains("client_secret = ******** (stored encrypted)"),
        "{shown}"
    );
    assert!(shown.contains("name_claim = preferred_username"), "{shown}");
    assert!(
        shown.contains("role_claim = roles")
            && shown.contains("salesperson_claim = salesperson_code"),
        "{shown}"
    );
    assert!(!shown.contains(CLIENT_SECRET));
    // The key rotation reseals the client secret too.
    let rotated = install.ok(&["secrets", "rotate-key"]);
    assert!(rotated.starts_with("1 stored secrets"), "{rotated}");

    // local_passwords: a setting the CLI can always turn back on.
    install.ok(&["settings", "set", "local_passwords", "off"]);
    assert!(
        install
            .ok(&["settings", "show"])
            .contains("local_passwords = off")
    );
    assert_eq!(
        install
            .run(&["settings", "set", "local_passwords", "maybe"])
            .status
            .code(),
        Some(2)
    );
    install.ok(&["settings", "set", "local_passwords", "on"]);
    assert!(
        install
            .ok(&["settings", "show"])
            .contains("local_passwords = on")
    );

    assert!(
        install
            .ok(&["sso", "disable"])
            .contains("single sign-on is off")
    );
    assert_eq!(install.run(&["sso", "show"]).status.code(), Some(3));
    let audit = install.ok(&["audit", "export", "--format", "csv"]);
    assert!(
        audit.contains("sso_configured") && audit.contains("sso_disabled"),
        "{audit}"
    );
    assert!(!audit.contains(CLIENT_SECRET));
}

#[tokio::test]
async fn sso_is_configured_shown_and_disabled_on_sqlite() {
    configure_show_disable(false).await;
}

#[tokio::test]
async fn sso_is_configured_shown_and_disabled_on_postgres() {
    configure_show_disable(true).await;
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_signs_in_with_the_provider_in_chromium_while_passwords_are_off() {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET);
    let install = Install::new(false).await;
    install.ok(&["salespeople", "import", &{
        let path = install.dir.path().join("sp.csv");
        std::fs::write(
            &path,
            "code,name,email\nSP1,Sally Seller,sally@ourco.example\n",
        )
        .unwrap();
        path.display().to_string()
    }]);
    install.ok(&[
        "user",
        "add",
        "admin",
        "--role",
        "admin",
        "--password-env",
        "PW",
    ]);
    install.ok(&[
        "sso",
        "configure",
        "--issuer",
        &provider.issuer(),
        "--client-id",
        CLIENT_ID,
        "--client-secret-env",
        "SSO_SECRET",
        "--role-claim",
        "roles",
        "--admin-value",
        "Mailscribe.Admin",
        "--user-value",
        "Mailscribe.User",
        "--salesperson-claim",
        "salesperson_code",
    ]);
    install.ok(&["settings", "set", "local_passwords", "off"]);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(install.dir.path().join("serve.log")).unwrap();
    // The secret is sealed in the database: serve does not need the variable.
    let _serve = Serve(
        install
            .command()
            .env_remove("SSO_SECRET")
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_until("serve to listen", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let base = format!("http://127.0.0.1:{port}");

    // A salesperson new to Mailscribe: the account comes from the claims.
    provider.sign_in_as(
        OidcUser::new("sub-sally-0001", "sally", &[]).with_claim("salesperson_code", "SP1".into()),
    );
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/login")).await;
    assert_eq!(
        browser.count("input[type=password]").await,
        0,
        "password sign-in is off"
    );
    assert!(
        browser
            .text("#sso-sign-in")
            .await
            .contains("Sign in with 127.0.0.1")
    );
    browser.click("#sso-sign-in").await;
    browser
        .wait_for_url("the interaction log", |url| url.ends_with("/interactions"))
        .await;
    assert!(
        browser.text("header").await.contains("sally (salesperson)"),
        "{}",
        browser.source().await
    );
    assert_eq!(provider.token_requests(), 1);

    let users = install.ok(&["user", "list"]);
    assert!(
        users
            .lines()
            .any(|l| l.starts_with("sally\tsalesperson\tSP1\tactive\t2")),
        "{users}"
    );
    let audit = install.ok(&["audit", "export", "--format", "csv"]);
    assert!(
        audit
            .lines()
            .any(|l| l.contains(",sally,") && l.contains("sso_sign_in")),
        "{audit}"
    );
    assert!(!audit.contains("sally@ourco.example"));
}
