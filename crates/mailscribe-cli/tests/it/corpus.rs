//! The shared real-world corpus through a real run: no panic, exactly one
//! decision per message, and a stored message's bytes unchanged.

use std::collections::{HashMap, HashSet};

use mailscribe_core::parse::sha256_hex;
use mailscribe_core::parse_message;
use mailscribe_testkit::{QUEUE, corpus_dir};

use crate::harness::{Backend, Env, decisions};

#[tokio::test(flavor = "multi_thread")]
async fn every_corpus_message_gets_exactly_one_decision() {
    let Some(dir) = corpus_dir() else {
        eprintln!(
            "the shared corpus (../shared/corpus) is absent here: passing over the corpus test"
        );
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    assert!(
        files.len() > 400,
        "expected the 459-message corpus, found {}",
        files.len()
    );
    let raws: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();

    // A directory built from the corpus itself, so that many messages match:
    // every third sender is a contact and its first recipient a salesperson.
    let mut salespeople: HashMap<String, String> = HashMap::new();
    let mut contacts: HashMap<String, String> = HashMap::new();
    for raw in raws.iter().step_by(3) {
        let parsed = parse_message(raw);
        let (Some(sender), Some(recipient)) = (parsed.sender(), parsed.to.first()) else {
            continue;
        };
        if sender == recipient
            || salespeople.contains_key(sender.as_str())
            || contacts.contains_key(recipient.as_str())
        {
            continue;
        }
        let contact_no = contacts.len() + 1;
        contacts
            .entry(sender.to_string())
            .or_insert_with(|| contact_no.to_string());
        let code = format!("SP{}", salespeople.len() + 1);
        salespeople.entry(recipient.to_string()).or_insert(code);
    }
    let env = Env::new(Backend::Sqlite).await;
    let mut salespeople_csv = String::from("code,name,email\n");
    for (address, code) in &salespeople {
        salespeople_csv.push_str(&format!("{code},Seller {code},{address}\n"));
    }
    let mut contacts_csv = String::from("no,name,email,company\n");
    for (address, no) in &contacts {
        contacts_csv.push_str(&format!("{no},Contact {no},{address},\n"));
    }
    env.write("salespeople.csv", &salespeople_csv);
    env.write("contacts.csv", &contacts_csv);
    env.ok(&["salespeople", "import", "salespeople.csv"]);
    env.ok(&["contacts", "import", "contacts.csv"]);
    env.configure(&[]);
    env.ok(&["settings", "set", "storage_mode", "full"]);
    env.ok(&["enable", "--accept-data-statement"]);

    for raw in &raws {
        env.dovecot.deliver(QUEUE, raw, None, false);
    }
    let summary: serde_json::Value =
        serde_json::from_str(&env.ok(&["run", "--once", "--format", "json"])).unwrap();
    assert_eq!(
        summary["seen"].as_u64(),
        Some(raws.len() as u64),
        "{summary}"
    );
    assert!(
        summary["logged"].as_u64().unwrap() >= 50,
        "the corpus directory should match many messages: {summary}"
    );

    let ledger = decisions(&env);
    assert_eq!(ledger.len(), raws.len(), "exactly one decision per message");
    let copies: HashSet<(i64, i64)> = ledger
        .iter()
        .map(|d| {
            (
                d["uid_validity"].as_i64().unwrap(),
                d["uid"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(copies.len(), raws.len());
    let failed = ledger.iter().filter(|d| d["outcome"] == "failed").count();
    assert_eq!(
        env.dovecot.count(QUEUE),
        failed,
        "only failed messages stay in the queue"
    );

    // Full storage mode keeps the bytes exactly as the server returned them:
    // the delivered file, in IMAP's canonical CRLF form (Dovecot serves a
    // file with bare LF line ends with CRLF).
    let file_hashes: HashSet<String> = raws
        .iter()
        .flat_map(|r| [sha256_hex(r), sha256_hex(&lf_to_crlf(r))])
        .collect();
    let store = mailscribe_store::Store::open(&env.db.url().parse().unwrap())
        .await
        .unwrap();
    let mut records = HashSet::new();
    let mut after = 0;
    loop {
        let page = store.entries_after(after, 500).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.entry_no;
        records.extend(page.iter().filter_map(|e| e.message_record_id));
    }
    assert_eq!(records.len() as u64, summary["logged"].as_u64().unwrap());
    for record in records {
        let raw = store
            .stored_raw_message(record)
            .await
            .unwrap()
            .expect("full mode keeps the message");
        assert!(
            file_hashes.contains(&sha256_hex(&raw)),
            "stored message {record} differs from every corpus file: {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(300)])
        );
    }
    store.close().await;
}

fn lf_to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    for (i, byte) in raw.iter().enumerate() {
        if *byte == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(*byte);
    }
    out
}
