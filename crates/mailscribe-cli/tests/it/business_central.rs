//! Moving over from Business Central (issue 11, item 7): its own list
//! exports of salespeople and contacts, its Interaction Log Entries, and a
//! privacy-blocked contact in a Business Central directory. Every export
//! here is hand-written the way Business Central writes it, with its English
//! captions and columns Mailscribe does not read.

use crate::harness::{Backend, Env, decisions, entry_keys, message};

/// Salespeople/Purchasers, saved with `;` between the fields (as a spreadsheet
/// in a region with a decimal comma does), with columns we skip.
const BC_SALESPEOPLE: &str = "Code;Name;Commission %;Phone No.;E-Mail;E-Mail 2;Privacy Blocked\r\n\
JO;Jim Olive;0;+44-(0)10 5214 4987;sp1@ourco.example;jim.olive@ourco.example;No\r\n\
OF;Otis Falls;2,5;;sp2@ourco.example;;No\r\n\
PS;;0;;;;No\r\n";

/// Contacts, saved as CSV UTF-8 with a byte order mark: companies and
/// people, linked by Company No.
const BC_CONTACTS: &str = "\u{feff}No.,Name,Type,Company No.,Company Name,Phone No.,E-Mail,Salesperson Code,Privacy Blocked\r\n\
CT000010,Customer Corp,Company,CT000010,Customer Corp,,info@customer.example,JO,No\r\n\
CT000011,Carl Contact,Person,CT000010,Customer Corp,,c1@customer.example,JO,Yes\r\n\
CT000012,Cora Contact,Person,CT000010,Customer Corp,,c2@customer.example,JO,No\r\n\
CT000020,\"Newman, Belinda\",Person,,,,belinda@other.example,OF,No\r\n";

/// Interaction Log Entries, comma-separated, English dates.
const BC_INTERACTIONS: &str = "Entry No.,Contact No.,Contact Company No.,Date,Time of Interaction,Salesperson Code,Description,Information Flow,Initiated By,Subject,Interaction Template Code,Cost (LCY),Duration (Min.),Canceled,Opportunity No.,Correspondence Type,User ID\n\
101,CT000012,CT000010,2025-03-14,09:15:00,JO,Quote follow-up,Outbound,Us,RE: Quote 1045,EMAIL,1.50,3,No,OP000007,Email,CRONUS\\ADMIN\n\
102,CT000012,CT000010,2025-03-15,16:02,JO,Phone call,Inbound,Them,,PHONE,12.00,15,Yes,,,CRONUS\\ADMIN\n\
103,CT000099,,2025-03-16,08:00,XX,Letter,Outbound,Us,Price list,LETTER,0,0,No,,Hard Copy,CRONUS\\ADMIN\n";

