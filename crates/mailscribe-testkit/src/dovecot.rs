//! A throwaway Dovecot 2.3 on free loopback ports, with a public namespace
//! `Public Folders/` holding `Email Logging/Queue` and `Email Logging/Storage`
//! (a public namespace, TLS, a passwd-file user and optionally the oauth2 passdb).
//!
//! The harness owns the master process (`dovecot -F`) and stops it on drop.
//! With `DovecotOptions::lmtp_for_postfix` it runs the mail-server guide's
//! own Dovecot configuration (`packaging/postfix-dovecot/`): LMTP on the
//! socket in Postfix's queue directory, the user looked up without its
//! domain, and a global Sieve script filing mail for `queue@...` into the
//! public Queue (used by the Postfix fixture).
//! With `DovecotOptions::acl` it enforces access control lists (RFC 4314,
//! IMAP `ACL`/`MYRIGHTS`), as a server where an administrator granted the
//! mailbox user only some rights on the public folders.

use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::{free_port, wait_until};

pub const QUEUE: &str = "Public Folders/Email Logging/Queue";
pub const STORAGE: &str = "Public Folders/Email Logging/Storage";

pub(crate) const USER: &str = "queue";
pub(crate) const PASSWORD: &str = "queuepass";
/// A user named the way Exchange opens a shared mailbox (with `PASSWORD`),
/// to see which command a client logs in with.
pub const DELEGATE_ACCESS_USER: &str = "contoso/svc-mailscribe/emaillogging";

/// The server certificate the fixture presents, to test TLS failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerCertificate {
    /// For `localhost` and 127.0.0.1, from the fixture's CA.
    #[default]
    Valid,
    /// Expired yesterday.
    Expired,
    /// Valid, but for another name (`imap.other.example`).
    WrongName,
}

#[derive(Debug, Clone)]
pub struct DovecotOptions {
    pub certificate: ServerCertificate,
    /// Mail storage of the public namespace: `maildir` (the common format)
    /// or `sdbox`.
    pub public_format: &'static str,
    /// The public namespace's hierarchy separator.
    pub separator: char,
    /// An RFC 7662 introspection URL: enables XOAUTH2 and OAUTHBEARER
    /// through Dovecot's oauth2 passdb (see `OAuthServer`).
    pub oauth2_introspection_url: Option<String>,
    /// The queue directory of a Postfix that delivers over LMTP: the server
    /// then runs the guide's `packaging/postfix-dovecot/90-email-logging.conf`
    /// and `email-logging.sieve` (paths moved into the fixture's
    /// directories, nothing else changed) with a passwd-file user database,
    /// so that an LMTP recipient is only found as the guide's
    /// configuration makes it. Needs root (the socket belongs to `postfix`)
    /// and the separator `/`.
    pub lmtp_for_postfix: Option<PathBuf>,
    /// Access control lists: `None` (the default) loads no ACL plugin, so
    /// the server has no `ACL` capability. `Some(rules)` enables Dovecot's
    /// `acl` and `imap_acl` plugins with a global ACL file: every
    /// authenticated user has all rights (`lrwstipekxa`) on every folder,
    /// except that the fixture's user gets exactly the given rights on the
    /// given folders — (path written with `/` as users write it, e.g.
    /// `Public Folders/Email Logging/Storage`; IMAP rights letters, e.g.
    /// `"lr"`). A `user=` entry takes precedence over `authenticated`, so
    /// the rights are replaced, not added to. `Some(vec![])` gives full
    /// rights everywhere while advertising `ACL`.
    ///
    /// Dovecot opens a folder read-only (`[READ-ONLY]`) only when the user
    /// has none of `i`, `e`, `w`, `s`, `t` there (`"lr"`); any one of them
    /// makes SELECT read-write. Restricting the Queue also stops LMTP
    /// delivery into it unless `p` or `i` is kept.
    pub acl: Option<Vec<(String, String)>>,
}

