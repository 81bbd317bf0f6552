//! A real `mailscribe serve` for the benchmarks of the supervisor: started
//! with the production lease timings, its log kept in a file, killed and
//! reaped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::install::Env;
use crate::measure::sibling_binary;
use crate::serve::request;

/// Variables that change how `serve` schedules; the benchmarks measure the
/// defaults, so none of them may leak in from the caller's environment.
const TEST_ONLY: &[&str] = &[
    "MAILSCRIBE_LEASE_TTL_MS",
    "MAILSCRIBE_LEASE_HEARTBEAT_MS",
    "MAILSCRIBE_LEASE_SCAN_MS",
    "MAILSCRIBE_BACKOFF_BASE_MS",
    "MAILSCRIBE_BACKOFF_CAP_MS",
    "MAILSCRIBE_IDLE_REISSUE_MS",
    "MAILSCRIBE_FAILPOINT",
    "MAILSCRIBE_IGNORE_CAPABILITIES",
];

pub(crate) struct ServeProcess {
    child: Child,
    pub(crate) port: u16,
    log: PathBuf,
}

impl ServeProcess {
    /// Starts `mailscribe serve` in `dir` with `RUST_LOG=info,mailscribe_worker=debug`,
    /// appending its log to `serve-NAME.log`. With `instance_id`, the
    /// process stands for another host (`MAILSCRIBE_INSTANCE_ID`).
    pub(crate) fn start(
        env: &Env,
        dir: &Path,
        name: &str,
        instance_id: Option<&str>,
    ) -> anyhow::Result<ServeProcess> {
        ServeProcess::start_logging(env, dir, name, instance_id, "info,mailscribe_worker=debug")
    }

    /// `start` with `RUST_LOG=rust_log`.
    pub(crate) fn start_logging(
        env: &Env,
        dir: &Path,
        name: &str,
        instance_id: Option<&str>,
        rust_log: &str,
    ) -> anyhow::Result<ServeProcess> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = dir.join(format!("serve-{name}.log"));
        let log_file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut command = Command::new(sibling_binary("mailscribe")?);
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", rust_log)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(log_file);
        for variable in TEST_ONLY {
            command.env_remove(variable);
        }
        match instance_id {
            Some(id) => command.env("MAILSCRIBE_INSTANCE_ID", id),
            None => command.env_remove("MAILSCRIBE_INSTANCE_ID"),
        };
        Ok(ServeProcess {
            child: command.spawn()?,
            port,
            log,
        })
    }

    /// Whether the process has ended.
    pub(crate) fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the web server answers `/healthz`.
    pub(crate) fn wait_healthy(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while request(self.port, "GET", "/healthz", &[], "")
            .map(|r| r.0)
            .unwrap_or(0)
            != 200
        {
            if Instant::now() > deadline {
                bail!(
                    "serve did not answer /healthz within {timeout:?}; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Everything the process (and earlier processes of the same name) logged.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many log lines contain `needle`.
    pub(crate) fn count_in_log(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits until the log has more than `seen` lines containing `needle`.
    pub(crate) fn wait_for_log(
        &self,
        needle: &str,
        seen: usize,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.count_in_log(needle) <= seen {
            if Instant::now() > deadline {
                bail!(
                    "serve did not log {needle:?} within {timeout:?}; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Sends SIGKILL and reaps the process; returns the moment just before
    /// the signal was sent.
    pub(crate) fn kill(&mut self) -> anyhow::Result<Instant> {
        let sent = Instant::now();
        self.child.kill().context("SIGKILL")?;
        self.child.wait()?;
        Ok(sent)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
