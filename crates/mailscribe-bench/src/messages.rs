//! A deterministic mix of messages and the directory they match.

/// Salespeople `SP1..=SP50`, contacts `1..=1000`.
pub(crate) const SALESPEOPLE: u32 = 50;
pub(crate) const CONTACTS: u32 = 1000;

pub(crate) fn salespeople_csv() -> String {
    let mut csv = String::from("code,name,email\n");
    for i in 1..=SALESPEOPLE {
        csv.push_str(&format!("SP{i},Seller {i},sp{i}@ourco.example\n"));
    }
    csv
}

pub(crate) fn contacts_csv() -> String {
    let mut csv = String::from("no,name,email,company\n");
    for i in 1..=CONTACTS {
        csv.push_str(&format!(
            "{i},Contact {i},c{i}@customer{}.example,Customer {}\n",
            i % 100,
            i % 100
        ));
    }
    csv
}

/// A small linear congruential generator: the same mix every run.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below.max(1)
    }
}

/// What the mix holds, for the report.
pub(crate) const MIX: &str = "45% inbound contact->salesperson (some with a second salesperson in Cc), \
30% outbound salesperson->contacts, 20% unknown sender, 5% second copies of earlier messages; \
bodies 0.5-8 KB of text, every 20th with a 100 KB attachment";

pub(crate) fn message(n: u32, rng: &mut Lcg) -> Vec<u8> {
    let kind = rng.next(100);
    // Second copies repeat an earlier message exactly.
    let id = if kind >= 95 && n > 50 { n - 37 } else { n };
    let mut rng_for_id = Lcg(u64::from(id) * 7919);
    let kind = if kind >= 95 {
        rng_for_id.next(95)
    } else {
        kind
    };
    let sp = 1 + rng_for_id.next(u64::from(SALESPEOPLE));
    let contact = 1 + rng_for_id.next(u64::from(CONTACTS));
    let (from, to, cc) = if kind < 45 {
        let cc = if kind < 10 {
            format!("Cc: sp{}@ourco.example\r\n", 1 + (sp % 50))
        } else {
            String::new()
        };
        (
            format!("c{contact}@customer{}.example", contact % 100),
            format!("sp{sp}@ourco.example"),
            cc,
        )
    } else if kind < 75 {
        let other = 1 + (contact * 7) % u64::from(CONTACTS);
        (
            format!("sp{sp}@ourco.example"),
            format!("c{contact}@customer{}.example", contact % 100),
            format!("Cc: c{other}@customer{}.example\r\n", other % 100),
        )
    } else {
        (
            format!("stranger{id}@elsewhere.example"),
            format!("sp{sp}@ourco.example"),
            String::new(),
        )
    };
    let body_len = 500 + rng_for_id.next(7500) as usize;
    let line = "The quick brown fox jumps over the lazy dog, and the deal closes on Friday.\r\n";
    let body: String = line.repeat(body_len / line.len() + 1);
    let mut text = format!(
        "From: {from}\r\nTo: {to}\r\n{cc}Subject: Offer {id} =?utf-8?q?f=C3=BCr?= you\r\n\
         Message-ID: <bench-{id}@example.com>\r\nDate: Tue, 3 Mar 2026 10:{:02}:00 +0000\r\nMIME-Version: 1.0\r\n",
        id % 60
    );
    if id % 20 == 0 {
        let attachment = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n".repeat(100 * 1024 / 38);
        text.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{id}\"\r\n\r\n--b{id}\r\nContent-Type: text/plain\r\n\r\n{body}\r\n\
             --b{id}\r\nContent-Type: application/pdf; name=\"offer.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             {attachment}--b{id}--\r\n"
        ));
    } else {
        text.push_str(&format!(
            "Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
        ));
    }
    text.into_bytes()
}

