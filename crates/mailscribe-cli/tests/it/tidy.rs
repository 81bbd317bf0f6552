//! Tidy: the rules of ARCHITECTURE.md that a machine can check.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").filter_map(Result::ok) {
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
    let Some(start) = manifest.find("\n[dependencies]\n") else { return Vec::new() };
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
    let architecture = std::fs::read_to_string(workspace().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    for dir in crate_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy();
        assert!(architecture.contains(&format!("crates/{name}")), "ARCHITECTURE.md does not describe crates/{name}");
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
            assert!(!text.contains(leftover), "{} contains {leftover}", file.display());
        }
    }
}

#[test]
fn dependencies_point_toward_the_core() {
    let crates = workspace().join("crates");
    let core = dependencies(&crates.join("mailscribe-core"));
    for forbidden in ["tokio", "sqlx", "axum", "async-imap", "reqwest", "rustls", "mailscribe-store", "mailscribe-mail"] {
        assert!(!core.iter().any(|d| d == forbidden), "mailscribe-core must not depend on {forbidden} (it does no I/O)");
    }
    let mail = dependencies(&crates.join("mailscribe-mail"));
    assert!(!mail.iter().any(|d| d == "mailscribe-store" || d == "sqlx"), "the IMAP connector must not know the database");
    let web = dependencies(&crates.join("mailscribe-web"));
    assert!(!web.iter().any(|d| d == "mailscribe-mail" || d == "async-imap"), "the web app reads mail through MessageSource only");
    let store = dependencies(&crates.join("mailscribe-store"));
    assert!(!store.iter().any(|d| d == "mailscribe-mail" || d == "async-imap"), "the store must not know IMAP");
    for dir in crate_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if name != "mailscribe-cli" && name != "mailscribe-bench" {
            assert!(!dependencies(&dir).iter().any(|d| d == "anyhow"), "{name}: anyhow belongs in the binary only");
        }
    }
}
