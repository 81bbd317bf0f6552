//! A private PostgreSQL server for tests that stop and restart it, so that
//! the shared server is never touched: `initdb` into a temporary directory
//! and `pg_ctl` on a free loopback port, as the `postgres` user when the
//! tests run as root (PostgreSQL refuses to run as root). Optionally with
//! TLS only (`PgServer::start_tls`): a certificate for `localhost` signed by
//! a CA made for the test, and `hostssl` the only way in over TCP.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{free_port, wait_until};

pub struct PgServer {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    tls: bool,
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
        PgServer::start_with(false)
    }

    /// A server that accepts TCP connections only over TLS, with a
    /// certificate for `localhost` (not for 127.0.0.1) signed by
    /// [`PgServer::ca_file`]; [`PgServer::wrong_ca_file`] signed nothing of it.
    pub fn start_tls() -> PgServer {
        PgServer::start_with(true)
    }

    fn start_with(tls: bool) -> PgServer {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| versions.filter_map(Result::ok).map(|v| v.path().join("bin")).filter(|b| b.join("pg_ctl").exists()).max())
            .expect("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin/pg_ctl): install postgresql");
        let dir = tempfile::Builder::new()
            .prefix("mailscribe-pg-")
            .tempdir()
            .expect("tempdir");
        if tls {
            make_certificates(&dir.path().join("tls"));
        }
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
            tls,
        };
        let data = server.data();
        server.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        if tls {
            let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n";
            let path = server.dir.path().join("data").join("pg_hba.conf");
            std::fs::write(&path, hba).expect("write pg_hba.conf");
            if is_root() {
                let status = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&path)
                    .status()
                    .expect("chown pg_hba.conf");
                assert!(status.success(), "chown pg_hba.conf");
            }
        }
        server.launch();
        server
    }

    /// The CA that signed the server's certificate (TLS servers only).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("tls").join("ca.pem")
    }

    /// A CA that signed nothing the server holds.
    pub fn wrong_ca_file(&self) -> PathBuf {
        self.dir.path().join("tls").join("wrong-ca.pem")
    }

    pub fn port(&self) -> u16 {
        self.port
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
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        if self.tls {
            let tls = self.dir.path().join("tls");
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                tls.join("server.pem").display(),
                tls.join("server.key").display()
            ));
        }
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

/// A CA, a server certificate for `localhost` signed by it, and another
/// CA, with the openssl command line.
fn make_certificates(tls: &Path) {
    std::fs::create_dir_all(tls).expect("tls directory");
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .current_dir(tls)
            .args(args)
            .output()
            .expect("run openssl (install it)");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    for (key, cert, name) in [
        ("ca.key", "ca.pem", "/CN=Mailscribe PG Test CA"),
        ("wrong-ca.key", "wrong-ca.pem", "/CN=Another CA"),
    ] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-keyout",
            key,
            "-out",
            cert,
            "-subj",
            name,
        ]);
    }
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        tls.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    std::fs::set_permissions(
        tls.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod server.key");
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
