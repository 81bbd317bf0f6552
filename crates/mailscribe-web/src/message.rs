//! Opening a logged message: from the store (`full` mode) or from the
//! storage folder on the mail server (`reference` mode). Message content is
//! hostile input: the HTML body is sanitised (ammonia), shown in a sandboxed
//! iframe without scripts, and the page's Content-Security-Policy forbids
//! remote content as a second layer. Attachments download as attachments.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use mailscribe_core::message_view::{
    AttachmentInfo, InlineImage, read_attachment, read_message, safe_file_name,
};
use mailscribe_store::MessageRecord;

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::{ErrorKind, PageError};
use crate::pages::visible_entry;

/// Where `reference`-mode messages are read from: the mail server. The
/// binary provides it (the web crate knows no IMAP).
pub trait MessageSource: Send + Sync {
    fn fetch<'a>(&'a self, record: &'a MessageRecord) -> FetchedRaw<'a>;
}

/// The raw message a `MessageSource` reads (`None` when the server no
/// longer has it), or why it could not.
pub type FetchedRaw<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>, String>> + Send + 'a>>;

/// What the page's CSP allows: nothing remote, no scripts at all.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'self'; \
                   base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Only what a reader needs; no scripts, no forms, no remote images.
/// `cid:` images of the message itself are shown, as `data:` URLs of the
/// raster parts read from the message (never fetched from anywhere).
fn sanitise(html: &str, inline: &[InlineImage]) -> String {
    let images: HashMap<String, String> = inline
        .iter()
        .map(|image| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&image.bytes);
            (
                image.content_id.to_ascii_lowercase(),
                format!("data:{};base64,{encoded}", image.content_type),
            )
        })
        .collect();
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(HashSet::from(["http", "https", "mailto", "cid"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(
            move |element, attribute, value| match (element, attribute) {
                // No remote image is loaded: it is a tracking pixel until
                // proven otherwise. Only the message's own parts are shown.
                ("img", "src") => value
                    .get(..4)
                    .filter(|scheme| scheme.eq_ignore_ascii_case("cid:"))
                    .and_then(|_| images.get(&value[4..].trim().to_ascii_lowercase()))
                    .map(|data| data.clone().into()),
                (_, "srcset" | "background" | "style") => None,
                _ => Some(value.into()),
            },
        );
    builder.clean(html).to_string()
}

async fn raw_message(
    state: &AppState,
    record: &MessageRecord,
) -> Result<(Option<Vec<u8>>, &'static str), PageError> {
    if record.has_raw {
        return Ok((
            state.store.stored_raw_message(record.id).await?,
            "Kept in Mailscribe's store (storage mode full).",
        ));
    }
    let Some(source) = &state.message_source else {
        return Err(PageError(ErrorKind::BadRequest(
            "this message is kept on the mail server, and no mailbox is configured to read it from"
                .into(),
        )));
    };
    let raw = source.fetch(record).await.map_err(|err| {
        // The server's words stay in the log: they can name hosts and users.
        tracing::warn!(message_record = record.id, error = %err, "cannot read a message from the mail server");
        PageError(ErrorKind::BadRequest(
            "the mail server could not be asked for the message; the server log says why".into(),
        ))
    })?;
    Ok((
        raw,
        "Fetched from the storage folder on the mail server (storage mode reference).",
    ))
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    user_name: String,
    role: String,
    csrf: String,
    entry_no: i64,
    source: String,
    headers: Vec<(String, String)>,
    html: Option<String>,
    text: Option<String>,
    attachments: Vec<AttachmentInfo>,
}

async fn load(
    state: &AppState,
    signed_in: &SignedIn,
    entry_no: i64,
) -> Result<(Vec<u8>, &'static str), PageError> {
    let entry = visible_entry(state, &signed_in.user, entry_no).await?;
    // An entry imported from Business Central has no message.
    let record_id = entry
        .message_record_id
        .ok_or(PageError(ErrorKind::NotFound))?;
    let record = state
        .store
        .message_record(record_id)
        .await?
        .ok_or(PageError(ErrorKind::NotFound))?;
    match raw_message(state, &record).await? {
        (Some(raw), source) => Ok((raw, source)),
        (None, _) => Err(PageError(ErrorKind::Gone(
            "the message can no longer be found: it is not in the storage folder any more (deleted or moved on the mail server)",
        ))),
    }
}

pub(crate) async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(entry_no): Path<i64>,
) -> Result<Response, PageError> {
    let (raw, source) = load(&state, &signed_in, entry_no).await?;
    // Parsing and sanitising a large message is CPU work: both run off the
    // async runtime.
    let content = tokio::task::spawn_blocking(move || {
        read_message(&raw).map(|content| {
            let html = content
                .html
                .as_deref()
                .map(|html| sanitise(html, &content.inline_images));
            (content, html)
        })
    })
    .await
    .map_err(|err| ErrorKind::Internal(err.to_string()))?;
    let (content, html) =
        content.ok_or(PageError(ErrorKind::Gone("the stored message is empty")))?;
    let page = MessagePage {
        user_name: signed_in.user.name.clone(),
        role: signed_in.user.role.to_string(),
        csrf: signed_in.csrf.clone(),
        entry_no,
        source: source.to_owned(),
        headers: content.headers,
        html,
        text: content.text,
        attachments: content.attachments,
    };
    Ok((
        [
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(page.render()?),
    )
        .into_response())
}

pub(crate) async fn attachment(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((entry_no, index)): Path<(i64, usize)>,
) -> Result<Response, PageError> {
    let (raw, _) = load(&state, &signed_in, entry_no).await?;
    let (info, bytes) = tokio::task::spawn_blocking(move || read_attachment(&raw, index))
        .await
        .map_err(|err| ErrorKind::Internal(err.to_string()))?
        .ok_or(PageError(ErrorKind::NotFound))?;
    let name = safe_file_name(&info.name);
    // Always a download of opaque bytes: an HTML or SVG attachment must
    // never render in our origin.
    let disposition = format!(
        "attachment; filename=\"{}\"",
        name.replace(|c: char| !c.is_ascii(), "_")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_owned(),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_html_is_defused() {
        let cases = [
            ("<p>hi<script>alert(1)</script></p>", "<p>hi</p>"),
            (
                "<img src=\"https://tracker.example/p.gif\" alt=\"x\">",
                "<img alt=\"x\">",
            ),
            (
                "<a href=\"javascript:alert(1)\">x</a>",
                "<a rel=\"noopener noreferrer nofollow\">x</a>",
            ),
            (
                "<p onclick=\"alert(1)\" style=\"background:url(https://t.example/x)\">y</p>",
                "<p>y</p>",
            ),
            ("<img src=\"cid:logo@x\">", "<img>"),
            (
                "<iframe src=\"https://evil.example\"></iframe><form action=\"/x\"><input></form>ok",
                "ok",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitise(input, &[]), expected, "{input}");
        }
    }

    #[test]
    fn cid_images_become_data_urls_of_the_message_s_own_parts() {
        let logo = InlineImage {
            content_id: "Logo@X".into(),
            content_type: "image/png".into(),
            bytes: b"\x89PNG".to_vec(),
        };
        let html = "<img src=\"cid:logo@x\" alt=\"logo\"><img src=\"cid:missing@x\"><img src=\"https://t.example/cid:logo@x\">";
        assert_eq!(
            sanitise(html, &[logo]),
            "<img src=\"data:image/png;base64,iVBORw==\" alt=\"logo\"><img><img>"
        );
    }
}
