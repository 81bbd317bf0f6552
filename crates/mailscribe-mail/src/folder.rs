//! Folder names: modified UTF-7 (RFC 3501 section 5.1.3) and resolving a
//! path as a user writes it to the server's name.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

/// One folder of the server's LIST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderInfo {
    /// The name as the server spells it (modified UTF-7), for commands.
    pub raw_name: String,
    /// The name decoded, with the server's delimiter replaced by `/`.
    pub display_name: String,
    pub delimiter: Option<char>,
    pub selectable: bool,
}

impl FolderInfo {
    pub fn new(raw_name: String, delimiter: Option<char>, selectable: bool) -> FolderInfo {
        let decoded = decode_modified_utf7(&raw_name);
        let display_name = match delimiter {
            Some(d) if d != '/' => decoded.split(d).collect::<Vec<_>>().join("/"),
            _ => decoded,
        };
        FolderInfo {
            raw_name,
            display_name,
            delimiter,
            selectable,
        }
    }

    /// Whether `user_path` names this folder. Paths are compared segment by
    /// segment after trimming slashes; INBOX is case-insensitive (RFC 3501).
    pub fn matches(&self, user_path: &str) -> bool {
        let wanted = normalise_path(user_path);
        let have = normalise_path(&self.display_name);
        if wanted == have {
            return true;
        }
        let inbox = |path: &str| {
            path.eq_ignore_ascii_case("inbox") || path.to_ascii_lowercase().starts_with("inbox/")
        };
        inbox(&wanted) && inbox(&have) && wanted.eq_ignore_ascii_case(&have)
    }
}

fn normalise_path(path: &str) -> String {
    path.split('/')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// Modified base64 uses `,` where base64 uses `/`.
fn modified_base64_encode(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes).replace('/', ",")
}

pub fn encode_modified_utf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&modified_base64_encode(&bytes));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes modified UTF-7. Anything malformed is kept as written, so a
/// server's odd name still round-trips to the server unchanged.
pub fn decode_modified_utf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('-') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let encoded = &after[..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            let decoded = STANDARD_NO_PAD
                .decode(encoded.replace(',', "/"))
                .ok()
                .filter(|bytes| bytes.len() % 2 == 0)
                .and_then(|bytes| {
                    let units: Vec<u16> = bytes
                        .chunks(2)
                        .map(|p| u16::from_be_bytes([p[0], p[1]]))
                        .collect();
                    String::from_utf16(&units).ok()
                });
            match decoded {
                Some(text) => out.push_str(&text),
                None => out.push_str(&rest[start..start + 2 + end]),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_utf7_round_trips() {
        let cases = [
            ("INBOX", "INBOX"),
            ("Öffentliche Ordner", "&ANY-ffentliche Ordner"),
            ("Tom & Jerry", "Tom &- Jerry"),
            ("日本語", "&ZeVnLIqe-"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("Emoji 📬", "Emoji &2D3c7A-"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(encode_modified_utf7(plain), encoded, "encode {plain}");
            assert_eq!(decode_modified_utf7(encoded), plain, "decode {encoded}");
        }
        // Malformed input is kept.
        assert_eq!(decode_modified_utf7("a&b"), "a&b");
        assert_eq!(decode_modified_utf7("&!!!-"), "&!!!-");
    }

    #[test]
    fn folder_paths_match_across_delimiters() {
        let dotted = FolderInfo::new("Public Folders.Email Logging.Queue".into(), Some('.'), true);
        assert_eq!(dotted.display_name, "Public Folders/Email Logging/Queue");
        assert!(dotted.matches("Public Folders/Email Logging/Queue"));
        assert!(dotted.matches("/Public Folders/Email Logging/Queue/"));
        assert!(!dotted.matches("Public Folders/Email Logging"));
        let inbox = FolderInfo::new("INBOX".into(), Some('/'), true);
        assert!(inbox.matches("inbox"));
        let german = FolderInfo::new("&ANY-ffentliche Ordner/Queue".into(), Some('/'), true);
        assert!(german.matches("Öffentliche Ordner/Queue"));
    }
}
