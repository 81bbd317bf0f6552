//! A whole message as a reader sees it: the main headers, the text body,
//! the HTML body as sent (sanitising it is the web's job), and the
//! attachments. Only for opening a logged message; the decision never
//! parses bodies.

use mail_parser::{MessageParser, MimeHeaders, PartType};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// Position among the message's attachments, for downloading it.
    pub index: usize,
    /// The name as given, or `attachment-<n>` when there is none.
    pub name: String,
    pub content_type: String,
    pub size: usize,
}

/// An image part the HTML body shows inline (`<img src="cid:...">`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineImage {
    /// The Content-ID without its angle brackets.
    pub content_id: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl InlineImage {
    /// Raster formats only: an SVG is a document that can carry scripts.
    pub const TYPES: [&'static str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];
    /// Larger inline parts are left out of the page (they stay downloadable
    /// as attachments).
    pub const MAX_TOTAL_BYTES: usize = 4 * 1024 * 1024;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent {
    /// (name, decoded value) of From, Sender, To, Cc, Date, Subject, Message-ID.
    pub headers: Vec<(String, String)>,
    pub text: Option<String>,
    /// The HTML part as the sender wrote it: hostile input.
    pub html: Option<String>,
    pub attachments: Vec<AttachmentInfo>,
    /// Raster images with a Content-ID, up to `InlineImage::MAX_TOTAL_BYTES`.
    pub inline_images: Vec<InlineImage>,
}

fn content_type_of(part: &mail_parser::MessagePart<'_>) -> String {
    part.content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_owned(),
        })
        .unwrap_or_else(|| "application/octet-stream".to_owned())
}

/// Parses a whole message; `None` only when there is no message at all.
pub fn read_message(raw: &[u8]) -> Option<MessageContent> {
    let message = MessageParser::new().parse(crate::parse::header_section(raw).0)?;
    let wanted = [
        "From",
        "Sender",
        "To",
        "Cc",
        "Date",
        "Subject",
        "Message-ID",
    ];
    let headers = wanted
        .iter()
        .filter_map(|name| {
            let header = message
                .headers()
                .iter()
                .find(|h| h.name.as_str().eq_ignore_ascii_case(name))?;
            let raw_value = raw.get(header.offset_start as usize..header.offset_end as usize)?;
            let value = match *name {
                "Subject" => message.subject().map(str::to_owned),
                _ => None,
            }
            .unwrap_or_else(|| {
                String::from_utf8_lossy(raw_value)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            });
            Some(((*name).to_owned(), crate::parse::printable(&value)))
        })
        .collect();
    // Only parts that were sent as such: mail-parser would otherwise make
    // up an HTML body from the text one and the other way round.
    let text = message.text_bodies().find_map(|part| match &part.body {
        PartType::Text(text) => Some(text.to_string()),
        _ => None,
    });
    let html = message.html_bodies().find_map(|part| match &part.body {
        PartType::Html(html) => Some(html.to_string()),
        _ => None,
    });
    let attachments = message
        .attachments()
        .enumerate()
        .map(|(index, part)| AttachmentInfo {
            index,
            name: part
                .attachment_name()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("attachment-{}", index + 1)),
            content_type: content_type_of(part),
            size: part.contents().len(),
        })
        .collect();
    let mut inline_images = Vec::new();
    let mut total = 0;
    for part in &message.parts {
        let Some(content_id) = part.content_id() else {
            continue;
        };
        let content_type = content_type_of(part).to_ascii_lowercase();
        let bytes = part.contents();
        if !InlineImage::TYPES.contains(&content_type.as_str())
            || total + bytes.len() > InlineImage::MAX_TOTAL_BYTES
        {
            continue;
        }
        total += bytes.len();
        let content_id = content_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned();
        inline_images.push(InlineImage {
            content_id,
            content_type,
            bytes: bytes.to_vec(),
        });
    }
    Some(MessageContent {
        headers,
        text,
        html,
        attachments,
        inline_images,
    })
}

