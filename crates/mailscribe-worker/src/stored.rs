//! Opening a logged message in `reference` storage mode: it lies in the
//! storage folder, found by the UID recorded after the move, or else by its
//! Message-ID (the UID was never recorded, or UIDVALIDITY changed).

use mailscribe_mail::{ConnectionConfig, MailError, Session};
use mailscribe_store::MessageRecord;

/// How many messages a Message-ID search may offer before we give up: a
/// crafted folder full of look-alikes must not make one page view fetch
/// them all.
const MAX_CANDIDATES: usize = 20;

/// Whether the message's own Message-ID, normalised, is exactly `wanted`.
pub(crate) fn same_message_id(raw: &[u8], wanted: &mailscribe_core::MessageId) -> bool {
    mailscribe_core::parse_message(raw)
        .message_id
        .is_some_and(|found| found.normalised() == wanted.normalised())
}

/// The message's bytes, or `None` when the mail server no longer has it.
pub async fn fetch_stored_message(
    connection: &ConnectionConfig,
    storage_folder: &str,
    record: &MessageRecord,
) -> Result<Option<Vec<u8>>, MailError> {
    let mut session = Session::connect(connection).await?;
    let folder = session
        .resolve_folder(record.storage_folder.as_deref().unwrap_or(storage_folder))
        .await?;
    let selected = session.examine(&folder).await?;
    let recorded = match (record.storage_uid_validity, record.storage_uid) {
        (Some(validity), Some(uid)) if validity == i64::from(selected.uid_validity) => {
            u32::try_from(uid).ok()
        }
        _ => None,
    };
    let mut found = None;
    if let Some(uid) = recorded {
        found = session
            .fetch(&[uid])
            .await?
            .into_iter()
            .next()
            .and_then(|m| m.raw);
    }
    if found.is_none()
        && let Some(wanted) = record
            .message_id
            .as_deref()
            .and_then(mailscribe_core::MessageId::parse)
    {
        // SEARCH HEADER matches substrings (RFC 3501, 6.4.4): `<a@x>` also
        // finds `<ba@x>`. Only a message whose own normalised Message-ID
        // equals the entry's is the entry's message; a look-alike never is.
        let uids = session
            .search_header("Message-ID", wanted.normalised())
            .await?;
        for uid in uids.into_iter().take(MAX_CANDIDATES) {
            let Some(raw) = session
                .fetch(&[uid])
                .await?
                .into_iter()
                .next()
                .and_then(|m| m.raw)
            else {
                continue;
            };
            if same_message_id(&raw, &wanted) {
                found = Some(raw);
                break;
            }
        }
    }
    session.logout().await;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_message_id_is_the_entrys_message() {
        let wanted = mailscribe_core::MessageId::parse("<a@x.example>").unwrap();
        let message = |id: &str| {
            format!("Message-ID: {id}\r\nFrom: a@x.example\r\nSubject: s\r\n\r\nbody\r\n")
                .into_bytes()
        };
        assert!(same_message_id(&message("<a@x.example>"), &wanted));
        assert!(
            same_message_id(&message(" <a@x.example> (comment)"), &wanted),
            "normalised"
        );
        assert!(
            !same_message_id(&message("<ba@x.example>"), &wanted),
            "a substring is not the message"
        );
        assert!(!same_message_id(&message("<a@x.example.evil>"), &wanted));
        assert!(
            !same_message_id(&message("<A@X.example>"), &wanted),
            "comparison is case-sensitive"
        );
        assert!(!same_message_id(b"Subject: none\r\n\r\n", &wanted));
    }
}