impl Default for DovecotOptions {
    fn default() -> DovecotOptions {
        DovecotOptions {
            certificate: ServerCertificate::Valid,
            public_format: "maildir",
            separator: '/',
            oauth2_introspection_url: None,
            lmtp_for_postfix: None,
            acl: None,
        }
    }
}

pub struct Dovecot {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub imap_port: u16,
    pub imaps_port: u16,
    /// Set when started with `DovecotOptions::lmtp_for_postfix`.
    pub lmtp_socket: Option<PathBuf>,
    pub options: DovecotOptions,
    mail_owner: Option<(u32, u32)>,
    /// Whether it has listened once: from then on its ports are known to
    /// clients and stay.
    started: bool,
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

fn id_of(flag: &str, user: &str) -> u32 {
    let output = Command::new("id").args([flag, user]).output().expect("id");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("numeric id")
}

impl Dovecot {
    /// Starts a Dovecot with the default options. Panics with a hint when
    /// Dovecot is not installed (the README's test command installs it).
    pub fn start() -> Dovecot {
        Dovecot::start_with(DovecotOptions::default())
    }

    pub fn start_with(options: DovecotOptions) -> Dovecot {
        assert!(
            Path::new("/usr/sbin/dovecot").exists(),
            "Dovecot is not installed: run the README's test command, or \
             apt-get install dovecot-core dovecot-imapd dovecot-lmtpd dovecot-sieve"
        );
        let dir = tempfile::Builder::new()
            .prefix("mailscribe-dovecot-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path();
        let imap_port = free_port();
        let imaps_port = free_port();
        let lmtp_socket = options
            .lmtp_for_postfix
            .as_ref()
            .map(|queue_dir| queue_dir.join("private/dovecot-lmtp"));
        for sub in ["run", "state", "tls", "mail", "public"] {
            std::fs::create_dir_all(root.join(sub)).expect("fixture dirs");
        }
        run(Command::new("chmod")
            .args(["0755"])
            .arg(root)
            .arg(root.join("run")));
        write_certificates(&root.join("tls"), options.certificate);
        std::fs::write(
            root.join("users"),
            format!(
                "test:{{PLAIN}}testpass::::::\n{USER}:{{PLAIN}}{PASSWORD}::::::\n\
                 {DELEGATE_ACCESS_USER}:{{PLAIN}}{PASSWORD}::::::\n"
            ),
        )
        .expect("users");

        let root_mode = is_root();
        let (mail_user, mail_group) = if root_mode {
            ("nobody".to_owned(), "nogroup".to_owned())
        } else {
            let name = |flag| {
                String::from_utf8_lossy(&Command::new("id").arg(flag).output().expect("id").stdout)
                    .trim()
                    .to_owned()
            };
            (name("-un"), name("-gn"))
        };
        let sep = options.separator;
        let public_location = format!(
            "{}:{}/public:LAYOUT=fs",
            options.public_format,
            root.display()
        );
        let (oauth_mechanisms, oauth_passdb) = match &options.oauth2_introspection_url {
            Some(url) => {
                std::fs::write(
                    root.join("dovecot-oauth2.conf.ext"),
                    format!(
                        "introspection_mode = post\nintrospection_url = {url}\nusername_attribute = username\n\
                         active_attribute = active\nactive_value = true\ntokeninfo_url =\n"
                    ),
                )
                .expect("oauth2 conf");
                (
                    " xoauth2 oauthbearer".to_owned(),
                    format!(
                        "passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}/dovecot-oauth2.conf.ext\n}}\n",
                        root.display()
                    ),
                )
            }
            None => (String::new(), String::new()),
        };
        let protocols = if lmtp_socket.is_some() {
            "imap lmtp"
        } else {
            "imap"
        };
        let (userdb, public_namespace) = if lmtp_socket.is_some() {
            assert!(
                root_mode && sep == '/',
                "LMTP for Postfix needs root (the socket belongs to postfix) and the separator '/'"
            );
            // A user database that knows only the users in the file, as a
            // real server's does: `queue@logging.example` is found only
            // because the guide's LMTP settings strip the domain. The
            // guide's configuration brings the public namespace.
            (
                format!(
                    "userdb {{\n  driver = passwd-file\n  args = {root}/users\n  \
                     default_fields = uid={mail_user} gid={mail_group} home={root}/mail/%n\n}}\n",
                    root = root.display()
                ),
                String::new(),
            )
        } else {
            (
                format!(
                    "userdb {{\n  driver = static\n  \
                     args = uid={mail_user} gid={mail_group} home={root}/mail/%n allow_all_users=yes\n}}\n",
                    root = root.display()
                ),
                format!(
                    "namespace public {{\n  type = public\n  separator = {sep}\n  prefix = Public Folders{sep}\n  \
                     location = {public_location}\n  subscriptions = no\n  list = children\n}}\n"
                ),
            )
        };
        let mut conf = format!(
            r#"base_dir = {root}/run
state_dir = {root}/state
instance_name = mailscribe-fixture-{imap_port}
log_path = {root}/dovecot.log
protocols = {protocols}
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/tls/cert.pem
ssl_key = <{root}/tls/key.pem
disable_plaintext_auth = no
auth_failure_delay = 0
# Let user names hold `/` (DELEGATE_ACCESS_USER).
auth_username_chars =
auth_verbose = yes
auth_mechanisms = plain login{oauth_mechanisms}
mail_fsync = never
first_valid_uid = 1
mail_location = maildir:{root}/mail/%n:LAYOUT=fs
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {root}/users
}}
{oauth_passdb}{userdb}namespace inbox {{
  inbox = yes
  separator = {sep}
  prefix =
}}
{public_namespace}service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"#,
            root = root.display(),
        );
        // Before the LMTP block: its `$mail_plugins` is expanded where it
        // stands, so `acl` must already be in the list.
        if let Some(rules) = &options.acl {
            let mut file = String::from("* authenticated lrwstipekxa\n");
            for (folder, rights) in rules {
                assert!(
                    rights.chars().all(|c| "lrwstipekxa".contains(c)),
                    "unknown ACL right in {rights:?} (Dovecot knows lrwstipekxa)"
                );
                let name = folder
                    .replace('/', &sep.to_string())
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"");
                file.push_str(&format!("\"{name}\" user={USER} {rights}\n"));
            }
            std::fs::write(root.join("global-acl"), file).expect("global-acl");
            conf.push_str(&format!(
                r#"mail_plugins = $mail_plugins acl
protocol imap {{
  mail_plugins = $mail_plugins imap_acl
}}
plugin {{
  acl = vfile:{root}/global-acl
  acl_globals_only = yes
}}
"#,
                root = root.display(),
            ));
        }
        if let Some(socket) = &lmtp_socket {
            let guide =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/postfix-dovecot");
            let read = |name: &str| {
                std::fs::read_to_string(guide.join(name))
                    .unwrap_or_else(|err| panic!("the guide's {name}: {err}"))
            };
            std::fs::write(
                root.join("email-logging.sieve"),
                read("email-logging.sieve"),
            )
            .expect("email-logging.sieve");
            // A global script must be compiled beforehand: the mail user
            // cannot write its binary next to it.
            run(Command::new("sievec").arg(root.join("email-logging.sieve")));
            // The guide's file with its three paths moved into the fixture.
            let guide_conf = read("90-email-logging.conf")
                .replace(
                    "/var/mail/public",
                    &root.join("public").display().to_string(),
                )
                .replace(
                    "/var/spool/postfix/private/dovecot-lmtp",
                    &socket.display().to_string(),
                )
                .replace(
                    "/etc/dovecot/sieve/email-logging.sieve",
                    &root.join("email-logging.sieve").display().to_string(),
                );
            conf.push_str(&guide_conf);
        }
        if !root_mode {
            conf.push_str(&format!(
                "default_internal_user = {mail_user}\ndefault_internal_group = {mail_group}\n\
                 default_login_user = {mail_user}\nservice imap-login {{\n  chroot =\n}}\nservice anvil {{\n  chroot =\n}}\n"
            ));
        }
        std::fs::write(root.join("dovecot.conf"), conf).expect("dovecot.conf");
        let mail_owner = root_mode.then(|| (id_of("-u", "nobody"), id_of("-g", "nobody")));
        if root_mode {
            run(Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(root.join("mail"))
                .arg(root.join("public")));
        }