/// The bytes of one attachment, with its name and content type.
pub fn read_attachment(raw: &[u8], index: usize) -> Option<(AttachmentInfo, Vec<u8>)> {
    let message = MessageParser::new().parse(crate::parse::header_section(raw).0)?;
    let part = message.attachments().nth(index)?;
    let info = AttachmentInfo {
        index,
        name: part
            .attachment_name()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("attachment-{}", index + 1)),
        content_type: content_type_of(part),
        size: part.contents().len(),
    };
    Some((info, part.contents().to_vec()))
}

/// A file name safe for a download: no path, no control or quoting
/// characters, not empty, not too long.
pub fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '"' | ';' | ':' | '*' | '?' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').to_owned();
    let limited: String = trimmed.chars().take(120).collect();
    if limited.is_empty() {
        "attachment".to_owned()
    } else {
        limited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = "From: Carl <c1@customer.example>\r\nTo: sp1@ourco.example\r\n\
        Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <m@x>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
        --b\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n\
        --a\r\nContent-Type: text/plain\r\n\r\nHello text\r\n\
        --a\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>html</b><script>alert(1)</script></p>\r\n--a--\r\n\
        --b\r\nContent-Type: application/pdf; name=\"../../etc/offer.pdf\"\r\nContent-Disposition: attachment; filename=\"../../etc/offer.pdf\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";

    #[test]
    fn reads_headers_bodies_and_attachments() {
        let content = read_message(MESSAGE.as_bytes()).unwrap();
        assert!(
            content
                .headers
                .contains(&("Subject".to_owned(), "Grüße".to_owned()))
        );
        assert!(
            content
                .headers
                .iter()
                .any(|(n, v)| n == "From" && v.contains("c1@customer.example"))
        );
        assert_eq!(content.text.as_deref().map(str::trim), Some("Hello text"));
        assert!(
            content.html.as_deref().unwrap().contains("<script>"),
            "the HTML is returned as sent"
        );
        assert_eq!(content.attachments.len(), 1);
        let attachment = &content.attachments[0];
        assert_eq!(
            (attachment.content_type.as_str(), attachment.size),
            ("application/pdf", 9)
        );
        let (info, bytes) = read_attachment(MESSAGE.as_bytes(), 0).unwrap();
        assert_eq!(bytes, b"%PDF-1.4\n");
        assert_eq!(safe_file_name(&info.name), "offer.pdf");
        assert!(read_attachment(MESSAGE.as_bytes(), 1).is_none());
    }

    #[test]
    fn inline_raster_images_are_found_by_content_id_and_svg_is_not() {
        let raw = "From: a@b.c\r\nMIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=r\r\n\r\n\
            --r\r\nContent-Type: text/html\r\n\r\n<img src=\"cid:logo@x\"><img src=\"cid:evil@x\">\r\n\
            --r\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n\
            --r\r\nContent-Type: image/svg+xml\r\nContent-ID: <evil@x>\r\n\r\n<svg onload=\"alert(1)\"/>\r\n--r--\r\n";
        let content = read_message(raw.as_bytes()).unwrap();
        assert_eq!(
            content.inline_images.len(),
            1,
            "{:?}",
            content.inline_images
        );
        let image = &content.inline_images[0];
        assert_eq!(
            (image.content_id.as_str(), image.content_type.as_str()),
            ("logo@x", "image/png")
        );
        assert_eq!(image.bytes, b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn a_text_only_message_has_no_html() {
        let content = read_message(b"From: a@b.c\r\nSubject: x\r\n\r\njust text\r\n").unwrap();
        assert_eq!(content.html, None);
        assert!(content.text.is_some());
    }

    #[test]
    fn file_names_are_made_safe() {
        let cases = [
            ("report.pdf", "report.pdf"),
            ("..\\..\\boot.ini", "boot.ini"),
            ("a\"b;c\r\n.txt", "a_b_c__.txt"),
            ("", "attachment"),
            ("...", "attachment"),
            (".hidden", "hidden"),
        ];
        for (input, expected) in cases {
            assert_eq!(safe_file_name(input), expected, "{input:?}");
        }
    }
}
