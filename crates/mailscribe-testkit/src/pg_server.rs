//! A private PostgreSQL server for tests that stop and restart it, so that
//! the shared server is never touched: `initdb` into a temporary directory
//! and `pg_ctl` on a free loopback port, as the `postgres` user when the
//! tests run as root (PostgreSQL refuses to run as root).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::{free_port, wait_until};

pub struct PgServer {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl PgServer {
    /// Initialises and starts a server. Panics with a hint when the
    /// PostgreSQL server binaries are missing.
    pub fn start() -> PgServer {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| versions.filter_map(Result::ok).map(|v| v.path().join("bin")).filter(|b| b.join("pg_ctl").exists()).max())
            .expect("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin/pg_ctl): install postgresql");
        let dir = tempfile::Builder::new()
            .prefix("mailscribe-pg-")
            .tempdir()
            .expect("tempdir");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the PostgreSQL directory");
        }
        let server = PgServer {
            dir,
            port: free_port(),
            bin,
        };
        let data = server.data();
        server.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        server.launch();
        server
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Runs a PostgreSQL binary, as `postgres` when we are root.
    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let output = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(args)
                .output()
        } else {
            Command::new(&path).args(args).output()
        }
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", path.display()));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn launch(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        let port = self.port;
        wait_until("PostgreSQL to listen", Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    /// The admin URL, for `TestDatabase::postgres_on`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast: open connections are cut).
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// Starts a stopped server again on the same port and data.
    pub fn start_again(&self) {
        self.launch();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let path = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(args)
                .output()
        } else {
            Command::new(&path).args(args).output()
        };
    }
}
