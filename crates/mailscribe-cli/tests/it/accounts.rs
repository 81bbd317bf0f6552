//! Accounts from the CLI: listing, changes that lock a user out at once,
//! the last admin kept, and tokens listed, expiring and revoked; checked
//! against a real `serve` over HTTP.

use std::time::Duration;

use crate::harness::{Backend, Env};

fn http_status(port: u16, path: &str, token: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn accounts_are_managed_and_a_disabled_user_is_out_on_the_next_call() {
    let env = Env::new(Backend::Sqlite).await;
    let add = |name: &str, role: &[&str]| {
        let mut args = vec!["user", "add", name, "--password-env", "PW"];
        args.extend_from_slice(role);
        let output = env
            .command()
            .env("PW", "a-long-password-1")
            .args(&args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    add("root", &["--role", "admin"]);
    add("sally", &["--role", "salesperson", "--salesperson", "SP1"]);
    let list = env.ok(&["user", "list"]);
    let rows: Vec<Vec<&str>> = list.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(
        rows[0],
        [
            "name",
            "role",
            "salesperson_code",
            "status",
            "last_sign_in_at"
        ]
    );
    assert_eq!(rows[1][..4], ["root", "admin", "", "active"]);
    assert_eq!(rows[2][..4], ["sally", "salesperson", "SP1", "active"]);

    // The last admin stays; unknown names and ids say so, with exit 1.
    for args in [
        &["user", "disable", "root"][..],
        &["user", "remove", "root"],
        &["user", "set-role", "root", "--role", "user"],
    ] {
        let output = env.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("last active admin"));
    }
    let output = env.run(&["user", "disable", "nobody"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no user named nobody"));
    assert_eq!(env.run(&["token", "revoke", "999"]).status.code(), Some(1));

    // Tokens: 90 days by default, `never` when said; listed without the token.
    let token = env
        .ok(&["token", "create", "--user", "sally"])
        .trim()
        .to_owned();
    let forever = env
        .ok(&[
            "token",
            "create",
            "--user",
            "sally",
            "--expires-in",
            "never",
        ])
        .trim()
        .to_owned();
    assert_eq!(
        env.run(&["token", "create", "--user", "sally", "--expires-in", "soon"])
            .status
            .code(),
        Some(2)
    );
    let tokens = env.ok(&["token", "list", "--user", "sally"]);
    let lines: Vec<&str> = tokens.lines().collect();
    assert_eq!(lines[0], "id\tuser\tcreated_at\tlast_used_at\texpires_at");
    assert_eq!(lines.len(), 3);
    assert!(
        !lines[1].ends_with("never") && lines[2].ends_with("never"),
        "{tokens}"
    );
    assert!(
        !tokens.contains(&token) && !tokens.contains(&forever),
        "tokens are never shown again"
    );

    let serve = crate::harness::serve(env.command(), Duration::from_secs(30));
    let port = serve.port;
    assert_eq!(http_status(port, "/api/v1/me", &token), 200);
    // Revoking one token leaves the other.
    let first_id = lines[1].split('\t').next().unwrap();
    env.ok(&["token", "revoke", first_id]);
    assert_eq!(http_status(port, "/api/v1/me", &token), 401);
    assert_eq!(http_status(port, "/api/v1/me", &forever), 200);
    let used = env.ok(&["token", "list"]);
    assert!(
        used.lines()
            .nth(1)
            .unwrap()
            .split('\t')
            .nth(3)
            .is_some_and(|t| !t.is_empty()),
        "last use recorded: {used}"
    );
    // Disabled: out on the very next call, and enabling gives no token back.
    env.ok(&["user", "disable", "sally"]);
    assert_eq!(http_status(port, "/api/v1/me", &forever), 401);
    assert!(
        env.ok(&["user", "list"])
            .contains("sally\tsalesperson\tSP1\tdisabled")
    );
    env.ok(&["user", "enable", "sally"]);
    assert_eq!(http_status(port, "/api/v1/me", &forever), 401);
    let output = env
        .command()
        .env("PW", "another-password-2")
        .args(["user", "passwd", "sally", "--password-env", "PW"])
        .output()
        .unwrap();
    assert!(output.status.success());
    env.ok(&["user", "set-role", "sally", "--role", "user"]);
    env.ok(&["user", "remove", "sally"]);
    assert!(!env.ok(&["user", "list"]).contains("sally"));
    drop(serve);
}

#[tokio::test]
async fn the_audit_log_records_security_events_without_addresses() {
    let env = Env::new(Backend::Sqlite).await;
    // An empty log still has its header, every column included.
    assert_eq!(
        env.ok(&["audit", "export", "--format", "csv"]).trim(),
        "id,at,actor,client_address,event,target,detail"
    );
    assert!(
        env.ok(&["decisions", "export"])
            .trim()
            .ends_with(",date_fallback,mailbox_name,run_id")
    );
    env.set_up(100);
    let output = env
        .command()
        .env("PW", "a-long-password-1")
        .args([
            "user",
            "add",
            "sally",
            "--role",
            "user",
            "--password-env",
            "PW",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    env.ok(&["token", "create", "--user", "sally"]);
    let id = env
        .ok(&["token", "list"])
        .lines()
        .nth(1)
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    env.ok(&["token", "revoke", &id]);
    env.ok(&["user", "disable", "sally"]);
    env.ok(&["disable"]);
    env.configure(&["--batch-size", "50"]);
    env.ok(&[
        "interactions",
        "delete",
        "--canceled",
        "--before",
        "2030-01-01",
    ]);
    let json: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["audit", "export", "--format", "json"])).unwrap();
    let events: Vec<(&str, &str)> = json
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap(),
                e["target"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("salespeople_imported", ""),
            ("contacts_imported", ""),
            ("setup_saved", "default"),
            ("logging_enabled", "default"),
            ("user_added", "sally"),
            ("token_created", "sally"),
            ("token_revoked", &*format!("token {id}")),
            ("user_disabled", "sally"),
            ("logging_disabled", "default"),
            ("setup_saved", "default"),
            ("entries_deleted", "canceled before 2030-01-01T00:00:00Z"),
        ]
    );
    // configure takes the password again (sealed anew), and the batch size changed.
    assert_eq!(
        json[9]["detail"], "fields: password, batch_size",
        "which fields changed, never their values"
    );
    assert!(
        json.iter()
            .all(|e| e["actor"].as_str().unwrap().starts_with("cli:"))
    );
    let csv = env.ok(&["audit", "export", "--format", "csv"]);
    assert!(!csv.contains('@'), "no address in the audit log: {csv}");
    assert!(
        !csv.contains(env.dovecot.password()),
        "no secret in the audit log"
    );
}
