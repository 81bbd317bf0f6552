//! Opening a logged message in `reference` storage mode: it lies in the
//! storage folder, found by the UID recorded after the move, or else by its
//! Message-ID (the UID was never recorded, or UIDVALIDITY changed).

use mailscribe_mail::{ConnectionConfig, MailError, Session};
use mailscribe_store::MessageRecord;

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
    if found.is_none() {
        if let Some(message_id) = &record.message_id {
            let uids = session
                .search_header("Message-ID", message_id.trim())
                .await?;
            if let Some(uid) = uids.first() {
                found = session
                    .fetch(&[*uid])
                    .await?
                    .into_iter()
                    .next()
                    .and_then(|m| m.raw);
            }
        }
    }
    session.logout().await;
    Ok(found)
}