        let mut dovecot = Dovecot {
            dir,
            child: None,
            imap_port,
            imaps_port,
            lmtp_socket,
            options,
            mail_owner,
            started: false,
        };
        dovecot.launch();
        dovecot.create_folder(QUEUE);
        dovecot.create_folder(STORAGE);
        dovecot
    }

    /// Starts the server process on the written configuration and waits
    /// until it listens. A port found free a moment before may be taken by
    /// another test process by the time Dovecot binds it, and Dovecot then
    /// exits at once: a first start moves to fresh ports and tries again; a
    /// restart, whose clients know its ports, fails with Dovecot's log.
    fn launch(&mut self) {
        const ATTEMPTS: u32 = 3;
        for attempt in 1..=ATTEMPTS {
            match self.launch_once() {
                Ok(()) => return,
                Err(status) if attempt < ATTEMPTS && !self.started => {
                    eprintln!(
                        "Dovecot exited at start ({status}), likely a port taken meanwhile; \
                         moving to fresh ports"
                    );
                    self.move_to_fresh_ports();
                }
                Err(status) => panic!(
                    "Dovecot exited at start ({status}); the end of its log:\n{}",
                    self.log_tail()
                ),
            }
        }
    }

    /// One start: `Err` with the exit status when the process ended before
    /// it listened.
    fn launch_once(&mut self) -> Result<(), std::process::ExitStatus> {
        let mut child = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(self.conf())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start dovecot");
        let auth_socket = self.dir.path().join("run/auth-userdb");
        let (imap_port, imaps_port) = (self.imap_port, self.imaps_port);
        let lmtp_socket = self.lmtp_socket.clone();
        let mut exited = None;
        // Generous: on a loaded 2-core machine a start can take a while.
        wait_until("Dovecot to listen", Duration::from_secs(90), || {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return true;
            }
            auth_socket.exists()
                && TcpStream::connect(("127.0.0.1", imap_port)).is_ok()
                && TcpStream::connect(("127.0.0.1", imaps_port)).is_ok()
                && lmtp_socket
                    .as_ref()
                    .is_none_or(|socket| UnixStream::connect(socket).is_ok())
        });
        match exited {
            Some(status) => Err(status),
            None => {
                self.child = Some(child);
                self.started = true;
                Ok(())
            }
        }
    }

    /// Rewrites the configuration to listen on two new free ports.
    fn move_to_fresh_ports(&mut self) {
        let (imap_port, imaps_port) = (free_port(), free_port());
        let conf = std::fs::read_to_string(self.conf()).expect("read dovecot.conf");
        let conf = conf
            .replace(
                &format!("port = {}\n", self.imap_port),
                &format!("port = {imap_port}\n"),
            )
            .replace(
                &format!("port = {}\n", self.imaps_port),
                &format!("port = {imaps_port}\n"),
            );
        std::fs::write(self.conf(), conf).expect("write dovecot.conf");
        (self.imap_port, self.imaps_port) = (imap_port, imaps_port);
    }

    /// The last lines of Dovecot's log, for a failure message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Kills the server and every process it started, at once, as a crash
    /// or a power cut would: open connections drop mid-command.
    pub fn crash(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("pkill")
            .args(["-KILL", "-P"])
            .arg(child.id().to_string())
            .status();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts a stopped server again, on the same ports and mail (for
    /// tests of a server that restarts).
    pub fn restart(&mut self) {
        self.stop();
        // Its sockets go with the old process; wait until they have.
        let auth_socket = self.dir.path().join("run/auth-userdb");
        let _ = std::fs::remove_file(&auth_socket);
        self.launch();
    }

    /// A folder path written with `/`, in this server's separator.
    pub fn server_name(&self, folder: &str) -> String {
        folder.replace('/', &self.options.separator.to_string())
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    pub fn user(&self) -> &'static str {
        USER
    }

    pub fn password(&self) -> &'static str {
        PASSWORD
    }

    fn doveadm(&self) -> Command {
        let mut command = Command::new("/usr/bin/doveadm");
        command.arg("-c").arg(self.conf());
        command
    }

    /// Creates a folder (path written with `/`).
    pub fn create_folder(&self, folder: &str) {
        run(self
            .doveadm()
            .args(["mailbox", "create", "-u", USER])
            .arg(self.server_name(folder)));
    }

    /// Number of messages in a folder.
    pub fn count(&self, folder: &str) -> usize {
        let output = self
            .doveadm()
            .args(["-f", "flow", "mailbox", "status", "-u", USER, "messages"])
            .arg(self.server_name(folder))
            .output()
            .expect("doveadm mailbox status");
        let text = String::from_utf8_lossy(&output.stdout);
        text.trim()
            .rsplit_once("messages=")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "unexpected doveadm output {text:?} {}",
                    String::from_utf8_lossy(&output.stderr)
                )
            })
    }

    /// The Message-ID headers of a folder's messages, in UID order.
    pub fn message_ids(&self, folder: &str) -> Vec<String> {
        let output = self
            .doveadm()
            .args([
                "-f",
                "tab",
                "fetch",
                "-u",
                USER,
                "hdr.message-id",
                "mailbox",
            ])
            .arg(self.server_name(folder))
            .arg("all")
            .output()
            .expect("doveadm fetch");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .skip(1)
            .map(|l| l.trim().to_owned())
            .collect()
    }

    /// Puts a message straight into a public folder's maildir, as a mail
    /// server's delivery would: fast, no IMAP involved. `received` becomes
    /// the INTERNALDATE; `draft` sets the `\Draft` flag.
    pub fn deliver(&self, folder: &str, raw: &[u8], received: Option<SystemTime>, draft: bool) {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        assert_eq!(
            self.options.public_format, "maildir",
            "deliver() writes maildir files"
        );
        let relative = folder
            .strip_prefix("Public Folders/")
            .expect("a public folder");
        let mailbox_dir = self.dir.path().join("public").join(relative);
        let unique = format!(
            "{}.M{}P{}.fixture",
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            SEQ.fetch_add(1, Ordering::Relaxed),
            std::process::id()
        );
        let tmp = mailbox_dir.join("tmp").join(&unique);
        std::fs::write(&tmp, raw).expect("write message");
        let file = std::fs::File::options()
            .write(true)
            .open(&tmp)
            .expect("open message");
        if let Some(received) = received {
            file.set_modified(received).expect("set mtime");
        }
        drop(file);
        if let Some((uid, gid)) = self.mail_owner {
            std::os::unix::fs::chown(&tmp, Some(uid), Some(gid)).expect("chown message");
        }
        let target = if draft {
            mailbox_dir.join("cur").join(format!("{unique}:2,D"))
        } else {
            mailbox_dir.join("new").join(&unique)
        };
        std::fs::rename(&tmp, target).expect("deliver message");
    }

    /// The log, for assertions and for debugging a failed test.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Stops the server (for tests of a server that goes away).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A throwaway CA and a leaf for `localhost` and 127.0.0.1 (rustls refuses
/// a CA certificate as the server's, and needs the SAN).
fn write_certificates(tls: &Path, certificate: ServerCertificate) {
    let openssl = |args: &[&str]| run(Command::new("openssl").current_dir(tls).args(args));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "3650",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=Mailscribe Fixture CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    let names = match certificate {
        ServerCertificate::WrongName => "DNS:imap.other.example",
        _ => "DNS:localhost,IP:127.0.0.1",
    };
    std::fs::write(
        tls.join("leaf.ext"),
        format!(
            "subjectAltName={names}\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .expect("leaf.ext");
    // A negative validity gives a certificate that expired a day ago.
    let days = if certificate == ServerCertificate::Expired {
        "-1"
    } else {
        "3650"
    };
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        days,
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
}
