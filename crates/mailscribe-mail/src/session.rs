//! A logged-in session and the commands the worker and the checks need.

use std::collections::HashMap;
use std::time::Duration;

use async_imap::imap_proto::rfc4315::UidSetMember;
use async_imap::imap_proto::{
    AttributeValue, MailboxDatum, NameAttribute, Outcome, RequestId, Response, ResponseCode, Status,
};
use chrono::{DateTime, Utc};
use tokio::time::error::Elapsed;
use tokio::time::{Instant, timeout, timeout_at};

use crate::batch::{MessageSummary, uid_set};
use crate::connect::{BoxIo, capability_names, open};
use crate::folder::FolderInfo;
use crate::{ConnectionConfig, MailError, Result};

/// A selected folder's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectedFolder {
    pub uid_validity: u32,
    pub exists: u32,
    /// The server opened the folder read-only (`[READ-ONLY]`).
    pub read_only: bool,
}

/// One message as fetched.
#[derive(Debug, Clone)]
pub struct FetchedMessage {
    pub uid: u32,
    /// `BODY.PEEK[]`: the bytes as the server returns them. `None` when the
    /// server listed the message but did not return its content.
    pub raw: Option<Vec<u8>>,
    pub internal_date: Option<DateTime<Utc>>,
    pub draft: bool,
    pub size: Option<u64>,
}

/// Where moved messages landed, from COPYUID (RFC 4315) when the server
/// sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MoveOutcome {
    pub dest_uid_validity: Option<u32>,
    /// (UID in the source folder, UID in the destination folder).
    pub mapping: Vec<(u32, u32)>,
}

pub struct Session {
    inner: async_imap::Session<BoxIo>,
    capabilities: Vec<String>,
    config: ConnectionConfig,
    /// Set when a command was cut off; the session cannot be used again.
    broken: bool,
    certificate: Option<crate::ServerCertificate>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.config.host)
            .finish_non_exhaustive()
    }
}

