//! Watching the queue in near real time with IDLE (RFC 2177), on a second
//! connection that only looks: the folder is opened with EXAMINE, so the
//! watcher changes nothing (not even `\Recent`) that the connection doing
//! the work sees.
//!
//! IDLE is spoken through the session's own raw command path rather than
//! async-imap's `Session::idle()` handle, which (in 0.12) reports a closed
//! connection as `ManualInterrupt` and a BYE as new data, restarts its
//! timeout on every `* OK Still here` keepalive (Dovecot sends one every two
//! minutes, so a 25-minute wait would never end), does not bound DONE, and
//! takes the session by value, so a wait dropped by `select!` would lose the
//! connection's state along with it.

use std::time::Duration;

use async_imap::imap_proto::{MailboxDatum, RequestId, Response};
use tokio::time::Instant;

use crate::session::{Session, tagged_completion};
use crate::{ConnectionConfig, MailError, Result};

/// What one `QueueWatcher::wait` saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEvent {
    /// The server reported new mail in the queue (an untagged EXISTS or
    /// RECENT): time to look. EXPUNGE and FETCH are not reported: a run's
    /// own moves out of the queue cause them, and waking for those would
    /// make every run cause another, empty one.
    Changed,
    /// The wait's `max` passed without a change.
    TimedOut,
}

/// A read-only connection idling on the queue, to learn of new mail
/// without polling. `None` from `start` means the server cannot IDLE and
/// the caller polls instead.
///
/// Dropping a watcher, also in the middle of `wait`, is safe: the
/// connection is simply closed. A `wait` whose future is dropped while it
/// reads (the usual case: it was idling) is resumed by the next `wait`; one
/// dropped while writing IDLE or DONE leaves the watcher unusable, and the
/// next `wait` says so with a connection error.
#[derive(Debug)]
pub struct QueueWatcher {
    session: Session,
    phase: Phase,
    /// A change was reported and no `wait` has returned `Changed` for it
    /// yet. Kept here, not in `wait`, so that a dropped wait loses none.
    change_pending: bool,
    /// Messages in the queue as the server last told: only a count above it
    /// is new mail (an EXISTS after expunges may repeat the count).
    exists: u32,
}

/// Where the IDLE exchange stands between two steps of `wait`. Every step
/// awaits one read or one write; a read can be cut off and resumed (the
/// session buffers what it has read), a write cannot.
#[derive(Debug)]
enum Phase {
    /// No IDLE runs; the connection takes commands.
    Ready,
    /// IDLE was sent; the server's `+` has not been read.
    Starting(RequestId),
    /// The server accepted IDLE and DONE has not been sent.
    Idling(RequestId),
    /// DONE was sent; the IDLE's tagged answer is due by the deadline.
    Ending(RequestId, Instant),
    /// A write of IDLE or DONE was cut off or failed: what the server has
    /// seen is unknown and the connection cannot be used.
    Interrupted,
}

/// What one response means to a watcher.
enum Seen {
    /// `+`: the server accepted IDLE.
    Continuation,
    /// A change in the folder.
    Change,
    /// The tagged answer to our IDLE.
    Completion(Result<()>),
    /// Anything else, such as Dovecot's `* OK Still here`.
    Other,
}

fn classify(response: &Response<'_>, idle_tag: &RequestId, exists: &mut u32) -> Seen {
    if let Some(result) = tagged_completion(response, idle_tag, "IDLE") {
        return Seen::Completion(result);
    }
    match response {
        Response::Continue(_) => Seen::Continuation,
        Response::MailboxData(MailboxDatum::Exists(count)) => {
            let grew = *count > *exists;
            *exists = *count;
            if grew { Seen::Change } else { Seen::Other }
        }
        Response::Expunge(_) => {
            *exists = exists.saturating_sub(1);
            Seen::Other
        }
        _ => Seen::Other,
    }
}

impl QueueWatcher {
    /// The longest one `wait` idles: RFC 2177 lets a server log off a
    /// client that idles for 30 minutes, so a longer `max` is cut to this.
    pub const MAX_WAIT: Duration = Duration::from_secs(29 * 60);

    /// Connects, finds the queue by its path as users write it, and opens
    /// it read-only. `Ok(None)` when the server does not announce IDLE
    /// (or `ConnectionConfig::ignore_capabilities` names it).
    pub async fn start(
        config: &ConnectionConfig,
        queue_path: &str,
    ) -> Result<Option<QueueWatcher>> {
        let mut session = Session::connect(config).await?;
        if !session.has_capability("IDLE") {
            session.logout().await;
            return Ok(None);
        }
        let opened = async {
            let queue = session.resolve_folder(queue_path).await?;
            session.examine(&queue).await
        }
        .await;
        let selected = match opened {
            Ok(selected) => selected,
            Err(err) => {
                session.logout().await;
                return Err(err);
            }
        };
        Ok(Some(QueueWatcher {
            session,
            phase: Phase::Ready,
            change_pending: false,
            exists: selected.exists,
        }))
    }

