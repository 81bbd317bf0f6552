//! The JSON API against its published contract, checked by a client nobody
//! here wrote: Schemathesis reads `/api/v1/openapi.json` of a real `serve`
//! holding a few hundred entries and sends what the document allows (and
//! what it forbids), as a salesperson and as an admin, and every check it
//! has must pass (issue 10, item 10).
//!
//! `scripts/test.sh` installs Schemathesis into a virtualenv and names its
//! `st` in `MAILSCRIBE_SCHEMATHESIS`; without it this test fails and says so.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use mailscribe_core::{
    ContactNo, ContactRef, Direction, InteractionTemplate, PlannedEntry, Reason, SalespersonCode,
};
use mailscribe_store::DecidedCopy;
use mailscribe_testkit::TestDatabase;

/// The number of entries the server holds while it is tested.
const N_ENTRIES: u32 = 300;

/// Test cases per operation and phase: enough to reach every schema rule,
/// few enough for two runs on a slow two-core machine in about a minute.
/// `MAILSCRIBE_CONTRACT_MAX_EXAMPLES` asks for more, for a deeper look by
/// hand.
const MAX_EXAMPLES: &str = "8";

/// A fixed seed: a failure seen once is seen again on the next run.
const SEED: &str = "20261130";

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("MAILSCRIBE_SCHEMATHESIS").map(PathBuf::from);
    match path {
        Some(path) if path.is_file() => path,
        other => panic!(
            "Schemathesis is not installed (MAILSCRIBE_SCHEMATHESIS={other:?}): run `bash scripts/test.sh`, which \
             installs it into a virtualenv and sets MAILSCRIBE_SCHEMATHESIS to its `st`, or set that variable yourself"
        ),
    }
}

struct Installation {
    dir: tempfile::TempDir,
    db: TestDatabase,
}

impl Installation {
    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mailscribe"));
        command
            .current_dir(self.dir.path())
            .env("MAILSCRIBE_DB", self.db.url())
            .env("MAILSCRIBE_KEY_FILE", self.dir.path().join("test.key"))
            .env_remove("MAILSCRIBE_SECRET_KEY")
            .env_remove("MAILSCRIBE_FAILPOINT")
            .env_remove("RUST_LOG");
        command
    }

    fn ok(&self, args: &[&str], password: Option<&str>) -> String {
        let mut command = self.command();
        if let Some(password) = password {
            command.env("PW", password);
        }
        let output = command.args(args).output().expect("run mailscribe");
        assert!(
            output.status.success(),
            "mailscribe {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }
}

fn logged_copy(n: u32) -> DecidedCopy {
    let at = Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap()
        + chrono::Duration::minutes(i64::from(n) * 97);
    let (salesperson, contact) = if n.is_multiple_of(3) {
        ("SP2", "2")
    } else {
        ("SP1", "1")
    };
    DecidedCopy {
        mailbox: "logging@ourco.example@127.0.0.1:993/Queue".into(),
        mailbox_name: "default".into(),
        uid_validity: 1,
        uid: n,
        run_id: 1,
        message_id: Some(format!("<m{n}@customer.example>")),
        message_key: format!("mid:m{n}@customer.example"),
        sha256: format!("{n:064x}"),
        sender: Some("c1@customer.example".into()),
        subject: format!("Offer {n} for the spring order"),
        reason: Reason::Logged,
        ambiguous: false,
        error: None,
        entries: vec![PlannedEntry {
            direction: if n.is_multiple_of(2) {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
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
        size: 1000,
        raw: None,
    }
}

async fn seed(installation: &Installation) {
    installation.ok(&["salespeople", "import", "salespeople.csv"], None);
    installation.ok(&["contacts", "import", "contacts.csv"], None);
    let store = mailscribe_store::Store::open(&installation.db.url().parse().unwrap())
        .await
        .unwrap();
    let template = InteractionTemplate {
        code: "EMAIL".into(),
        description: "Email".into(),
        cost: Default::default(),
        duration_minutes: 0,
        interaction_group: None,
        campaign_no: None,
    };
    let copies: Vec<DecidedCopy> = (1..=N_ENTRIES).map(logged_copy).collect();
    for batch in copies.chunks(100) {
        store
            .commit_batch(batch, &template, Utc::now(), None)
            .await
            .unwrap();
    }
    store.close().await;
}

/// Runs Schemathesis with every check against the API as the token's
/// owner; returns whether it passed and what it printed.
fn run_schemathesis(st: &PathBuf, port: u16, token: &str, dir: &std::path::Path) -> (bool, String) {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/schemathesis.toml");
    let max_examples = std::env::var("MAILSCRIBE_CONTRACT_MAX_EXAMPLES")
        .unwrap_or_else(|_| MAX_EXAMPLES.to_owned());
    let output = Command::new(st)
        .current_dir(dir)
        .args([
            "--config-file",
            config,
            "run",
            &format!("http://127.0.0.1:{port}/api/v1/openapi.json"),
        ])
        // Every check: `checks.enabled = true` in the config file rather than
        // `--checks all`, which would override the file's per-operation
        // exceptions.
        .args([
            "--max-examples",
            &max_examples,
            "--seed",
            SEED,
            "--workers",
            "1",
        ])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--request-timeout", "30"])
        // No colours and no progress bars in a captured log.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run Schemathesis");
    let printed = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

#[tokio::test]
async fn the_api_keeps_its_published_contract_under_schemathesis() {
    let st = schemathesis();
    let installation = Installation {
        dir: tempfile::tempdir().unwrap(),
        db: TestDatabase::sqlite(),
    };
    std::fs::write(
        installation.dir.path().join("salespeople.csv"),
        "code,name,email\nSP1,Sally Seller,sp1@ourco.example\nSP2,Sam Closer,sp2@ourco.example\n",
    )
    .unwrap();
    std::fs::write(
        installation.dir.path().join("contacts.csv"),
        "no,name,email,company\n1,Carl Contact,c1@customer.example,Customer Corp\n2,Cora Contact,c2@customer.example,Customer Corp\n",
    )
    .unwrap();
    seed(&installation).await;
    installation.ok(
        &[
            "user",
            "add",
            "root",
            "--role",
            "admin",
            "--password-env",
            "PW",
        ],
        Some("a-long-password-1"),
    );
    installation.ok(
        &[
            "user",
            "add",
            "sally",
            "--role",
            "salesperson",
            "--salesperson",
            "SP1",
            "--password-env",
            "PW",
        ],
        Some("a-long-password-2"),
    );
    let admin_token = installation
        .ok(&["token", "create", "--user", "root"], None)
        .trim()
        .to_owned();
    let salesperson_token = installation
        .ok(&["token", "create", "--user", "sally"], None)
        .trim()
        .to_owned();

    let serve = crate::harness::serve(installation.command(), Duration::from_secs(30));
    let port = serve.port;

    // The salesperson first: the admin's run may change the directory
    // (deleting a salesperson disables the accounts tied to it).
    let mut failures = Vec::new();
    for (who, token) in [("salesperson", &salesperson_token), ("admin", &admin_token)] {
        let (passed, printed) = run_schemathesis(&st, port, token, installation.dir.path());
        println!("Schemathesis as {who}:\n{printed}");
        if !passed {
            failures.push(format!("as {who}:\n{printed}"));
        }
    }
    drop(serve);
    assert!(
        failures.is_empty(),
        "Schemathesis reported failures:\n{}",
        failures.join("\n")
    );
}
