//! Business Central's own exports through the web pages, and entries
//! imported from its Interaction Log Entries as the pages and the API show
//! them, on SQLite and PostgreSQL.

use axum::http::StatusCode;
use mailscribe_core::{BcReadOptions, Role, read_bc_interactions};
use mailscribe_testkit::TestDatabase;

use crate::{App, json, urlencode};

const BC_SALESPEOPLE: &str =
    "Code;Name;Phone No.;E-Mail;E-Mail 2\r\nJO;Jim Olive;;jo@ourco.example;jim@ourco.example\r\n";
const BC_CONTACTS: &str = "\u{feff}No.,Name,Type,Company No.,Company Name,E-Mail,Privacy Blocked\r\n\
CT10,Customer Corp,Company,CT10,Customer Corp,info@customer.example,No\r\n\
CT11,Carl Contact,Person,CT10,Customer Corp,c1@customer.example,Yes\r\n";
const BC_ENTRIES: &str = "Entry No.,Contact No.,Date,Time of Interaction,Salesperson Code,Description,Information Flow,Initiated By,Subject\n\
501,CT11,2025-02-03,10:30,JO,Call notes,Inbound,Them,Call notes\n";

async fn business_central_exports_through_the_pages(db: TestDatabase) {
    let app = App::on(db).await;
    app.add_user("root", Role::Admin, None).await;
    let root = app.login("root").await;
    let csrf = app.get("/contacts", Some(&root)).await.csrf();
    for (page, file) in [
        ("/salespeople/import", BC_SALESPEOPLE),
        ("/contacts/import", BC_CONTACTS),
    ] {
        let reply = app
            .send(
                "POST",
                page,
                &[("mailscribe_session", &root)],
                Some(&format!("csrf={csrf}&csv={}", urlencode(file))),
                None,
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "{page}: {}",
            reply.body
        );
    }
    let carl = app
        .store
        .contact("CT11")
        .await
        .unwrap()
        .expect("CT11 imported");
    assert_eq!(
        carl.company_no.as_ref().map(ToString::to_string).as_deref(),
        Some("CT10")
    );
    assert!(carl.privacy_blocked);
    let card = app.get("/salespeople/JO", Some(&root)).await;
    assert!(card.body.contains("jim@ourco.example"), "{}", card.body);

    // A bad Business Central file is refused whole, with its line.
    let bad = "No.;Name;E-Mail;Privacy Blocked\nCT12;Cora;c2@customer.example;Perhaps\n";
    let reply = app
        .send(
            "POST",
            "/contacts/import",
            &[("mailscribe_session", &root)],
            Some(&format!("csrf={csrf}&csv={}", urlencode(bad))),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply
            .body
            .contains("line 2: Privacy Blocked &#39;Perhaps&#39; must be Yes or No"),
        "{}",
        reply.body
    );
    assert!(app.store.contact("CT12").await.unwrap().is_none());

    // An imported entry: no message, Business Central's number shown.
    let options = BcReadOptions {
        date_format: None,
        decimal_comma: false,
        time_zone: chrono_tz::Tz::UTC,
    };
    let file = read_bc_interactions(BC_ENTRIES.as_bytes(), &options).unwrap();
    let summary = app
        .store
        .import_bc_interactions(&file.rows, false, false)
        .await
        .unwrap();
    assert_eq!(summary.added, 1);
    let again = app
        .store
        .import_bc_interactions(&file.rows, false, false)
        .await
        .unwrap();
    assert_eq!(
        (again.added, again.already_imported),
        (0, 1),
        "importing twice adds nothing"
    );
    let entries = json(&app.get("/api/v1/interactions", Some(&root)).await);
    let entry = &entries["items"][0];
    assert_eq!(entry["bc_entry_no"], 501);
    assert_eq!(entry["message_record_id"], serde_json::Value::Null);
    assert_eq!(entry["mailbox_name"], "import");
    let entry_no = entry["entry_no"].as_i64().unwrap();
    let page = app
        .get(&format!("/interactions/{entry_no}"), Some(&root))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("from Business Central, entry 501"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("id=\"show-message\""), "{}", page.body);
    assert_eq!(
        app.get(&format!("/interactions/{entry_no}/message"), Some(&root))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // The log lists it among the others.
    let log = app.get("/interactions", Some(&root)).await;
    assert!(log.body.contains("Call notes"), "{}", log.body);
}

#[tokio::test]
async fn business_central_exports_through_the_pages_on_sqlite() {
    business_central_exports_through_the_pages(TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn business_central_exports_through_the_pages_on_postgres() {
    business_central_exports_through_the_pages(TestDatabase::postgres().await).await;
}