/// Quotes a mailbox name for a command (RFC 3501 `quoted`).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The inverse of `quote`: imap-proto leaves escapes in quoted strings.
fn unquote(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut escaped = false;
    for c in name.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

fn expand(members: &[UidSetMember]) -> Vec<u32> {
    members
        .iter()
        .flat_map(|m| match m {
            UidSetMember::Uid(uid) => *uid..=*uid,
            UidSetMember::UidRange(range) => range.clone(),
        })
        .collect()
}

/// The outcome of the command tagged `tag` when `response` is its tagged
/// answer: NO and BAD become `Refused`.
pub(crate) fn tagged_completion(
    response: &Response<'_>,
    tag: &RequestId,
    label: &str,
) -> Option<Result<()>> {
    let Response::Done {
        tag: done,
        status,
        outcome,
    } = response
    else {
        return None;
    };
    if done != tag {
        return None;
    }
    Some(match status {
        Status::Ok => Ok(()),
        _ => Err(MailError::Refused {
            command: label.to_owned(),
            text: outcome
                .information
                .as_deref()
                .unwrap_or("(no text)")
                .to_owned(),
        }),
    })
}

fn parse_internal_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text.trim(), "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// A probe message for the writability check; never put in the queue.
fn probe_message(token: &str) -> Vec<u8> {
    format!(
        "From: Mailscribe <check@mailscribe.invalid>\r\nTo: check@mailscribe.invalid\r\n\
         Subject: Mailscribe write check\r\nX-Mailscribe-Probe: {token}\r\n\
         Message-ID: <{token}@mailscribe.invalid>\r\n\r\nThis message is deleted right after it is written.\r\n"
    )
    .into_bytes()
}

impl Session {
    pub async fn connect(config: &ConnectionConfig) -> Result<Session> {
        let (inner, certificate) = open(config).await?;
        let mut session = Session {
            inner,
            capabilities: Vec::new(),
            config: config.clone(),
            broken: false,
            certificate,
        };
        let mut capabilities = Vec::new();
        session
            .command("CAPABILITY", "CAPABILITY", |response| {
                if let Response::Capabilities(caps) = response {
                    capabilities = capability_names(caps);
                }
            })
            .await?;
        session.capabilities = capabilities;
        Ok(session)
    }

    /// The server's verified certificate, when the connection uses TLS.
    pub fn certificate(&self) -> Option<&crate::ServerCertificate> {
        self.certificate.as_ref()
    }

    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(name))
            && !self
                .config
                .ignore_capabilities
                .iter()
                .any(|c| c.eq_ignore_ascii_case(name))
    }

    fn supports_move(&self) -> bool {
        self.has_capability("MOVE")
    }

    /// Sends one command and reads responses until its tagged answer,
    /// handing every response to `on_response`. NO and BAD become
    /// `Refused`; a closed connection becomes `ConnectionLost`.
    async fn command(
        &mut self,
        label: &str,
        command: &str,
        mut on_response: impl FnMut(&Response<'_>),
    ) -> Result<()> {
        let tag = self.send_command(label, command).await?;
        loop {
            let completion = self
                .next_answer(label, |response| {
                    log_notice(label, response);
                    on_response(response);
                    tagged_completion(response, &tag, label)
                })
                .await?;
            if let Some(result) = completion {
                return result;
            }
        }
    }

    /// Sends a tagged command without reading its answer, within the
    /// command timeout.
    pub(crate) async fn send_command(&mut self, label: &str, command: &str) -> Result<RequestId> {
        if self.broken {
            return Err(MailError::ConnectionLost(label.to_owned()));
        }
        let sent = timeout(self.config.timeout, self.inner.run_command(command)).await;
        self.after_send(label, sent)
    }

    /// Sends a line without a tag (the `DONE` that ends IDLE), by
    /// `deadline`.
    pub(crate) async fn send_untagged(
        &mut self,
        label: &str,
        line: &str,
        deadline: Instant,
    ) -> Result<()> {
        if self.broken {
            return Err(MailError::ConnectionLost(label.to_owned()));
        }
        let sent = timeout_at(deadline, self.inner.run_command_untagged(line)).await;
        self.after_send(label, sent)
    }

    fn after_send<T>(
        &mut self,
        label: &str,
        sent: std::result::Result<async_imap::error::Result<T>, Elapsed>,
    ) -> Result<T> {
        match sent {
            Ok(Ok(value)) => Ok(value),
            Err(_) => {
                self.broken = true;
                Err(MailError::Timeout(label.to_owned()))
            }
            Ok(Err(_)) => {
                self.broken = true;
                Err(MailError::ConnectionLost(label.to_owned()))
            }
        }
    }

    /// Reads the next response and hands it to `read`; `Ok(None)` when
    /// `deadline` passes first. The session stays usable after a deadline:
    /// async-imap keeps partly read data in its own buffer, so a read cut
    /// short (or a future dropped mid-read) loses nothing. A closed
    /// connection or a BYE is `ConnectionLost`, an unreadable response
    /// `Protocol`; both leave the session broken.
    pub(crate) async fn next_response<T>(
        &mut self,
        label: &str,
        deadline: Instant,
        read: impl FnOnce(&Response<'_>) -> T,
    ) -> Result<Option<T>> {
        if self.broken {
            return Err(MailError::ConnectionLost(label.to_owned()));
        }
        let response = match timeout_at(deadline, self.inner.read_response()).await {
            Err(_) => return Ok(None),
            Ok(Err(err)) => {
                self.broken = true;
                return Err(match err.kind() {
                    std::io::ErrorKind::Other | std::io::ErrorKind::InvalidData => {
                        MailError::Protocol {
                            command: label.to_owned(),
                            detail: err.to_string(),
                        }
                    }
                    _ => MailError::ConnectionLost(label.to_owned()),
                });
            }
            Ok(Ok(None)) => {
                self.broken = true;
                return Err(MailError::ConnectionLost(label.to_owned()));
            }
            Ok(Ok(Some(response))) => response,
        };
        let parsed = response.parsed();
        let value = read(parsed);
        if let Response::Data {
            status: Status::Bye,
            ..
        } = parsed
        {
            self.broken = true;
            return Err(MailError::ConnectionLost(label.to_owned()));
        }
        Ok(Some(value))
    }

    /// `next_response` within the command timeout: a server silent for
    /// that long leaves the session broken.
    pub(crate) async fn next_answer<T>(
        &mut self,
        label: &str,
        read: impl FnOnce(&Response<'_>) -> T,
    ) -> Result<T> {
        let deadline = Instant::now() + self.config.timeout;
        match self.next_response(label, deadline, read).await? {
            Some(value) => Ok(value),
            None => {
                self.broken = true;
                Err(MailError::Timeout(label.to_owned()))
            }
        }
    }

    /// `ConnectionConfig::timeout`: the longest wait for one answer.
    pub(crate) fn command_timeout(&self) -> Duration {
        self.config.timeout
    }

    /// Marks the session unusable, for a caller that lost track of where
    /// the conversation with the server stands.
    pub(crate) fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Every folder of the server, namespaces included.
    pub async fn list_folders(&mut self) -> Result<Vec<FolderInfo>> {
        let mut folders = Vec::new();
        self.command("LIST", "LIST \"\" \"*\"", |response| {
            if let Response::MailboxData(MailboxDatum::List(list)) = response {
                let raw_name = unquote(&list.name);
                let delimiter = list.delimiter.as_deref().map(unquote).and_then(|d| d.chars().next());
                let selectable = !list.name_attributes.iter().any(|a| {
                    *a == NameAttribute::NoSelect
                        || matches!(a, NameAttribute::Extension(e) if e.eq_ignore_ascii_case("\\NonExistent"))
                });
                folders.push(FolderInfo::new(raw_name, delimiter, selectable));
            }
        })
        .await?;
        Ok(folders)
    }

    /// The server's folder for a path written as users write it
    /// (`Public Folders/Email Logging/Queue`), whatever the delimiter.
    pub async fn resolve_folder(&mut self, user_path: &str) -> Result<FolderInfo> {
        let folders = self.list_folders().await?;
        if let Some(found) = folders
            .iter()
            .find(|f| f.selectable && f.matches(user_path))
        {
            return Ok(found.clone());
        }
        Err(MailError::FolderNotFound {
            folder: user_path.to_owned(),
            available: folders
                .iter()
                .filter(|f| f.selectable)
                .map(|f| f.display_name.clone())
                .collect(),
        })
    }

    async fn open_folder(&mut self, verb: &str, folder: &FolderInfo) -> Result<SelectedFolder> {
        let mut uid_validity = None;
        let mut exists = 0;
        let mut read_only = verb == "EXAMINE";
        self.command(
            verb,
            &format!("{verb} {}", quote(&folder.raw_name)),
            |response| match response {
                Response::Data {
                    status: Status::Ok,
                    outcome,
                }
                | Response::Done {
                    status: Status::Ok,
                    outcome,
                    ..
                } => match outcome.code {
                    Some(ResponseCode::UidValidity(v)) => uid_validity = Some(v),
                    Some(ResponseCode::ReadOnly) => read_only = true,
                    _ => {}
                },
                Response::MailboxData(MailboxDatum::Exists(n)) => exists = *n,
                _ => {}
            },
        )
        .await?;
        let uid_validity = uid_validity.ok_or_else(|| MailError::Protocol {
            command: verb.to_owned(),
            detail: "no UIDVALIDITY in the answer".into(),
        })?;
        Ok(SelectedFolder {
            uid_validity,
            exists,
            read_only,
        })
    }

    pub async fn select(&mut self, folder: &FolderInfo) -> Result<SelectedFolder> {
        self.open_folder("SELECT", folder).await
    }

    pub async fn examine(&mut self, folder: &FolderInfo) -> Result<SelectedFolder> {
        self.open_folder("EXAMINE", folder).await
    }

    /// UIDs and sizes of every message in the selected folder, in UID order.
    pub async fn list_messages(&mut self, selected: SelectedFolder) -> Result<Vec<MessageSummary>> {
        if selected.exists == 0 {
            return Ok(Vec::new());
        }
        let mut messages = Vec::new();
        self.command(
            "UID FETCH (listing)",
            "UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE)",
            |response| {
                if let Response::Fetch(_, attributes) = response {
                    let mut uid = None;
                    let mut size = 0u64;
                    let mut internal_date = None;
                    for attribute in attributes {
                        match attribute {
                            AttributeValue::Uid(u) => uid = Some(*u),
                            AttributeValue::Rfc822Size(s) => size = u64::from(*s),
                            AttributeValue::InternalDate(d) => {
                                internal_date = parse_internal_date(d)
                            }
                            _ => {}
                        }
                    }
                    if let Some(uid) = uid {
                        messages.push(MessageSummary {
                            uid,
                            size,
                            internal_date,
                        });
                    }
                }
            },
        )
        .await?;
        messages.sort_by_key(|m| m.uid);
        messages.dedup_by_key(|m| m.uid);
        Ok(messages)
    }

    /// Fetches the given UIDs in one command. Messages that vanished in the
    /// meantime are simply absent from the result.
    pub async fn fetch(&mut self, uids: &[u32]) -> Result<Vec<FetchedMessage>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        // A message may arrive in several FETCH responses; merge them by
        // UID (servers send it in every response to UID FETCH; the sequence
        // number is the fallback, and it shifts when an EXPUNGE arrives).
        let mut by_uid: HashMap<u32, FetchedMessage> = HashMap::new();
        let mut uid_of_sequence: HashMap<u32, u32> = HashMap::new();
        let command = format!(
            "UID FETCH {} (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])",
            uid_set(uids)
        );
        self.command("UID FETCH", &command, |response| {
            let (sequence, attributes) = match response {
                Response::Fetch(sequence, attributes) => (sequence, attributes),
                Response::Expunge(_) => {
                    uid_of_sequence.clear();
                    return;
                }
                _ => return,
            };
            let uid = attributes
                .iter()
                .find_map(|a| {
                    if let AttributeValue::Uid(uid) = a {
                        Some(*uid)
                    } else {
                        None
                    }
                })
                .or_else(|| uid_of_sequence.get(sequence).copied());
            let Some(uid) = uid else { return };
            uid_of_sequence.insert(*sequence, uid);
            let message = by_uid.entry(uid).or_insert(FetchedMessage {
                uid,
                raw: None,
                internal_date: None,
                draft: false,
                size: None,
            });
            for attribute in attributes {
                match attribute {
                    AttributeValue::Flags(flags) => {
                        message.draft = flags.iter().any(|f| f.eq_ignore_ascii_case("\\Draft"));
                    }
                    AttributeValue::InternalDate(date) => {
                        message.internal_date = parse_internal_date(date)
                    }
                    AttributeValue::Rfc822Size(size) => message.size = Some(u64::from(*size)),
                    AttributeValue::BodySection {
                        section: None,
                        data,
                        ..
                    }
                    | AttributeValue::Rfc822(data) => {
                        message.raw = data.as_ref().map(|d| d.to_vec());
                    }
                    _ => {}
                }
            }
        })
        .await?;
        let mut messages: Vec<FetchedMessage> = by_uid
            .into_values()
            .filter(|m| uids.contains(&m.uid))
            .collect();
        messages.sort_by_key(|m| m.uid);
        Ok(messages)
    }

    /// Moves UIDs of the selected folder to `dest`: UID MOVE (RFC 6851), or
    /// UID COPY + `\Deleted` + UID EXPUNGE where MOVE is missing.
    pub async fn move_messages(&mut self, uids: &[u32], dest: &FolderInfo) -> Result<MoveOutcome> {
        if uids.is_empty() {
            return Ok(MoveOutcome::default());
        }
        let set = uid_set(uids);
        let verb = if self.supports_move() {
            "UID MOVE"
        } else {
            "UID COPY"
        };
        let mut outcome = MoveOutcome::default();
        self.command(
            verb,
            &format!("{verb} {set} {}", quote(&dest.raw_name)),
            |response| {
                let code = match response {
                    Response::Data {
                        status: Status::Ok,
                        outcome,
                    }
                    | Response::Done {
                        status: Status::Ok,
                        outcome,
                        ..
                    } => &outcome.code,
                    _ => return,
                };
                if let Some(ResponseCode::CopyUid(validity, source, destination)) = code {
                    outcome.dest_uid_validity = Some(*validity);
                    outcome
                        .mapping
                        .extend(expand(source).into_iter().zip(expand(destination)));
                }
            },
        )
        .await?;
        if verb == "UID COPY" {
            self.delete_messages(uids).await?;
        }
        Ok(outcome)
    }

    /// Deletes UIDs of the selected folder: `mark_deleted`, then `expunge`.
    pub async fn delete_messages(&mut self, uids: &[u32]) -> Result<()> {
        self.mark_deleted(uids).await?;
        self.expunge(uids).await
    }

    /// Sets `\Deleted` on UIDs of the selected folder. Cheap next to an
    /// expunge, which on some servers (Dovecot's maildir) costs in
    /// proportion to the folder: a run marks batch by batch and expunges
    /// once.
    pub async fn mark_deleted(&mut self, uids: &[u32]) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        self.command(
            "UID STORE",
            &format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"),
            |_| {},
        )
        .await
    }

    /// Removes UIDs marked `\Deleted`: UID EXPUNGE (RFC 4315), so that no
    /// other message marked deleted goes too.
    pub async fn expunge(&mut self, uids: &[u32]) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        if self.has_capability("UIDPLUS") {
            for chunk in uids.chunks(1000) {
                self.command(
                    "UID EXPUNGE",
                    &format!("UID EXPUNGE {}", uid_set(chunk)),
                    |_| {},
                )
                .await?;
            }
            return Ok(());
        }
        // A plain EXPUNGE removes every message marked deleted, including
        // ones someone else marked and Mailscribe has not decided: unmark
        // those for the moment, and mark them again afterwards.
        let mut marked = Vec::new();
        self.command("UID SEARCH", "UID SEARCH DELETED", |response| {
            if let Response::MailboxData(MailboxDatum::Search(found)) = response {
                marked.extend_from_slice(found);
            }
        })
        .await?;
        let others: Vec<u32> = marked
            .into_iter()
            .filter(|uid| !uids.contains(uid))
            .collect();
        let others_set = uid_set(&others);
        if !others.is_empty() {
            self.command(
                "UID STORE",
                &format!("UID STORE {others_set} -FLAGS.SILENT (\\Deleted)"),
                |_| {},
            )
            .await?;
        }
        self.command("EXPUNGE", "EXPUNGE", |_| {}).await?;
        if !others.is_empty() {
            self.command(
                "UID STORE",
                &format!("UID STORE {others_set} +FLAGS.SILENT (\\Deleted)"),
                |_| {},
            )
            .await?;
        }
        Ok(())
    }

    /// Appends a message (used by tests and the writability probe).
    pub async fn append(
        &mut self,
        folder: &FolderInfo,
        raw: &[u8],
        flags: Option<&str>,
    ) -> Result<()> {
        if self.broken {
            return Err(MailError::ConnectionLost("APPEND".into()));
        }
        match timeout(
            self.config.timeout,
            self.inner.append(&folder.raw_name, flags, None, raw),
        )
        .await
        {
            Err(_) => {
                self.broken = true;
                Err(MailError::Timeout("APPEND".into()))
            }
            Ok(Ok(())) => Ok(()),
            Ok(Err(async_imap::error::Error::Io(_) | async_imap::error::Error::ConnectionLost)) => {
                self.broken = true;
                Err(MailError::ConnectionLost("APPEND".into()))
            }
            Ok(Err(err)) => Err(MailError::Refused {
                command: "APPEND".into(),
                text: err.to_string(),
            }),
        }
    }

    /// MYRIGHTS (RFC 4314) on a folder, as rights letters; `None` when the
    /// server has no ACL extension.
    pub async fn my_rights(&mut self, folder: &FolderInfo) -> Result<Option<String>> {
        if !self.has_capability("ACL") {
            return Ok(None);
        }
        let mut rights = String::new();
        self.command(
            "MYRIGHTS",
            &format!("MYRIGHTS {}", quote(&folder.raw_name)),
            |response| {
                if let Response::MyRights(my) = response {
                    rights = my.rights.iter().map(|r| char::from(*r)).collect();
                }
            },
        )
        .await?;
        Ok(Some(rights))
    }

    /// UIDs of the selected folder whose header `name` contains `value`.
    /// Which of `uids` are still in the selected folder.
    pub async fn existing_uids(&mut self, uids: &[u32]) -> Result<Vec<u32>> {
        let mut found = Vec::new();
        for chunk in uids.chunks(1000) {
            self.command(
                "UID SEARCH",
                &format!("UID SEARCH UID {}", uid_set(chunk)),
                |response| {
                    if let Response::MailboxData(MailboxDatum::Search(uids)) = response {
                        found.extend_from_slice(uids);
                    }
                },
            )
            .await?;
        }
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    pub async fn search_header(&mut self, name: &str, value: &str) -> Result<Vec<u32>> {
        let mut found = Vec::new();
        self.command(
            "UID SEARCH",
            &format!("UID SEARCH HEADER {} {}", quote(name), quote(value)),
            |response| {
                if let Response::MailboxData(MailboxDatum::Search(uids)) = response {
                    found.extend_from_slice(uids);
                }
            },
        )
        .await?;
        found.sort_unstable();
        Ok(found)
    }

    /// Proves that `folder` takes new messages and lets them be removed:
    /// appends a probe, finds it, deletes it. Leaves `folder` selected.
    pub async fn probe_writable(&mut self, folder: &FolderInfo, token: &str) -> Result<()> {
        self.append(folder, &probe_message(token), None).await?;
        self.select(folder).await?;
        let mut found = Vec::new();
        self.command(
            "UID SEARCH",
            &format!("UID SEARCH HEADER X-Mailscribe-Probe {}", quote(token)),
            |response| {
                if let Response::MailboxData(MailboxDatum::Search(uids)) = response {
                    found.extend_from_slice(uids);
                }
            },
        )
        .await?;
        if found.is_empty() {
            return Err(MailError::Protocol {
                command: "the write check".into(),
                detail: "the probe message was appended but cannot be found".into(),
            });
        }
        self.delete_messages(&found).await
    }

    pub async fn logout(mut self) {
        if !self.broken {
            let _ = self.command("LOGOUT", "LOGOUT", |_| {}).await;
        }
    }
}

/// Logs a plain untagged `OK` (no response code) that arrives during a
/// command: servers use it to say why a command takes long, such as
/// Dovecot's "Stale mailbox lock file detected, will override in 90
/// seconds" after a crash, which holds a mailbox for two minutes. Each one
/// also restarts the command timeout, so the log is where a stall shows.
fn log_notice(label: &str, response: &Response<'_>) {
    if let Response::Data {
        status: Status::Ok,
        outcome: Outcome {
            code: None,
            information: Some(text),
        },
    } = response
    {
        tracing::info!(command = label, notice = %text, "the mail server says");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips() {
        for name in [
            "plain",
            "with \"quotes\"",
            "back\\slash",
            "Public Folders/Email Logging/Queue",
        ] {
            let quoted = quote(name);
            assert_eq!(unquote(&quoted[1..quoted.len() - 1]), name);
        }
    }

    #[test]
    fn internal_dates() {
        let parsed = parse_internal_date("17-Jul-1996 02:44:25 -0700").unwrap();
        assert_eq!(parsed.to_rfc3339(), "1996-07-17T09:44:25+00:00");
        assert!(parse_internal_date(" 7-Jul-1996 02:44:25 +0000").is_some());
        assert!(parse_internal_date("garbage").is_none());
    }
}