async fn moving_over(backend: Backend) {
    let env = Env::new(backend).await;
    env.write("salespeople.csv", BC_SALESPEOPLE);
    env.write("contacts.csv", BC_CONTACTS);

    // A preview reads the file, says how, and stores nothing.
    let preview = env.ok(&["contacts", "import", "contacts.csv", "--dry-run"]);
    assert!(
        preview.contains(
            "a Business Central list export; columns not imported: Phone No., Salesperson Code"
        ),
        "{preview}"
    );
    assert!(
        preview.contains(
            "3\tCT000011\tCarl Contact\tperson\tCustomer Corp\tc1@customer.example\ttrue"
        ),
        "{preview}"
    );
    assert!(
        preview.contains("would import 4 contacts; nothing was changed"),
        "{preview}"
    );
    assert_eq!(
        env.ok(&["contacts", "list"]),
        "",
        "a dry run stores nothing"
    );
    let preview = env.ok(&["salespeople", "import", "salespeople.csv", "--dry-run"]);
    assert!(preview.contains("separated by ';'"), "{preview}");
    assert!(
        preview.contains("2\tJO\tJim Olive\tsp1@ourco.example;jim.olive@ourco.example"),
        "{preview}"
    );

    env.ok(&["salespeople", "import", "salespeople.csv"]);
    env.ok(&["contacts", "import", "contacts.csv"]);
    let people = env.ok(&["salespeople", "list"]);
    assert!(
        people.contains("JO\tJim Olive\tsp1@ourco.example;jim.olive@ourco.example"),
        "{people}"
    );
    assert!(
        people.contains("PS\tPS\t"),
        "a salesperson without a name is named by the code: {people}"
    );
    let contacts = env.ok(&["contacts", "list"]);
    assert!(
        contacts.contains("CT000011\tCarl Contact\tperson\tCT000010\tc1@customer.example"),
        "{contacts}"
    );
    assert!(
        contacts.contains("CT000010\tCustomer Corp\tcompany\tCT000010"),
        "{contacts}"
    );
    assert!(
        contacts.contains("CT000020\tNewman, Belinda\tperson\t\t"),
        "{contacts}"
    );
    assert!(
        !contacts.contains("CO-"),
        "the company is linked by its number, none is made up: {contacts}"
    );

    // The interaction log: an unknown contact and salesperson refuse the
    // file, naming the line.
    env.write("interactions.csv", BC_INTERACTIONS);
    let refused = env.run(&["interactions", "import-bc", "interactions.csv"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("line 4: the contact CT000099 is not in the directory"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 4: the salesperson XX is not in the directory"),
        "{stderr}"
    );
    assert!(stderr.contains("--create-missing"), "{stderr}");
    assert!(entry_keys(&env).is_empty(), "nothing was imported");

    let preview = env.ok(&[
        "interactions",
        "import-bc",
        "interactions.csv",
        "--create-missing",
        "--dry-run",
    ]);
    assert!(preview.contains("would import 3 entries"), "{preview}");
    assert!(
        preview.contains("columns not imported: User ID"),
        "{preview}"
    );
    assert!(entry_keys(&env).is_empty(), "a dry run imports nothing");

    let imported = env.ok(&[
        "interactions",
        "import-bc",
        "interactions.csv",
        "--create-missing",
    ]);
    assert!(
        imported.contains("imported 3 entries (0 of the 3 rows were imported before)"),
        "{imported}"
    );
    assert!(
        imported.contains("created contacts: CT000099"),
        "{imported}"
    );
    assert!(imported.contains("created salespeople: XX"), "{imported}");
    let again = env.ok(&["interactions", "import-bc", "interactions.csv"]);
    assert!(
        again.contains("imported 0 entries (3 of the 3 rows were imported before)"),
        "importing twice adds nothing: {again}"
    );

    let csv = env.ok(&["interactions", "export", "--format", "csv"]);
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with(",interaction_group,campaign_no,bc_entry_no"),
        "{header}"
    );
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["interactions", "export", "--format", "json"])).unwrap();
    let first = rows
        .iter()
        .find(|r| r["bc_entry_no"] == 101)
        .expect("entry 101");
    assert_eq!(first["date"], "2025-03-14");
    assert_eq!(
        first["time"], "09:15:00",
        "times are in the configured zone (UTC here)"
    );
    assert_eq!(
        (first["direction"].as_str(), first["initiated_by"].as_str()),
        (Some("outbound"), Some("us"))
    );
    assert_eq!(first["subject"], "RE: Quote 1045");
    assert_eq!(first["cost"], "1.50");
    assert_eq!(first["opportunity_no"], "OP000007");
    assert_eq!(first["message_id"], serde_json::Value::Null);
    assert_eq!(
        first["mailbox_name"], "import",
        "imported entries are marked as imported"
    );
    let second = rows.iter().find(|r| r["bc_entry_no"] == 102).unwrap();
    assert_eq!(second["canceled"], true);

    // Then the mail: contact CT000011 is privacy blocked in Business
    // Central, CT000012 is not; one message to both makes one entry, for
    // CT000012, and is not taken for a duplicate of the imported history.
    env.configure(&[]);
    env.ok(&["enable", "--accept-data-statement"]);
    env.deliver(&message(
        &[
            "From: sp1@ourco.example",
            "To: c1@customer.example",
            "Cc: c2@customer.example",
            "Subject: RE: Quote 1045",
            "Message-ID: <both@ourco.example>",
        ],
        "hello",
    ));
    env.ok(&["run", "--once"]);
    let logged: Vec<_> = entry_keys(&env)
        .into_iter()
        .filter(|(message_id, ..)| !message_id.is_empty())
        .collect();
    assert_eq!(
        logged,
        [(
            "<both@ourco.example>".to_owned(),
            "JO".to_owned(),
            "CT000012".to_owned(),
            "outbound".to_owned()
        )]
    );
    let reasons: Vec<String> = decisions(&env)
        .iter()
        .map(|d| d["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reasons, ["logged"]);
}

#[tokio::test]
async fn moving_over_from_business_central_on_sqlite() {
    moving_over(Backend::Sqlite).await;
}

#[tokio::test]
async fn moving_over_from_business_central_on_postgres() {
    moving_over(Backend::Postgres).await;
}

#[tokio::test]
async fn a_bad_business_central_export_is_refused_whole_with_line_numbers() {
    let env = Env::new(Backend::Sqlite).await;
    env.write("contacts.csv", "No.;Name;Type;E-Mail;Privacy Blocked\nC1;Ann;Person;ann@x.example;Perhaps\nC2;Bob;Robot;bob@x.example;No\n");
    let refused = env.run(&["contacts", "import", "contacts.csv"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("line 2: Privacy Blocked 'Perhaps' must be Yes or No"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 3: type 'Robot' must be person or company"),
        "{stderr}"
    );
    assert_eq!(env.ok(&["contacts", "list"]), "");

    // Our own format still refuses ';', which separates addresses there.
    env.write("ours.csv", "no;name;email;company\n1;A;a@x.example;\n");
    let refused = env.run(&["contacts", "import", "ours.csv"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("separated by ';' but Mailscribe reads ','")
    );

    env.write("entries.csv", "Entry No.;Contact No.;Date;Salesperson Code;Information Flow;Initiated By;Cost (LCY)\n1;C1;14.03.2025;SP;Outbound;Us;1,50\n");
    let refused = env.run(&["interactions", "import-bc", "entries.csv"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("line 2: Date '14.03.2025' is not YYYY-MM-DD"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "line 2: Cost (LCY): '1,50' has a comma; for amounts like 1,50 give --decimal-comma"
        ),
        "{stderr}"
    );
    let refused = env.run(&[
        "interactions",
        "import-bc",
        "entries.csv",
        "--date-format",
        "%d.%m.%Y",
        "--decimal-comma",
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("line 2: the contact C1 is not in the directory"),
        "{stderr}"
    );
    env.ok(&[
        "interactions",
        "import-bc",
        "entries.csv",
        "--date-format",
        "%d.%m.%Y",
        "--decimal-comma",
        "--create-missing",
    ]);
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["interactions", "export", "--format", "json"])).unwrap();
    assert_eq!(
        (rows[0]["date"].as_str(), rows[0]["cost"].as_str()),
        (Some("2025-03-14"), Some("1.50"))
    );
}