/// `mix` with every message whose Message-ID came earlier replaced by
/// that earlier message, byte for byte.
///
/// `message` makes its "second copies" with the earlier message's
/// Message-ID but not its headers: the copy draws its kind, salesperson and
/// contact afresh. In one queue the first copy always wins, so the entries
/// are the same every time; spread over several queues worked in parallel,
/// which copy is logged first depends on timing, and so would the entries.
pub(crate) fn with_exact_copies(mix: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut first: std::collections::HashMap<Vec<u8>, Vec<u8>> = std::collections::HashMap::new();
    mix.into_iter()
        .map(|raw| {
            let Some(id) = message_id(&raw) else {
                return raw;
            };
            first.entry(id).or_insert(raw).clone()
        })
        .collect()
}

/// The Message-ID header line of a message this module made.
fn message_id(raw: &[u8]) -> Option<Vec<u8>> {
    raw.split(|b| *b == b'\n')
        .find(|line| line.starts_with(b"Message-ID:"))
        .map(<[u8]>::to_vec)
}

/// One message of about `megabytes` MB from a known contact to a salesperson.
pub(crate) fn large_message(megabytes: usize) -> Vec<u8> {
    let line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU2Nzg5YWJjZGVmZ2hpams=\r\n";
    let attachment = line.repeat(megabytes * 1024 * 1024 / line.len());
    format!(
        "From: c1@customer1.example\r\nTo: sp1@ourco.example\r\nSubject: the big one\r\n\
         Message-ID: <large@example.com>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"big\"\r\n\r\n--big\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
         --big\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {attachment}--big--\r\n"
    )
    .into_bytes()
}

/// The subject of probe message `n`: its last word is unique, so the API's
/// search finds exactly this message.
pub(crate) fn probe_subject(n: u32) -> String {
    format!("Latency probe p{n:06}")
}

/// Probe message `n`: from contact `1 + n % 1000` to salesperson
/// `1 + n % 50` (one entry each), dated now, with a unique Message-ID and
/// a 1 KB body.
pub(crate) fn probe(n: u32) -> Vec<u8> {
    let contact = 1 + n % CONTACTS;
    let salesperson = 1 + n % SALESPEOPLE;
    let line = "The quick brown fox jumps over the lazy dog, and the deal closes on Friday.\r\n";
    format!(
        "From: c{contact}@customer{}.example\r\nTo: sp{salesperson}@ourco.example\r\nSubject: {}\r\n\
         Message-ID: <probe-{n}@bench.example>\r\nDate: {}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{}",
        contact % 100,
        probe_subject(n),
        chrono::Utc::now().to_rfc2822(),
        line.repeat(14)
    )
    .into_bytes()
}

/// One message of the soak, and whether its entry is timed.
pub(crate) struct SoakMessage {
    pub(crate) raw: Vec<u8>,
    /// The subject (its last word unique) when the message makes an entry
    /// the API lists: `None` for mail from strangers and second copies.
    pub(crate) timed_subject: Option<String>,
}

