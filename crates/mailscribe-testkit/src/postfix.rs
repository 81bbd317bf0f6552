//! A private Postfix as the stand-in for a mail flow rule (an Exchange
//! transport rule "Bcc the message to the logging mailbox"), configured with
//! the mail-server guide's own `packaging/postfix-dovecot/main.cf`: mail sent
//! by or to the inside domain is BCC'd to the queue recipient and handed over
//! the LMTP socket to the Dovecot fixture running the guide's Dovecot file,
//! whose Sieve script files it into the public Queue; every other delivery is
//! discarded. The guide and the test therefore cannot drift apart.
//!
//! Postfix needs root to start (its master drops to the `postfix` user);
//! there is no foreground mode that keeps its queue managers in our hands,
//! so the fixture starts it with `postfix -c DIR/etc start` and waits for
//! the master to exit after `postfix -c DIR/etc stop`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::dovecot::Dovecot;

/// The address the guide's `main.cf` copies mail to; its Sieve script
/// files mail for `queue@...` into the public Queue.
pub const QUEUE_RECIPIENT: &str = "queue@logging.ourco.example";

/// The domain whose mail the guide's `main.cf` copies.
pub const INSIDE_DOMAIN: &str = "ourco.example";

pub struct Postfix {
    dir: tempfile::TempDir,
    pub smtp_port: u16,
}