    /// Idles until the server reports a change in the queue or `max`
    /// (at most `MAX_WAIT`) passes, then ends the IDLE with DONE so that
    /// the connection can idle again. The command timeout does not limit
    /// the wait itself, only sending IDLE and DONE and their answers.
    ///
    /// A lost connection is an error (`is_connection()`), never `TimedOut`.
    /// A change announced while IDLE starts or while DONE is answered
    /// counts, so none slips between two waits.
    pub async fn wait(&mut self, max: Duration) -> Result<WatchEvent> {
        let deadline = Instant::now() + max.min(QueueWatcher::MAX_WAIT);
        // A DONE left unanswered by a dropped wait gets a fresh timeout.
        if let Phase::Ending(_, done_deadline) = &mut self.phase {
            *done_deadline = Instant::now() + self.session.command_timeout();
        }
        // Set once this call has idled until a change or its deadline;
        // a wait resumed halfway through ending an IDLE idles anew.
        let mut idled = false;
        loop {
            match &self.phase {
                Phase::Interrupted => {
                    self.session.mark_broken();
                    return Err(MailError::ConnectionLost("IDLE".into()));
                }
                Phase::Ready if idled || self.change_pending => {
                    let changed = std::mem::take(&mut self.change_pending);
                    return Ok(if changed {
                        WatchEvent::Changed
                    } else {
                        WatchEvent::TimedOut
                    });
                }
                // Writes: if this future is dropped halfway, the next call
                // must know not to trust the connection.
                Phase::Ready => {
                    self.phase = Phase::Interrupted;
                    let idle_tag = self.session.send_command("IDLE", "IDLE").await?;
                    self.phase = Phase::Starting(idle_tag);
                }
                Phase::Idling(idle_tag) if idled || self.change_pending => {
                    let idle_tag = idle_tag.clone();
                    self.phase = Phase::Interrupted;
                    let done_deadline = Instant::now() + self.session.command_timeout();
                    self.session
                        .send_untagged("DONE", "DONE", done_deadline)
                        .await?;
                    self.phase = Phase::Ending(idle_tag, done_deadline);
                }
                // Reads: the phase stays as it is while one runs, so that a
                // dropped wait is resumed where it stopped.
                Phase::Starting(idle_tag) => {
                    let idle_tag = idle_tag.clone();
                    match self
                        .session
                        .next_answer("IDLE", |response| {
                            classify(response, &idle_tag, &mut self.exists)
                        })
                        .await?
                    {
                        Seen::Continuation => self.phase = Phase::Idling(idle_tag),
                        Seen::Change => self.change_pending = true,
                        Seen::Completion(result) => {
                            // Answered without idling: the command is over
                            // and the connection takes the next one.
                            self.phase = Phase::Ready;
                            result?;
                            return Err(MailError::Protocol {
                                command: "IDLE".into(),
                                detail: "the server ended IDLE before accepting it".into(),
                            });
                        }
                        Seen::Other => {}
                    }
                }
                Phase::Idling(idle_tag) => {
                    let idle_tag = idle_tag.clone();
                    let seen = self.session.next_response("IDLE", deadline, |response| {
                        classify(response, &idle_tag, &mut self.exists)
                    });
                    match seen.await? {
                        None => idled = true,
                        Some(Seen::Change) => {
                            self.change_pending = true;
                            idled = true;
                        }
                        Some(Seen::Completion(result)) => {
                            // The server ended the IDLE on its own, so there
                            // is nothing to send DONE to. Look, in case that
                            // was about a change.
                            self.phase = Phase::Ready;
                            result?;
                            self.change_pending = false;
                            return Ok(WatchEvent::Changed);
                        }
                        Some(Seen::Continuation | Seen::Other) => {}
                    }
                }
                Phase::Ending(idle_tag, done_deadline) => {
                    let (idle_tag, done_deadline) = (idle_tag.clone(), *done_deadline);
                    let seen = self
                        .session
                        .next_response("DONE", done_deadline, |response| {
                            classify(response, &idle_tag, &mut self.exists)
                        });
                    match seen.await? {
                        None => {
                            self.session.mark_broken();
                            return Err(MailError::Timeout("DONE".into()));
                        }
                        Some(Seen::Completion(result)) => {
                            self.phase = Phase::Ready;
                            result?;
                        }
                        Some(Seen::Change) => self.change_pending = true,
                        Some(Seen::Continuation | Seen::Other) => {}
                    }
                }
            }
        }
    }

    /// Ends an IDLE still running, then logs out. Best effort: errors are
    /// ignored, as the connection is being given up anyway.
    pub async fn logout(mut self) {
        if !matches!(self.phase, Phase::Ready) {
            // With no time left to wait, this only finishes the exchange.
            let _ = self.wait(Duration::ZERO).await;
        }
        if matches!(self.phase, Phase::Ready) {
            self.session.logout().await;
        }
    }
}