/// Soak message `n`, the same for the same `n`: 60% inbound from a contact
/// to a salesperson (one in six with a second salesperson in Cc), 25%
/// outbound to one or two contacts, 12% from strangers (not logged), 3%
/// second copies of the message 40 before (same Message-ID and headers,
/// dated anew: duplicates), as a journaling rule delivers them. Real-looking: `Received:` lines, a
/// signature header, threading headers on replies, text and HTML
/// alternatives, every 25th with a 100 KB attachment; dated now.
pub(crate) fn soak_message(n: u64) -> SoakMessage {
    let mut rng = Lcg(n.wrapping_mul(7919).wrapping_add(17));
    let kind = rng.next(100);
    if kind >= 97 && n > 40 {
        let earlier = soak_message(n - 40);
        return SoakMessage {
            raw: earlier.raw,
            timed_subject: None,
        };
    }
    let salesperson = 1 + rng.next(u64::from(SALESPEOPLE));
    let contact = 1 + rng.next(u64::from(CONTACTS));
    let contact_address = |c: u64| format!("Contact {c} <c{c}@customer{}.example>", c % 100);
    let topics = [
        "Offer",
        "Delivery schedule",
        "Invoice question",
        "Meeting next week",
        "Contract renewal",
        "Samples",
    ];
    let topic = topics[rng.next(topics.len() as u64) as usize];
    let reply = rng.next(3) == 0;
    let subject = format!("{}{topic} ref s{n:07}", if reply { "Re: " } else { "" });
    let (from, to, cc, timed) = if kind < 60 {
        let cc = (rng.next(6) == 0)
            .then(|| format!("Seller {0} <sp{0}@ourco.example>", 1 + salesperson % 50));
        (
            contact_address(contact),
            format!("Seller {salesperson} <sp{salesperson}@ourco.example>"),
            cc,
            true,
        )
    } else if kind < 85 {
        let cc =
            (rng.next(3) == 0).then(|| contact_address(1 + (contact * 7) % u64::from(CONTACTS)));
        (
            format!("Seller {salesperson} <sp{salesperson}@ourco.example>"),
            contact_address(contact),
            cc,
            true,
        )
    } else {
        (
            format!("Someone <stranger{n}@elsewhere.example>"),
            format!("sp{salesperson}@ourco.example"),
            None,
            false,
        )
    };
    let now = chrono::Utc::now();
    let mut text = format!(
        "Return-Path: <bounce-{n}@mx.example>\r\n\
         Received: from mx1.ourco.example (mx1.ourco.example [192.0.2.10])\r\n\tby imap.ourco.example (Postfix) with ESMTPS id 4Q{n:X}\r\n\tfor <queue@ourco.example>; {date}\r\n\
         Received: from mail.sender.example (mail.sender.example [198.51.100.7])\r\n\tby mx1.ourco.example with ESMTPS id {n:x}; {date}\r\n\
         DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=sender.example; s=mail;\r\n\th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\tb=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgbG9va3MgbGlrZSBvbmU=\r\n\
         From: {from}\r\nTo: {to}\r\n{cc}Subject: {subject}\r\nDate: {date}\r\n\
         Message-ID: <soak-{n}.{kind}@mail.sender.example>\r\n{thread}MIME-Version: 1.0\r\nX-Mailer: Bench Mail 1.0\r\n",
        date = now.to_rfc2822(),
        cc = cc.map(|cc| format!("Cc: {cc}\r\n")).unwrap_or_default(),
        thread = if reply {
            format!(
                "In-Reply-To: <soak-{0}@ourco.example>\r\nReferences: <soak-{0}@ourco.example>\r\n",
                n / 2
            )
        } else {
            String::new()
        },
    );
    let line = "Thank you for your message. The quick brown fox jumps over the lazy dog, and the deal closes on Friday.\r\n";
    let plain = line.repeat(5 + rng.next(40) as usize);
    let html = format!(
        "<html><body><p>{}</p></body></html>\r\n",
        plain.replace("\r\n", "<br>\r\n")
    );
    let alternative = format!(
        "--alt{n}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{plain}\r\n--alt{n}\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--alt{n}--\r\n"
    );
    if n.is_multiple_of(25) {
        let attachment =
            "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29k\r\n"
                .repeat(100 * 1024 / 78);
        text.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"mix{n}\"\r\n\r\n--mix{n}\r\n\
             Content-Type: multipart/alternative; boundary=\"alt{n}\"\r\n\r\n{alternative}\r\n--mix{n}\r\n\
             Content-Type: application/pdf; name=\"offer-{n}.pdf\"\r\nContent-Disposition: attachment; filename=\"offer-{n}.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{attachment}--mix{n}--\r\n"
        ));
    } else {
        text.push_str(&format!(
            "Content-Type: multipart/alternative; boundary=\"alt{n}\"\r\n\r\n{alternative}"
        ));
    }
    SoakMessage {
        raw: text.into_bytes(),
        timed_subject: timed.then_some(subject),
    }
}