/// A Postfix's directories, made before the Dovecot it delivers to starts:
/// Dovecot creates the LMTP socket in the queue directory's `private/`.
pub struct PostfixDirs {
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

impl Default for PostfixDirs {
    fn default() -> Self {
        Self::new()
    }
}

impl PostfixDirs {
    pub fn new() -> PostfixDirs {
        assert!(
            Path::new("/usr/sbin/postfix").exists() && is_root(),
            "the Postfix test needs Postfix installed and root to start it: run `bash scripts/test.sh` as root \
             (it installs Postfix unconfigured and runs the tests)"
        );
        let dir = tempfile::Builder::new()
            .prefix("mailscribe-postfix-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path();
        // The daemons run as `postfix` and must reach the queue below it.
        run(Command::new("chmod").arg("0755").arg(root));
        for sub in ["etc", "spool/private", "data"] {
            std::fs::create_dir_all(root.join(sub)).expect("fixture dirs");
        }
        run(Command::new("chown")
            .arg("postfix")
            .arg(root.join("data"))
            .arg(root.join("spool/private")));
        run(Command::new("chmod")
            .arg("0700")
            .arg(root.join("spool/private")));
        PostfixDirs { dir }
    }

    /// Postfix's `queue_directory`, the `/var/spool/postfix` of the guide.
    pub fn queue_directory(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// Starts a Postfix on a free loopback SMTP port with the guide's
    /// `packaging/postfix-dovecot/main.cf` unchanged (mail from or to
    /// `INSIDE_DOMAIN` BCC'd to `QUEUE_RECIPIENT` over the LMTP socket of
    /// `dovecot`, started with `lmtp_for_postfix` on this queue directory),
    /// below settings that only make it a private loopback instance that
    /// discards every other delivery. Returns once the SMTP port answers
    /// with its 220 greeting.
    pub fn start(self, dovecot: &Dovecot) -> Postfix {
        assert_eq!(
            dovecot.lmtp_socket.as_deref(),
            Some(
                self.queue_directory()
                    .join("private/dovecot-lmtp")
                    .as_path()
            ),
            "the Postfix fixture needs a Dovecot started with `lmtp_for_postfix: Some(dirs.queue_directory())`"
        );
        let PostfixDirs { dir } = self;
        let root = dir.path();
        let guide_main_cf = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/postfix-dovecot/main.cf"),
        )
        .expect("the guide's packaging/postfix-dovecot/main.cf");
        // Debian's pristine master.cf; /etc/postfix has none until configured.
        let master_cf = [
            "/usr/share/postfix/master.cf.dist",
            "/etc/postfix/master.cf",
        ]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .expect("Postfix's master.cf (/usr/share/postfix/master.cf.dist)");
        std::fs::copy(master_cf, root.join("etc/master.cf")).expect("copy master.cf");
        let smtp_port = free_port();
        std::fs::write(
            root.join("etc/main.cf"),
            format!(
                r#"compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.fixture.test
mydomain = fixture.test
myorigin = $mydomain
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination =
local_recipient_maps =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
biff = no
smtputf8_enable = no
smtp_dns_support_level = disabled
default_transport = discard:delivery outside the logging queue is not part of the fixture
{guide_main_cf}"#,
                root = root.display(),
            ),
        )
        .expect("main.cf");
        let etc = root.join("etc");
        let postconf = |args: &[&str]| {
            run(Command::new("/usr/sbin/postconf")
                .arg("-c")
                .arg(&etc)
                .args(args))
        };
        // No listener on port 25: only our own loopback port, and no chroot
        // (the queue is not under /var/spool/postfix).
        postconf(&["-M#", "smtp/inet"]);
        postconf(&[
            "-Me",
            &format!("127.0.0.1:{smtp_port}/inet = 127.0.0.1:{smtp_port} inet n - n - - smtpd"),
        ]);
        postconf(&["-F", "*/*/chroot = n"]);
        postconf(&[
            "-Me",
            "postlog/unix-dgram = postlog unix-dgram n - n - 1 postlogd",
        ]);
        let postfix = Postfix { dir, smtp_port };
        // Postfix says nothing on a stderr that is not a terminal: its
        // complaints are in the maillog.
        let output = postfix
            .command("check")
            .output()
            .expect("run postfix check");
        assert!(
            output.status.success(),
            "postfix check failed; maillog:\n{}",
            postfix.maillog()
        );
        let output = postfix
            .command("start")
            .output()
            .expect("run postfix start");
        assert!(
            output.status.success(),
            "postfix start failed; maillog:\n{}",
            postfix.maillog()
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match postfix.greeting() {
                Ok(line) if line.starts_with("220 ") => break,
                Ok(line) => panic!(
                    "Postfix greeted with {line:?}; maillog:\n{}",
                    postfix.maillog()
                ),
                Err(err) => assert!(
                    Instant::now() < deadline,
                    "Postfix did not answer on 127.0.0.1:{smtp_port} within 60 s ({err}); maillog:\n{}",
                    postfix.maillog()
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        postfix
    }
}

impl Postfix {
    fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    fn command(&self, action: &str) -> Command {
        let mut command = Command::new("/usr/sbin/postfix");
        command.arg("-c").arg(self.etc()).arg(action);
        command
    }

    fn greeting(&self) -> std::io::Result<String> {
        let stream = TcpStream::connect(("127.0.0.1", self.smtp_port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        Ok(line.trim_end().to_owned())
    }

    /// Sends `raw` (a whole message, headers and body) from `from` to `to`
    /// over SMTP, as a mail client would, and returns Postfix's queue id.
    pub fn send(&self, from: &str, to: &str, raw: &[u8]) -> String {
        let mut session = SmtpSession::connect(self.smtp_port, || self.maillog());
        session.expect("greeting", 220);
        session.command("EHLO client.fixture.test", 250);
        session.command(&format!("MAIL FROM:<{from}>"), 250);
        session.command(&format!("RCPT TO:<{to}>"), 250);
        session.command("DATA", 354);
        session.write(&dot_stuffed(raw));
        let queued = session.command(".", 250);
        session.command("QUIT", 221);
        // "250 2.0.0 Ok: queued as 4Xb1Zl3c0Bz1s".
        queued
            .rsplit(' ')
            .next()
            .map(str::to_owned)
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| panic!("no queue id in Postfix's reply {queued:?}"))
    }

    /// Waits until Postfix has finished with each queued message (delivered
    /// or discarded every copy and removed it from its queue). A message
    /// it could not deliver stays queued: the panic shows the maillog.
    pub fn wait_until_done(&self, queue_ids: &[String], timeout: Duration) {
        let removed = |log: &str| {
            queue_ids
                .iter()
                .all(|id| log.contains(&format!("{id}: removed")))
        };
        let deadline = Instant::now() + timeout;
        while !removed(&self.maillog()) {
            assert!(
                Instant::now() < deadline,
                "Postfix did not finish with {queue_ids:?} within {timeout:?}; maillog:\n{}",
                self.maillog()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Postfix's log (from its own postlogd), for assertions and failures.
    pub fn maillog(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    fn master_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir.path().join("spool/pid/master.pid")).ok()?;
        text.trim().parse().ok()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let pid = self.master_pid();
        let _ = self.command("stop").output();
        let Some(pid) = pid else { return };
        // The master was reparented to PID 1, which reaps it when it gets
        // to it: a zombie counts as gone.
        let running = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| !rest.starts_with('Z'))
            })
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if running() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
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

/// The message with CRLF line ends, lines starting with "." doubled
/// (RFC 5321 section 4.5.2), and a final line end.
fn dot_stuffed(raw: &[u8]) -> Vec<u8> {
    let mut res = Vec::with_capacity(raw.len() + 16);
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    for line in raw.split(|byte| *byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b".") {
            res.push(b'.');
        }
        res.extend_from_slice(line);
        res.extend_from_slice(b"\r\n");
    }
    res
}

/// Just enough of an SMTP client (RFC 5321) for a test: one command at a
/// time, every reply checked.
struct SmtpSession<F: Fn() -> String> {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    maillog: F,
}

impl<F: Fn() -> String> SmtpSession<F> {
    fn connect(port: u16, maillog: F) -> SmtpSession<F> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|err| panic!("cannot connect to Postfix on 127.0.0.1:{port}: {err}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("read timeout");
        let writer = stream.try_clone().expect("clone stream");
        SmtpSession {
            reader: BufReader::new(stream),
            writer,
            maillog,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.writer
            .write_all(bytes)
            .unwrap_or_else(|err| panic!("writing to Postfix failed: {err}"));
    }

    fn command(&mut self, line: &str, code: u16) -> String {
        self.write(format!("{line}\r\n").as_bytes());
        self.expect(line, code)
    }

    /// Reads one reply (its last line when it has several) and checks its code.
    fn expect(&mut self, after: &str, code: u16) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => panic!(
                    "Postfix closed the connection after {after:?}; maillog:\n{}",
                    (self.maillog)()
                ),
                Ok(_) => {}
                Err(err) => panic!(
                    "reading Postfix's reply to {after:?} failed: {err}; maillog:\n{}",
                    (self.maillog)()
                ),
            }
            reply.push_str(&line);
            // "250-..." continues the reply, "250 ..." ends it.
            if line.as_bytes().get(3) != Some(&b'-') {
                let last = line.trim_end().to_owned();
                assert!(
                    last.starts_with(&format!("{code}")),
                    "Postfix answered {after:?} with {reply:?}, expected {code}; maillog:\n{}",
                    (self.maillog)()
                );
                return last;
            }
        }
    }
}
