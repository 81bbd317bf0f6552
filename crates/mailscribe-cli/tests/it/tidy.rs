//! Tidy: the rules of ARCHITECTURE.md that a machine can check.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
    {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn crate_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(workspace().join("crates"))
        .expect("crates/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The `[dependencies]` section of a crate's manifest, one name per entry.
fn dependencies(crate_dir: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).expect("Cargo.toml");
    let Some(start) = manifest.find("\n[dependencies]\n") else {
        return Vec::new();
    };
    let section = &manifest[start + "\n[dependencies]\n".len()..];
    let section = section.split("\n[").next().unwrap_or_default();
    section
        .lines()
        .filter_map(|line| line.split(['=', '.']).next())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .collect()
}

#[test]
fn every_crate_is_in_the_code_map() {
    let architecture =
        std::fs::read_to_string(workspace().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    for dir in crate_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy();
        assert!(
            architecture.contains(&format!("crates/{name}")),
            "ARCHITECTURE.md does not describe crates/{name}"
        );
    }
}

#[test]
fn every_source_file_says_what_it_is_and_has_no_debug_leftovers() {
    let mut files = Vec::new();
    rust_files(&workspace().join("crates"), &mut files);
    assert!(files.len() > 20);
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        assert!(
            text.starts_with("//!"),
            "{} does not start with a //! line saying what it is",
            file.display()
        );
        for leftover in ["dbg!(", "todo!(", "#[ignore]"] {
            // This file names them on purpose.
            if file.ends_with("tidy.rs") {
                continue;
            }
            assert!(
                !text.contains(leftover),
                "{} contains {leftover}",
                file.display()
            );
        }
    }
}

#[test]
fn dependencies_point_toward_the_core() {
    let crates = workspace().join("crates");
    let core = dependencies(&crates.join("mailscribe-core"));
    for forbidden in [
        "tokio",
        "sqlx",
        "axum",
        "async-imap",
        "reqwest",
        "rustls",
        "mailscribe-store",
        "mailscribe-mail",
    ] {
        assert!(
            !core.iter().any(|d| d == forbidden),
            "mailscribe-core must not depend on {forbidden} (it does no I/O)"
        );
    }
    let mail = dependencies(&crates.join("mailscribe-mail"));
    assert!(
        !mail.iter().any(|d| d == "mailscribe-store" || d == "sqlx"),
        "the IMAP connector must not know the database"
    );
    let web = dependencies(&crates.join("mailscribe-web"));
    assert!(
        !web.iter()
            .any(|d| d == "mailscribe-mail" || d == "async-imap"),
        "the web app reads mail through MessageSource only"
    );
    let store = dependencies(&crates.join("mailscribe-store"));
    assert!(
        !store
            .iter()
            .any(|d| d == "mailscribe-mail" || d == "async-imap"),
        "the store must not know IMAP"
    );
    for dir in crate_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if name != "mailscribe-cli" && name != "mailscribe-bench" {
            assert!(
                !dependencies(&dir).iter().any(|d| d == "anyhow"),
                "{name}: anyhow belongs in the binary only"
            );
        }
    }
}

/// Every `mailscribe_*` metric a document names exists in the code.
fn assert_known_metrics(text: &str, what: &str) {
    let known: Vec<&str> = mailscribe_worker::metrics::NAMES
        .iter()
        .copied()
        .chain([
            mailscribe_web::operations::HTTP_REQUESTS,
            mailscribe_web::operations::HTTP_DURATION,
        ])
        .collect();
    let mut rest = text;
    while let Some(start) = rest.find("mailscribe_") {
        let name: String = rest[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .fold(name.as_str(), |n, suffix| {
                n.strip_suffix(suffix).unwrap_or(n)
            });
        assert!(
            known.contains(&base),
            "{what} names the metric {name}, which the code does not record"
        );
        rest = &rest[start + name.len()..];
    }
}

#[test]
fn the_alert_rules_pass_promtool_and_the_dashboard_names_real_metrics() {
    let docs = workspace().join("docs");
    let operations = std::fs::read_to_string(docs.join("operations.md")).unwrap();
    let rules = operations
        .split("```yaml\n")
        .nth(1)
        .and_then(|r| r.split("```").next())
        .expect("a yaml block of rules");
    assert_known_metrics(rules, "the alert rules");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yml");
    std::fs::write(&file, rules).unwrap();
    let checked = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool (Debian package prometheus) is installed by scripts/test.sh");
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(String::from_utf8_lossy(&checked.stdout).contains("4 rules found"));
    for alert in [
        "MailscribeNoSuccessfulRun",
        "MailscribeQueueStale",
        "MailscribeFailedMessages",
        "MailscribeCertificateExpiring",
    ] {
        assert!(
            operations.contains(&format!("### {alert}")),
            "a runbook entry for {alert}"
        );
    }
    let dashboard = std::fs::read_to_string(docs.join("grafana-dashboard.json")).unwrap();
    let parsed: serde_json::Value =
        serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() >= 8));
    assert_known_metrics(&dashboard, "the dashboard");
}

#[test]
fn the_systemd_unit_verifies_cleanly() {
    let unit = std::fs::read_to_string(workspace().join("packaging/mailscribe.service")).unwrap();
    for hardening in [
        "DynamicUser=yes",
        "StateDirectory=mailscribe",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "KillSignal=SIGTERM",
    ] {
        assert!(unit.contains(hardening), "the unit sets {hardening}");
    }
    // systemd itself does not run here; `verify` checks the unit offline,
    // with ExecStart pointing at this build (it must be executable).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mailscribe.service");
    std::fs::write(
        &file,
        unit.replace(
            "/usr/local/bin/mailscribe",
            env!("CARGO_BIN_EXE_mailscribe"),
        ),
    )
    .unwrap();
    let output = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&file)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Unknown keys and bad values are only warnings: none may appear.
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

#[test]
fn version_completions_and_the_manual_come_from_the_cli_definition() {
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_mailscribe"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let version = run(&["--version"]);
    assert!(
        version.starts_with(&format!("mailscribe {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    if workspace().join(".git").exists() {
        assert!(
            version.contains("(commit "),
            "a checkout's build names its commit: {version}"
        );
    }
    let bash = run(&["completions", "bash"]);
    assert!(
        bash.contains("complete -F") && bash.contains("rotate-key") && bash.contains("--mailbox")
    );
    assert!(run(&["completions", "zsh"]).contains("#compdef mailscribe"));
    assert!(run(&["completions", "fish"]).contains("complete -c mailscribe"));
    let man = run(&["man"]);
    assert!(
        man.contains(".TH mailscribe") && man.contains("serve"),
        "{}",
        &man[..man.len().min(300)]
    );
}
