//! The store conformance suite: every case runs against SQLite and against
//! PostgreSQL, on a fresh database each.

mod migration_0011;

use chrono::{DateTime, TimeZone, Utc};
use mailscribe_core::decision::ErrorClass;
use mailscribe_core::{
    Amount, AuthKind, Contact, ContactKind, ContactNo, ContactRef, Direction, EmailAddress,
    Enablement, InteractionTemplate, MailboxName, MailboxSetup, OAuthSetup, PlannedEntry, Reason,
    Salesperson, SalespersonCode, SealedSecret, SecretRef, Security, StorageMode, TlsTrust,
};
use mailscribe_store::{
    DecidedCopy, DispositionUpdate, EntryCursor, EntryFilter, Fence, LeaseAttempt, MailboxStatus,
    RunCounts, Store, StoreError,
};
use mailscribe_testkit::TestDatabase;

mod tls;

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let db = mailscribe_testkit::TestDatabase::sqlite();
                    let store = super::open(&db).await;
                    super::$case(&store).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let db = mailscribe_testkit::TestDatabase::postgres().await;
                    let store = super::open(&db).await;
                    super::$case(&store).await;
                    store.close().await;
                }
            )*
        }
    };
}

conformance!(
    salespeople_upsert_replaces_addresses,
    an_address_on_two_salespeople_is_refused_and_nothing_is_imported,
    contacts_link_to_companies_by_name,
    lookups_resolve_addresses_lowest_contact_first,
    setup_settings_and_templates_round_trip,
    one_lease_holder_at_a_time,
    a_stale_fence_commits_nothing,
    several_mailboxes_by_name,
    a_key_logged_in_another_mailbox_makes_a_duplicate,
    instances_and_run_requests,
    a_batch_commits_decisions_and_entries,
    final_decisions_are_never_overwritten,
    failed_copies_count_attempts_then_succeed,
    a_refused_copy_fails_alone,
    a_batch_of_thousands_commits_in_one_transaction,
    dispositions_ride_with_the_next_commit,
    a_value_the_database_cannot_hold_fails_that_copy_alone,
    not_logged_rows_are_purged,
    runs_are_recorded,
    full_mode_keeps_the_raw_bytes,
    users_sessions_and_tokens,
    accounts_are_managed_and_changes_revoke_access,
    deleting_a_salesperson_disables_their_accounts,
    deleting_entries_keeps_the_ledger,
    privacy_blocked_contacts_are_kept_apart,
    setup_drafts_are_kept_per_user,
    the_log_filters_and_pages_newest_first,
    opportunities_from_entries_link_both_ways,
    deleting_from_the_directory,
);

async fn open(db: &TestDatabase) -> Store {
    Store::open(&db.url().parse().unwrap())
        .await
        .expect("open store")
}

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn salesperson(code: &str, addresses: &[&str]) -> Salesperson {
    Salesperson {
        code: SalespersonCode::parse(code).unwrap(),
        name: format!("Salesperson {code}"),
        addresses: addresses.iter().map(|a| addr(a)).collect(),
    }
}

fn contact(no: &str, kind: ContactKind, company: Option<&str>, addresses: &[&str]) -> Contact {
    Contact {
        no: ContactNo::parse(no).unwrap(),
        name: format!("Contact {no}"),
        kind,
        company_name: company.map(str::to_owned),
        addresses: addresses.iter().map(|a| addr(a)).collect(),
        privacy_blocked: None,
    }
}

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 3, hour, 0, 0).unwrap()
}

fn copy(uid: u32, key: &str, reason: Reason, entries: Vec<PlannedEntry>) -> DecidedCopy {
    DecidedCopy {
        mailbox: "queue@localhost:993/Queue".into(),
        mailbox_name: "default".into(),
        uid_validity: 7,
        uid,
        run_id: 1,
        message_id: Some(format!("<{key}>")),
        message_key: format!("mid:{key}"),
        sha256: "ab".repeat(32),
        sender: Some("sp1@ourco.example".into()),
        subject: format!("subject of {key}"),
        reason,
        ambiguous: false,
        error: None,
        entries,
        occurred_at: at(10),
        sent_at: Some(at(10)),
        received_at: at(11),
        date_fallback: false,
        size: 123,
        raw: None,
    }
}

fn entry(direction: Direction, sp: &str, contact: &str, company: Option<&str>) -> PlannedEntry {
    PlannedEntry {
        direction,
        salesperson: SalespersonCode::parse(sp).unwrap(),
        contact: ContactRef {
            no: ContactNo::parse(contact).unwrap(),
            company_no: company.map(|c| ContactNo::parse(c).unwrap()),
        },
    }
}

fn email_template() -> InteractionTemplate {
    InteractionTemplate {
        code: "EMAIL".into(),
        description: "Email".into(),
        cost: "2.50".parse().unwrap(),
        duration_minutes: 5,
        interaction_group: None,
        campaign_no: None,
    }
}

async fn salespeople_upsert_replaces_addresses(store: &Store) {
    let summary = store
        .import_salespeople(&[
            salesperson("SP1", &["a@x.example", "b@x.example"]),
            salesperson("SP2", &["c@x.example"]),
        ])
        .await
        .unwrap();
    assert_eq!((summary.created, summary.updated), (2, 0));
    // b moves from SP1 to SP2 in one file: allowed.
    let summary = store
        .import_salespeople(&[
            salesperson("SP1", &["a@x.example"]),
            salesperson("SP2", &["b@x.example", "c@x.example"]),
        ])
        .await
        .unwrap();
    assert_eq!((summary.created, summary.updated), (0, 2));
    let people = store.list_salespeople().await.unwrap();
    let listed: Vec<(String, Vec<String>)> = people
        .iter()
        .map(|p| {
            (
                p.code.to_string(),
                p.addresses.iter().map(|a| a.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("SP1".to_owned(), vec!["a@x.example".to_owned()]),
            (
                "SP2".to_owned(),
                vec!["b@x.example".to_owned(), "c@x.example".to_owned()]
            ),
        ]
    );
    assert_eq!(store.count_salespeople_with_address().await.unwrap(), 2);
}

async fn an_address_on_two_salespeople_is_refused_and_nothing_is_imported(store: &Store) {
    store
        .import_salespeople(&[salesperson("SP1", &["a@x.example"])])
        .await
        .unwrap();
    let err = store
        .import_salespeople(&[
            salesperson("SP2", &["new@x.example"]),
            salesperson("SP3", &["a@x.example"]),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("a@x.example") && m.contains("SP1")),
        "{err}"
    );
    let codes: Vec<String> = store
        .list_salespeople()
        .await
        .unwrap()
        .iter()
        .map(|p| p.code.to_string())
        .collect();
    assert_eq!(codes, ["SP1"], "nothing of the failed file may remain");
}

async fn contacts_link_to_companies_by_name(store: &Store) {
    let summary = store
        .import_contacts(&[
            contact("1", ContactKind::Person, Some("Acme"), &["p1@acme.example"]),
            contact(
                "2",
                ContactKind::Person,
                Some("Globex"),
                &["p2@globex.example"],
            ),
            Contact {
                name: "Acme".into(),
                ..contact("ACME", ContactKind::Company, None, &["info@acme.example"])
            },
        ])
        .await
        .unwrap();
    assert_eq!(summary.created, 3);
    assert_eq!(summary.companies_created, ["CO-1"]);
    let contacts = store.list_contacts().await.unwrap();
    let company_of = |no: &str| {
        contacts
            .iter()
            .find(|c| c.no.as_str() == no)
            .unwrap()
            .company_no
            .as_ref()
            .map(|c| c.to_string())
    };
    // The company in the file is used, not created again; the missing one is.
    assert_eq!(company_of("1").as_deref(), Some("ACME"));
    assert_eq!(company_of("2").as_deref(), Some("CO-1"));
    assert_eq!(company_of("ACME").as_deref(), Some("ACME"));
    let co1 = contacts.iter().find(|c| c.no.as_str() == "CO-1").unwrap();
    assert_eq!(
        (co1.name.as_str(), co1.kind, co1.addresses.len()),
        ("Globex", ContactKind::Company, 0)
    );
    // A second import naming Globex reuses CO-1.
    let summary = store
        .import_contacts(&[contact("3", ContactKind::Person, Some("Globex"), &[])])
        .await
        .unwrap();
    assert!(summary.companies_created.is_empty());
}

async fn lookups_resolve_addresses_lowest_contact_first(store: &Store) {
    store
        .import_salespeople(&[salesperson("SP1", &["sp1@ourco.example"])])
        .await
        .unwrap();
    store
        .import_contacts(&[
            contact(
                "10",
                ContactKind::Person,
                None,
                &["shared@x.example", "ten@x.example"],
            ),
            contact(
                "9",
                ContactKind::Person,
                Some("Nine Inc"),
                &["shared@x.example"],
            ),
        ])
        .await
        .unwrap();
    let view = store
        .lookup_addresses(&[
            addr("sp1@ourco.example"),
            addr("shared@x.example"),
            addr("nobody@x.example"),
        ])
        .await
        .unwrap();
    assert_eq!(
        view.salesperson(&addr("sp1@ourco.example"))
            .map(|s| s.to_string())
            .as_deref(),
        Some("SP1")
    );
    let (contact, ambiguous) = view.contact(&addr("shared@x.example")).unwrap();
    assert_eq!((contact.no.as_str(), ambiguous), ("9", true));
    assert_eq!(
        contact
            .company_no
            .as_ref()
            .map(|c| c.to_string())
            .as_deref(),
        Some("CO-1")
    );
    assert!(view.contact(&addr("nobody@x.example")).is_none());
    assert!(
        view.contact(&addr("ten@x.example")).is_none(),
        "only asked-for addresses are looked up"
    );
}

async fn setup_settings_and_templates_round_trip(store: &Store) {
    assert_eq!(
        store
            .mailbox_setup(&MailboxName::default_name())
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .set_enablement(
                &MailboxName::default_name(),
                &Enablement {
                    enabled: true,
                    ..Default::default()
                }
            )
            .await
            .is_err()
    );
    let setup = MailboxSetup {
        host: "imap.example".into(),
        port: 993,
        security: Security::Tls,
        auth: AuthKind::Basic,
        username: "queue".into(),
        password: Some(SecretRef::Sealed(SealedSecret("v1:k:n:c".into()))),
        oauth: None,
        queue_folder: "Public Folders/Email Logging/Queue".into(),
        storage_folder: "Public Folders/Email Logging/Storage".into(),
        not_logged_folder: None,
        quarantine_folder: Some("Quarantine".into()),
        batch_size: 100,
        allow_plaintext: false,
        ca_file: None,
        tls_trust: TlsTrust::Bundled,
    };
    store
        .save_mailbox_setup(&MailboxName::default_name(), &setup)
        .await
        .unwrap();
    assert_eq!(
        store
            .mailbox_setup(&MailboxName::default_name())
            .await
            .unwrap()
            .as_ref(),
        Some(&setup)
    );
    let oauth = MailboxSetup {
        auth: AuthKind::OAuth2,
        password: None,
        oauth: Some(OAuthSetup {
            token_url: "https://login.microsoftonline.com/t/oauth2/v2.0/token".into(),
            tenant: Some("t".into()),
            client_id: SecretRef::Env("CLIENT_ID".into()),
            client_secret: SecretRef::Exec("vault read -field=secret mail".into()),
            scope: "https://outlook.office365.com/.default".into(),
        }),
        tls_trust: TlsTrust::System,
        ca_file: Some("/etc/mailscribe/internal-ca.pem".into()),
        ..setup.clone()
    };
    store
        .save_mailbox_setup(&MailboxName::default_name(), &oauth)
        .await
        .unwrap();
    assert_eq!(
        store
            .mailbox_setup(&MailboxName::default_name())
            .await
            .unwrap()
            .as_ref(),
        Some(&oauth)
    );
    let accepted = Enablement {
        enabled: true,
        accepted_by: Some("root".into()),
        accepted_at: Some(at(9)),
    };
    store
        .set_enablement(&MailboxName::default_name(), &accepted)
        .await
        .unwrap();
    assert_eq!(
        store
            .enablement(&MailboxName::default_name())
            .await
            .unwrap(),
        accepted
    );
    // Saving the setup again keeps enablement.
    store
        .save_mailbox_setup(&MailboxName::default_name(), &setup)
        .await
        .unwrap();
    assert!(
        store
            .enablement(&MailboxName::default_name())
            .await
            .unwrap()
            .enabled
    );
    // Clearing is refused while enabled, and removes the secrets once disabled.
    assert!(matches!(
        store
            .clear_mailbox_setup(&MailboxName::default_name())
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store
            .mailbox_setup(&MailboxName::default_name())
            .await
            .unwrap()
            .is_some()
    );
    store
        .set_enablement(
            &MailboxName::default_name(),
            &Enablement {
                enabled: false,
                ..accepted.clone()
            },
        )
        .await
        .unwrap();
    assert!(
        store
            .clear_mailbox_setup(&MailboxName::default_name())
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .mailbox_setup(&MailboxName::default_name())
            .await
            .unwrap(),
        None
    );
    assert!(
        !store
            .clear_mailbox_setup(&MailboxName::default_name())
            .await
            .unwrap(),
        "nothing left to clear"
    );
    store
        .save_mailbox_setup(&MailboxName::default_name(), &setup)
        .await
        .unwrap();
    assert!(
        !store
            .enablement(&MailboxName::default_name())
            .await
            .unwrap()
            .enabled,
        "a new setup starts disabled"
    );
    store
        .set_enablement(&MailboxName::default_name(), &accepted)
        .await
        .unwrap();

    let defaults = store.settings().await.unwrap();
    assert_eq!(defaults.storage_mode, StorageMode::Reference);
    store.save_setting("storage_mode", "full").await.unwrap();
    store
        .save_setting("time_zone", "Europe/Helsinki")
        .await
        .unwrap();
    let settings = store.settings().await.unwrap();
    assert_eq!(settings.storage_mode, StorageMode::Full);
    assert_eq!(settings.time_zone.name(), "Europe/Helsinki");

    let email = store
        .template("EMAIL")
        .await
        .unwrap()
        .expect("migrations create EMAIL");
    assert_eq!(email.cost, Amount::default());
    store.save_template(&email_template()).await.unwrap();
    assert_eq!(
        store.template("EMAIL").await.unwrap(),
        Some(email_template())
    );
}

fn acquired(attempt: LeaseAttempt) -> Fence {
    match attempt {
        LeaseAttempt::Acquired(fence) => fence,
        held => panic!("expected the lease, got {held:?}"),
    }
}

async fn one_lease_holder_at_a_time(store: &Store) {
    let lease = "mailbox:m";
    let a = acquired(store.try_acquire_lease(lease, "a", 60_000).await.unwrap());
    match store.try_acquire_lease(lease, "b", 60_000).await.unwrap() {
        LeaseAttempt::Held { current, now_ms } => {
            assert_eq!(
                (current.holder.as_str(), current.generation),
                ("a", a.generation)
            );
            assert!(
                current.expires_at_ms > now_ms,
                "expiry is on the database clock, ahead of now"
            );
        }
        other => panic!("b must not get the lease: {other:?}"),
    }
    // Our own lease is renewed by acquiring again, with the same fence.
    assert_eq!(
        acquired(store.try_acquire_lease(lease, "a", 60_000).await.unwrap()),
        a
    );
    assert!(store.renew_lease(&a, 60_000).await.unwrap());
    // An expired lease is free, and changing hands moves the generation on.
    assert!(store.renew_lease(&a, -1).await.unwrap());
    let b = acquired(store.try_acquire_lease(lease, "b", 60_000).await.unwrap());
    assert!(b.generation > a.generation);
    assert!(
        !store.renew_lease(&a, 60_000).await.unwrap(),
        "a lost it: its fence is stale"
    );
    // A dead holder's lease can be taken over, once.
    let held = store.leases("mailbox:").await.unwrap().pop().unwrap();
    let c = store
        .take_over_lease(&held, "c", 60_000)
        .await
        .unwrap()
        .expect("taken over");
    assert_eq!(c.generation, b.generation + 1);
    assert_eq!(
        store.take_over_lease(&held, "d", 60_000).await.unwrap(),
        None,
        "only once"
    );
    // Releasing with a stale fence does nothing; with the right one, frees it.
    store.release_lease(&b).await.unwrap();
    assert!(matches!(
        store.try_acquire_lease(lease, "e", 60_000).await.unwrap(),
        LeaseAttempt::Held { .. }
    ));
    store.release_lease(&c).await.unwrap();
    acquired(store.try_acquire_lease(lease, "e", 60_000).await.unwrap());
    assert!(store.database_now_ms().await.unwrap() > 1_700_000_000_000);
}

async fn a_stale_fence_commits_nothing(store: &Store) {
    let old = acquired(
        store
            .try_acquire_lease("mailbox:m", "paused", 60_000)
            .await
            .unwrap(),
    );
    // The holder is paused past its expiry; another instance takes over.
    assert!(store.renew_lease(&old, -1).await.unwrap());
    let new = acquired(
        store
            .try_acquire_lease("mailbox:m", "other", 60_000)
            .await
            .unwrap(),
    );
    let logged = copy(
        1,
        "m1@x",
        Reason::Logged,
        vec![entry(Direction::Inbound, "SP1", "C1", None)],
    );
    let refused = store
        .commit_batch(
            std::slice::from_ref(&logged),
            &email_template(),
            at(12),
            Some(&old),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::LeaseLost(_))),
        "{refused:?}"
    );
    assert!(store.decisions_after(0, 100).await.unwrap().is_empty());
    assert!(store.entries_after(0, 100).await.unwrap().is_empty());
    // The same holds on the careful path (a batch with a refused copy).
    let doubled = vec![
        entry(Direction::Outbound, "SP1", "C1", None),
        entry(Direction::Outbound, "SP1", "C1", None),
    ];
    let refused = store
        .commit_batch(
            &[copy(2, "bad@x", Reason::Logged, doubled)],
            &email_template(),
            at(12),
            Some(&old),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::LeaseLost(_))),
        "{refused:?}"
    );
    assert!(store.decisions_after(0, 100).await.unwrap().is_empty());
    // The current holder commits.
    store
        .commit_batch(&[logged], &email_template(), at(12), Some(&new))
        .await
        .unwrap();
    assert_eq!(store.entries_after(0, 100).await.unwrap().len(), 1);
}

async fn several_mailboxes_by_name(store: &Store) {
    let setup = |host: &str| MailboxSetup {
        host: host.into(),
        port: 993,
        security: Security::Tls,
        auth: AuthKind::Basic,
        username: "queue".into(),
        password: Some(SecretRef::Env("PW".into())),
        oauth: None,
        queue_folder: "Queue".into(),
        storage_folder: "Storage".into(),
        not_logged_folder: None,
        quarantine_folder: None,
        batch_size: 100,
        allow_plaintext: false,
        ca_file: None,
        tls_trust: TlsTrust::Bundled,
    };
    let nordic = MailboxName::parse("Nordic").unwrap();
    store
        .save_mailbox_setup(&MailboxName::default_name(), &setup("a.example"))
        .await
        .unwrap();
    store
        .save_mailbox_setup(&nordic, &setup("b.example"))
        .await
        .unwrap();
    // Names compare without case; the first spelling is kept.
    store
        .save_mailbox_setup(&MailboxName::parse("NORDIC").unwrap(), &setup("c.example"))
        .await
        .unwrap();
    // Creating refuses a name that exists, in any case.
    let refused = store
        .create_mailbox_setup(&MailboxName::parse("nordic").unwrap(), &setup("d.example"))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(ref why)) if why.contains("exists already")),
        "{refused:?}"
    );
    store
        .create_mailbox_setup(&MailboxName::parse("Asia").unwrap(), &setup("e.example"))
        .await
        .unwrap();
    assert!(
        store
            .clear_mailbox_setup(&MailboxName::parse("asia").unwrap())
            .await
            .unwrap()
    );
    let all = store.mailboxes().await.unwrap();
    let listed: Vec<(&str, &str, bool)> = all
        .iter()
        .map(|m| (m.name.as_str(), m.setup.host.as_str(), m.enablement.enabled))
        .collect();
    assert_eq!(
        listed,
        [
            ("default", "a.example", false),
            ("Nordic", "c.example", false)
        ]
    );
    assert_eq!(all[1].status.status, "new");
    assert_eq!(
        all[1].interval_seconds, None,
        "the global interval unless set"
    );
    store
        .set_mailbox_interval(&nordic, Some(300))
        .await
        .unwrap();
    assert_eq!(
        store
            .mailbox(&nordic)
            .await
            .unwrap()
            .unwrap()
            .interval_seconds,
        Some(300)
    );
    assert!(!store.any_mailbox_enabled().await.unwrap());
    store
        .set_enablement(
            &MailboxName::parse("nordic").unwrap(),
            &Enablement {
                enabled: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(store.any_mailbox_enabled().await.unwrap());
    assert!(
        !store
            .enablement(&MailboxName::default_name())
            .await
            .unwrap()
            .enabled,
        "enablement is per mailbox"
    );
    let status = MailboxStatus {
        status: "retrying".into(),
        last_run_at: Some(at(9)),
        last_error: Some("connection refused".into()),
        next_attempt_at: Some(at(10)),
        consecutive_failures: 3,
    };
    store.record_mailbox_status(&nordic, &status).await.unwrap();
    assert_eq!(
        store.mailbox(&nordic).await.unwrap().unwrap().status,
        status
    );
    // A status without a run keeps the time of the last one.
    store
        .record_mailbox_status(
            &nordic,
            &MailboxStatus {
                status: "ok".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .mailbox(&nordic)
            .await
            .unwrap()
            .unwrap()
            .status
            .last_run_at,
        Some(at(9))
    );
    assert!(
        store
            .clear_mailbox_setup(&MailboxName::default_name())
            .await
            .unwrap()
    );
    assert!(
        store.clear_mailbox_setup(&nordic).await.is_err(),
        "enabled: not cleared"
    );
    assert_eq!(store.mailboxes().await.unwrap().len(), 1);
}

async fn a_key_logged_in_another_mailbox_makes_a_duplicate(store: &Store) {
    let entries = || vec![entry(Direction::Inbound, "SP1", "C1", None)];
    let first = DecidedCopy {
        mailbox_name: "eu".into(),
        ..copy(1, "m1@x", Reason::Logged, entries())
    };
    store
        .commit_batch(&[first], &email_template(), at(12), None)
        .await
        .unwrap();
    // Another mailbox decided the same message at the same moment, before
    // it could see the first commit: it is recorded as a duplicate.
    let second = DecidedCopy {
        mailbox: "queue@other:993/Queue".into(),
        mailbox_name: "us".into(),
        ..copy(1, "m1@x", Reason::Logged, entries())
    };
    let committed = store
        .commit_batch(&[second], &email_template(), at(12), None)
        .await
        .unwrap();
    assert_eq!(
        (committed[0].reason, committed[0].entries),
        (Reason::Duplicate, 0)
    );
    let decisions = store.decisions_after(0, 100).await.unwrap();
    let rows: Vec<(&str, &str)> = decisions
        .iter()
        .map(|d| (d.mailbox_name.as_str(), d.outcome.as_str()))
        .collect();
    assert_eq!(rows, [("eu", "logged"), ("us", "duplicate")]);
    let entries = store.entries_after(0, 100).await.unwrap();
    assert_eq!(entries.len(), 1, "one message, its entries once");
    assert_eq!(entries[0].mailbox_name, "eu");
    let filter = EntryFilter {
        mailbox_name: Some("EU".into()),
        ..Default::default()
    };
    assert_eq!(
        store.entries_page(&filter, None, 10).await.unwrap().len(),
        1
    );
    let filter = EntryFilter {
        mailbox_name: Some("us".into()),
        ..Default::default()
    };
    assert!(
        store
            .entries_page(&filter, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn instances_and_run_requests(store: &Store) {
    store
        .instance_heartbeat("a", "host-a", 10, at(9))
        .await
        .unwrap();
    store
        .instance_heartbeat("b", "host-b", 11, at(9))
        .await
        .unwrap();
    let live: Vec<String> = store
        .live_instances(60_000)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(live, ["a", "b"]);
    store.remove_instance("b").await.unwrap();
    assert_eq!(store.live_instances(60_000).await.unwrap().len(), 1);
    assert!(
        store.live_instances(-1).await.unwrap().is_empty(),
        "rows not seen within the ttl are purged"
    );

    let id = store.request_run("Nordic", "alice", at(10)).await.unwrap();
    assert!(store.run_requested("nordic").await.unwrap());
    assert!(!store.run_requested("default").await.unwrap());
    assert_eq!(store.claim_run_requests("NORDIC", "a").await.unwrap(), [id]);
    assert!(
        store
            .claim_run_requests("nordic", "b")
            .await
            .unwrap()
            .is_empty(),
        "claimed once"
    );
    assert!(!store.run_requested("nordic").await.unwrap());
    store
        .finish_run_requests(&[id], at(11), Some(7), Some("{}"), None)
        .await
        .unwrap();
    let request = store.run_request(id).await.unwrap();
    assert_eq!(
        (
            request.claimed_by.as_deref(),
            request.run_id,
            request.summary.as_deref()
        ),
        (Some("a"), Some(7), Some("{}"))
    );
    assert!(request.finished_at.is_some());
    let unanswered = store.request_run("default", "bob", at(12)).await.unwrap();
    store.withdraw_run_request(unanswered).await.unwrap();
    assert!(store.run_request(unanswered).await.is_err());
}

async fn a_batch_commits_decisions_and_entries(store: &Store) {
    let copies = vec![
        copy(
            1,
            "m1@x",
            Reason::Logged,
            vec![
                entry(Direction::Outbound, "SP1", "C1", Some("CO1")),
                entry(Direction::Outbound, "SP1", "C2", None),
            ],
        ),
        copy(2, "m1@x", Reason::Duplicate, vec![]),
        copy(3, "m3@x", Reason::UnknownSender, vec![]),
    ];
    let committed = store
        .commit_batch(&copies, &email_template(), at(12), None)
        .await
        .unwrap();
    let reasons: Vec<Reason> = committed.iter().map(|c| c.reason).collect();
    assert_eq!(
        reasons,
        [Reason::Logged, Reason::Duplicate, Reason::UnknownSender]
    );
    assert_eq!(committed[0].entries, 2);

    let keys = store
        .logged_keys(&["mid:m1@x".into(), "mid:m3@x".into()])
        .await
        .unwrap();
    assert_eq!(keys.into_iter().collect::<Vec<_>>(), ["mid:m1@x"]);

    let states = store
        .ledger_states("queue@localhost:993/Queue", 7, &[1, 2, 3, 4])
        .await
        .unwrap();
    assert_eq!(states.len(), 3);
    assert!(states.values().all(|s| s.is_final()));

    store
        .record_dispositions(&[DispositionUpdate {
            ledger_id: committed[0].ledger_id,
            disposition: "stored".into(),
            storage: Some(("Storage".into(), 99, 5)),
            move_error: None,
        }])
        .await
        .unwrap();
    // A refused move keeps the copy in the queue and counts the refusal.
    let refused = DispositionUpdate {
        ledger_id: committed[1].ledger_id,
        disposition: "kept".into(),
        storage: None,
        move_error: Some("NO [OVERQUOTA] Quota exceeded".into()),
    };
    store
        .record_dispositions(std::slice::from_ref(&refused))
        .await
        .unwrap();
    store.record_dispositions(&[refused]).await.unwrap();
    let uid = u32::try_from(store.decisions_after(0, 100).await.unwrap()[1].uid).unwrap();
    let state = &store
        .ledger_states("queue@localhost:993/Queue", 7, &[uid])
        .await
        .unwrap()[&uid];
    assert_eq!(
        (state.disposition.as_deref(), state.move_attempts),
        (Some("kept"), 2)
    );
    let row = &store.decisions_after(0, 100).await.unwrap()[1];
    assert_eq!(
        (row.move_attempts, row.move_error.as_deref()),
        (2, Some("NO [OVERQUOTA] Quota exceeded"))
    );

    let entries = store.entries_after(0, 100).await.unwrap();
    assert_eq!(entries.len(), 2);
    assert!(
        entries.iter().all(|e| e.run_id == Some(1)),
        "each entry names the run that wrote it"
    );
    let first = &entries[0];
    assert_eq!(
        (
            first.direction.as_str(),
            first.initiated_by.as_str(),
            first.salesperson_code.as_str(),
            first.contact_no.as_str()
        ),
        ("outbound", "us", "SP1", "C1")
    );
    assert_eq!(first.contact_company_no.as_deref(), Some("CO1"));
    assert_eq!(first.message_id.as_deref(), Some("<m1@x>"));
    assert_eq!(first.occurred_at, at(10));
    assert_eq!(first.cost.to_string(), "2.50");
    assert_eq!(first.duration_minutes, 5);
    assert!(entries[0].entry_no < entries[1].entry_no);
    assert_eq!(
        store
            .entries_after(entries[0].entry_no, 100)
            .await
            .unwrap()
            .len(),
        1
    );

    let decisions = store.decisions_after(0, 100).await.unwrap();
    let summary: Vec<(&str, &str, i64, Option<&str>)> = decisions
        .iter()
        .map(|d| {
            (
                d.outcome.as_str(),
                d.reason.as_str(),
                d.entries,
                d.subject.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("logged", "logged", 2, Some("subject of m1@x")),
            ("duplicate", "duplicate", 0, Some("subject of m1@x")),
            // The subject of a not-logged message is not kept.
            ("not_logged", "unknown_sender", 0, None),
        ]
    );
    assert_eq!(decisions[0].disposition.as_deref(), Some("stored"));
}

async fn final_decisions_are_never_overwritten(store: &Store) {
    let logged = copy(
        1,
        "m1@x",
        Reason::Logged,
        vec![entry(Direction::Inbound, "SP1", "C1", None)],
    );
    store
        .commit_batch(
            std::slice::from_ref(&logged),
            &email_template(),
            at(12),
            None,
        )
        .await
        .unwrap();
    // The same copy again (a run that crashed before the move, then a
    // worker that decided anyway) changes nothing and adds no entry.
    let again = store
        .commit_batch(
            &[copy(1, "m1@x", Reason::NoCounterpart, vec![])],
            &email_template(),
            at(13),
            None,
        )
        .await
        .unwrap();
    assert_eq!((again[0].reason, again[0].entries), (Reason::Logged, 1));
    assert_eq!(store.entries_after(0, 100).await.unwrap().len(), 1);
    assert_eq!(store.decisions_after(0, 100).await.unwrap().len(), 1);
}

async fn failed_copies_count_attempts_then_succeed(store: &Store) {
    let failed = DecidedCopy {
        error: Some("no body".into()),
        ..copy(5, "m5@x", Reason::Error(ErrorClass::Fetch), vec![])
    };
    let first = store
        .commit_batch(
            std::slice::from_ref(&failed),
            &email_template(),
            at(12),
            None,
        )
        .await
        .unwrap();
    let second = store
        .commit_batch(&[failed], &email_template(), at(13), None)
        .await
        .unwrap();
    assert_eq!((first[0].attempts, second[0].attempts), (1, 2));
    let states = store
        .ledger_states("queue@localhost:993/Queue", 7, &[5])
        .await
        .unwrap();
    assert!(!states[&5].is_final());
    let ok = store
        .commit_batch(
            &[copy(
                5,
                "m5@x",
                Reason::Logged,
                vec![entry(Direction::Inbound, "SP1", "C1", None)],
            )],
            &email_template(),
            at(14),
            None,
        )
        .await
        .unwrap();
    assert_eq!((ok[0].reason, ok[0].attempts), (Reason::Logged, 3));
    let decisions = store.decisions_after(0, 100).await.unwrap();
    assert_eq!(
        decisions.len(),
        1,
        "a copy keeps one ledger row, updated in place"
    );
    assert_eq!(
        (decisions[0].outcome.as_str(), decisions[0].error.as_deref()),
        ("logged", None)
    );
}

/// A batch far larger than one statement may bind (3,000 copies: the
/// ledger upsert alone would bind 60,000 values) commits whole, on the
/// fast path: every copy decided once, every entry written once.
async fn a_batch_of_thousands_commits_in_one_transaction(store: &Store) {
    let copies: Vec<DecidedCopy> = (1..=3000u32)
        .map(|uid| match uid % 3 {
            0 => copy(uid, &format!("m{}@x", uid - 1), Reason::Duplicate, vec![]),
            1 => copy(uid, &format!("u{uid}@x"), Reason::UnknownSender, vec![]),
            _ => copy(
                uid,
                &format!("m{uid}@x"),
                Reason::Logged,
                vec![entry(Direction::Inbound, "SP1", "C1", None)],
            ),
        })
        .collect();
    let committed = store
        .commit_batch(&copies, &email_template(), at(12), None)
        .await
        .unwrap();
    assert_eq!(committed.len(), 3000);
    assert!(
        committed
            .iter()
            .zip(&copies)
            .all(|(c, copy)| c.uid == copy.uid && c.reason == copy.reason && c.attempts == 1)
    );
    let decisions = store.decisions_after(0, 5000).await.unwrap();
    let outcomes = |outcome: &str| decisions.iter().filter(|d| d.outcome == outcome).count();
    assert_eq!(
        (
            outcomes("logged"),
            outcomes("duplicate"),
            outcomes("not_logged")
        ),
        (1000, 1000, 1000)
    );
    let entries = store.entries_after(0, 5000).await.unwrap();
    assert_eq!(entries.len(), 1000);
}

async fn a_refused_copy_fails_alone(store: &Store) {
    // Two identical entries for one message break the uniqueness rule; the
    // decision table never plans that, but the store must cope.
    let doubled = vec![
        entry(Direction::Outbound, "SP1", "C1", None),
        entry(Direction::Outbound, "SP1", "C1", None),
    ];
    let committed = store
        .commit_batch(
            &[
                copy(1, "bad@x", Reason::Logged, doubled),
                copy(
                    2,
                    "good@x",
                    Reason::Logged,
                    vec![entry(Direction::Outbound, "SP1", "C2", None)],
                ),
                // Judged a duplicate of copy 1, whose logging just failed.
                copy(3, "bad@x", Reason::Duplicate, vec![]),
            ],
            &email_template(),
            at(12),
            None,
        )
        .await
        .unwrap();
    assert_eq!(committed[0].reason, Reason::Error(ErrorClass::Store));
    assert_eq!(committed[1].reason, Reason::Logged);
    assert_eq!(
        committed[2].reason,
        Reason::Error(ErrorClass::Store),
        "no duplicate of a copy that was not logged"
    );
    let entries = store.entries_after(0, 100).await.unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|e| e.contact_no.as_str())
            .collect::<Vec<_>>(),
        ["C2"]
    );
    assert!(
        store
            .logged_keys(&["mid:bad@x".into()])
            .await
            .unwrap()
            .is_empty()
    );
    let decisions = store.decisions_after(0, 100).await.unwrap();
    assert_eq!(decisions[0].outcome, "failed");
    assert!(
        decisions[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("refused")
    );
}

/// Where an earlier batch's copies went is recorded in the next batch's
/// commit: with it, never without it, and once on the careful path.
async fn dispositions_ride_with_the_next_commit(store: &Store) {
    let fence = acquired(
        store
            .try_acquire_lease("mailbox:m", "worker", 60_000)
            .await
            .unwrap(),
    );
    let first = store
        .commit_batch(
            &[
                copy(
                    1,
                    "m1@x",
                    Reason::Logged,
                    vec![entry(Direction::Inbound, "SP1", "C1", None)],
                ),
                copy(2, "m2@x", Reason::UnknownSender, vec![]),
            ],
            &email_template(),
            at(12),
            Some(&fence),
        )
        .await
        .unwrap();
    let stored = DispositionUpdate {
        ledger_id: first[0].ledger_id,
        disposition: "stored".into(),
        storage: Some(("Storage".into(), 99, 5)),
        move_error: None,
    };
    let refused_move = DispositionUpdate {
        ledger_id: first[1].ledger_id,
        disposition: "kept".into(),
        storage: None,
        move_error: Some("NO [OVERQUOTA] Quota exceeded".into()),
    };
    let dispositions = [stored, refused_move];
    let disposition_of = async |index: usize| {
        let row = &store.decisions_after(0, 100).await.unwrap()[index];
        (row.disposition.clone(), row.move_attempts)
    };

    // A commit refused for a lost lease records nothing either.
    let stale = Fence {
        generation: fence.generation + 1,
        ..fence.clone()
    };
    let refused = store
        .commit_batch_recording(
            &[copy(3, "m3@x", Reason::UnknownSender, vec![])],
            &dispositions,
            &email_template(),
            at(12),
            Some(&stale),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::LeaseLost(_))),
        "{refused:?}"
    );
    assert_eq!(disposition_of(0).await, (None, 0));
    assert_eq!(disposition_of(1).await, (None, 0));

    // The careful path (a copy the database refuses) records them once.
    let doubled = vec![
        entry(Direction::Outbound, "SP1", "C1", None),
        entry(Direction::Outbound, "SP1", "C1", None),
    ];
    let second = store
        .commit_batch_recording(
            &[
                copy(3, "bad@x", Reason::Logged, doubled),
                copy(
                    4,
                    "m4@x",
                    Reason::Logged,
                    vec![entry(Direction::Inbound, "SP1", "C2", None)],
                ),
            ],
            &dispositions,
            &email_template(),
            at(12),
            Some(&fence),
        )
        .await
        .unwrap();
    assert_eq!(second[0].reason, Reason::Error(ErrorClass::Store));
    assert_eq!(second[1].reason, Reason::Logged);
    assert_eq!(disposition_of(0).await, (Some("stored".into()), 0));
    assert_eq!(
        disposition_of(1).await,
        (Some("kept".into()), 1),
        "a refused move counted once"
    );
    let record_id = store.entries_after(0, 100).await.unwrap()[0]
        .message_record_id
        .unwrap();
    let record = store.message_record(record_id).await.unwrap().unwrap();
    assert_eq!(record.storage_folder.as_deref(), Some("Storage"));

    // With nothing to commit, they are still recorded.
    let last = DispositionUpdate {
        ledger_id: second[1].ledger_id,
        disposition: "stored".into(),
        storage: None,
        move_error: None,
    };
    let nothing = store
        .commit_batch_recording(&[], &[last], &email_template(), at(12), Some(&fence))
        .await
        .unwrap();
    assert!(nothing.is_empty());
    assert_eq!(disposition_of(3).await, (Some("stored".into()), 0));
}

async fn not_logged_rows_are_purged(store: &Store) {
    store
        .commit_batch(
            &[
                copy(1, "a@x", Reason::UnknownSender, vec![]),
                copy(
                    2,
                    "b@x",
                    Reason::Logged,
                    vec![entry(Direction::Inbound, "SP1", "C1", None)],
                ),
            ],
            &email_template(),
            at(10),
            None,
        )
        .await
        .unwrap();
    assert_eq!(store.purge_not_logged(at(9)).await.unwrap(), 0);
    assert_eq!(store.purge_not_logged(at(11)).await.unwrap(), 1);
    let left: Vec<String> = store
        .decisions_after(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.outcome)
        .collect();
    assert_eq!(left, ["logged"]);
}

async fn runs_are_recorded(store: &Store) {
    let id = store.start_run("m", "default", at(10)).await.unwrap();
    let mut counts = RunCounts {
        seen: 3,
        logged: 1,
        not_logged: 2,
        entries: 2,
        ..Default::default()
    };
    counts.by_reason.insert("logged".into(), 1);
    counts.by_reason.insert("unknown_sender".into(), 2);
    store
        .finish_run(id, at(11), "completed", &counts, None)
        .await
        .unwrap();
    let runs = store.recent_runs(10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (
            runs[0].status.as_str(),
            &runs[0].counts,
            runs[0].finished_at
        ),
        ("completed", &counts, Some(at(11)))
    );
}

async fn full_mode_keeps_the_raw_bytes(store: &Store) {
    let raw: Vec<u8> = b"From: a@b.c\r\nTo: d@e.f\r\n\r\n\xff\x00binary body\r\n".repeat(1000);
    let with_raw = DecidedCopy {
        raw: Some(raw.clone()),
        ..copy(
            1,
            "m@x",
            Reason::Logged,
            vec![entry(Direction::Inbound, "SP1", "C1", None)],
        )
    };
    store
        .commit_batch(&[with_raw], &email_template(), at(10), None)
        .await
        .unwrap();
    let entries = store.entries_after(0, 1).await.unwrap();
    let stored = store
        .stored_raw_message(entries[0].message_record_id.unwrap())
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(raw.as_slice()));
}

async fn users_sessions_and_tokens(store: &Store) {
    use mailscribe_core::Role;
    assert_eq!(store.count_users().await.unwrap(), 0);
    // The first admin needs the setup token, once.
    store.put_setup_token("setup-hash", at(12)).await.unwrap();
    assert!(store.setup_token_valid("setup-hash", at(11)).await.unwrap());
    assert!(
        !store.setup_token_valid("setup-hash", at(13)).await.unwrap(),
        "expired"
    );
    assert_eq!(
        store
            .create_first_admin("wrong-hash", "eve", "h", at(11))
            .await
            .unwrap(),
        None
    );
    let admin = store
        .create_first_admin("setup-hash", "root", "hash-1", at(11))
        .await
        .unwrap()
        .expect("created");
    assert_eq!(
        store
            .create_first_admin("setup-hash", "eve", "h", at(11))
            .await
            .unwrap(),
        None,
        "spent"
    );

    let code = SalespersonCode::parse("SP1").unwrap();
    let seller = store
        .create_user("sally", "hash-2", Role::Salesperson, Some(&code), at(11))
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_user("sally", "x", Role::User, None, at(11))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let (user, hash) = store.user_by_name("sally").await.unwrap().unwrap();
    assert_eq!(
        (user.id, user.role, user.salesperson.as_ref(), hash.as_str()),
        (seller, Role::Salesperson, Some(&code), "hash-2")
    );
    assert!(store.user_by_name("nobody").await.unwrap().is_none());

    store
        .create_session("session-hash", admin, "csrf-1", at(10), at(14))
        .await
        .unwrap();
    let (user, csrf) = store
        .session_user("session-hash", at(11), at(9))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((user.name.as_str(), csrf.as_str()), ("root", "csrf-1"));
    assert!(
        store
            .session_user("session-hash", at(15), at(9))
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    // Idle: used at 11 (recorded above), so alive for "idle since 10:59",
    // gone for "idle since 11:01".
    assert!(
        store
            .session_user("session-hash", at(12), at(10))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .session_user(
                "session-hash",
                at(13),
                at(12) + chrono::Duration::minutes(1)
            )
            .await
            .unwrap()
            .is_none(),
        "idle"
    );
    store.delete_session("session-hash").await.unwrap();
    assert!(
        store
            .session_user("session-hash", at(11), at(9))
            .await
            .unwrap()
            .is_none()
    );

    store
        .create_api_token("token-hash", seller, at(10), None)
        .await
        .unwrap();
    assert_eq!(
        store
            .api_token_user("token-hash", at(11))
            .await
            .unwrap()
            .map(|u| u.id),
        Some(seller)
    );
    assert!(
        store
            .api_token_user("other", at(11))
            .await
            .unwrap()
            .is_none()
    );
    store
        .create_api_token("short-hash", seller, at(10), Some(at(12)))
        .await
        .unwrap();
    assert!(
        store
            .api_token_user("short-hash", at(11))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .api_token_user("short-hash", at(13))
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
}

async fn accounts_are_managed_and_changes_revoke_access(store: &Store) {
    use mailscribe_core::Role;
    use mailscribe_store::UserChange;
    let root = store
        .create_user("root", "h", Role::Admin, None, at(10))
        .await
        .unwrap();
    let code = SalespersonCode::parse("SP1").unwrap();
    let sally = store
        .create_user("sally", "h", Role::Salesperson, Some(&code), at(10))
        .await
        .unwrap();
    let holds = |user: i64, n: &'static str| async move {
        store
            .create_session(&format!("s-{n}"), user, "c", at(10), at(20))
            .await
            .unwrap();
        store
            .create_api_token(&format!("t-{n}"), user, at(10), None)
            .await
            .unwrap();
    };
    let can = |n: &'static str| async move {
        (
            store
                .session_user(&format!("s-{n}"), at(11), at(9))
                .await
                .unwrap()
                .is_some(),
            store
                .api_token_user(&format!("t-{n}"), at(11))
                .await
                .unwrap()
                .is_some(),
        )
    };
    holds(sally, "1").await;
    assert_eq!(can("1").await, (true, true));
    store
        .change_user("sally", &UserChange::Password("new".into()))
        .await
        .unwrap();
    assert_eq!(
        can("1").await,
        (false, false),
        "a new password ends sessions and revokes tokens"
    );
    holds(sally, "2").await;
    store
        .change_user("sally", &UserChange::Disable)
        .await
        .unwrap();
    assert_eq!(can("2").await, (false, false));
    assert!(
        store.user_by_name("sally").await.unwrap().is_none(),
        "a disabled user cannot sign in"
    );
    store
        .change_user("sally", &UserChange::Enable)
        .await
        .unwrap();
    holds(sally, "3").await;
    store
        .change_user("sally", &UserChange::Role(Role::User, None))
        .await
        .unwrap();
    assert_eq!(can("3").await, (false, false), "a new role too");
    // The last admin stays.
    for change in [
        UserChange::Disable,
        UserChange::Remove,
        UserChange::Role(Role::User, None),
    ] {
        let refused = store.change_user("root", &change).await;
        assert!(
            matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("last active admin")),
            "{change:?}: {refused:?}"
        );
    }
    assert!(matches!(
        store.change_user("nobody", &UserChange::Disable).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .change_user("sally", &UserChange::Role(Role::Admin, None))
        .await
        .unwrap();
    store
        .change_user("root", &UserChange::Disable)
        .await
        .unwrap();
    let listed: Vec<(String, bool)> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.user.name, u.disabled))
        .collect();
    assert_eq!(
        listed,
        [("root".to_owned(), true), ("sally".to_owned(), false)]
    );
    // Tokens are listed without the token and revoked by id.
    let id = store
        .create_api_token("t-x", sally, at(10), Some(at(20)))
        .await
        .unwrap();
    let tokens = store.list_tokens(Some("sally")).await.unwrap();
    assert_eq!(
        tokens
            .iter()
            .map(|t| (t.id, t.expires_at))
            .collect::<Vec<_>>(),
        [(id, Some(at(20)))]
    );
    assert!(store.list_tokens(Some("root")).await.unwrap().is_empty());
    assert!(store.revoke_token(id).await.unwrap());
    assert!(!store.revoke_token(id).await.unwrap());
    // Sign out everywhere; purge what expired or went idle.
    store
        .create_session("s-a", sally, "c", at(10), at(20))
        .await
        .unwrap();
    store
        .create_session("s-b", sally, "c", at(10), at(20))
        .await
        .unwrap();
    assert_eq!(store.end_sessions(sally).await.unwrap(), 2);
    store
        .create_session("s-old", sally, "c", at(10), at(11))
        .await
        .unwrap();
    store
        .create_session("s-new", sally, "c", at(12), at(20))
        .await
        .unwrap();
    assert_eq!(store.purge_sessions(at(12), at(9)).await.unwrap(), 1);
    let _ = root;
}

async fn deleting_a_salesperson_disables_their_accounts(store: &Store) {
    use mailscribe_core::Role;
    store
        .import_salespeople(&[Salesperson {
            code: SalespersonCode::parse("SP9").unwrap(),
            name: "Nine".into(),
            addresses: vec![EmailAddress::parse("nine@ourco.example").unwrap()],
        }])
        .await
        .unwrap();
    let code = SalespersonCode::parse("SP9").unwrap();
    let nine = store
        .create_user("nine", "h", Role::Salesperson, Some(&code), at(10))
        .await
        .unwrap();
    store
        .create_api_token("t-nine", nine, at(10), None)
        .await
        .unwrap();
    assert!(store.delete_salesperson("SP9").await.unwrap());
    assert!(
        store
            .api_token_user("t-nine", at(11))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .list_users()
            .await
            .unwrap()
            .iter()
            .any(|u| u.user.name == "nine" && u.disabled)
    );
}

async fn setup_drafts_are_kept_per_user(store: &Store) {
    use mailscribe_core::Role;
    let alice = store
        .create_user("alice", "h", Role::Admin, None, at(10))
        .await
        .unwrap();
    let bob = store
        .create_user("bob", "h", Role::Admin, None, at(10))
        .await
        .unwrap();
    assert_eq!(store.setup_draft(alice).await.unwrap(), None);
    store
        .save_setup_draft(alice, r#"{"name":"eu"}"#, at(10))
        .await
        .unwrap();
    store
        .save_setup_draft(bob, r#"{"name":"us"}"#, at(10))
        .await
        .unwrap();
    // A later save replaces the user's draft.
    store
        .save_setup_draft(alice, r#"{"name":"nordic"}"#, at(11))
        .await
        .unwrap();
    assert_eq!(
        store.setup_draft(alice).await.unwrap().as_deref(),
        Some(r#"{"name":"nordic"}"#)
    );
    store.delete_setup_draft(alice).await.unwrap();
    store.delete_setup_draft(alice).await.unwrap();
    assert_eq!(store.setup_draft(alice).await.unwrap(), None);
    assert_eq!(
        store.setup_draft(bob).await.unwrap().as_deref(),
        Some(r#"{"name":"us"}"#),
        "only alice's went"
    );
}

async fn the_log_filters_and_pages_newest_first(store: &Store) {
    let mut copies = Vec::new();
    for i in 0..5u32 {
        let mut c = copy(
            i + 1,
            &format!("m{i}@x"),
            Reason::Logged,
            vec![entry(
                if i % 2 == 0 {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                },
                if i < 3 { "SP1" } else { "SP2" },
                &format!("C{}", i % 2),
                Some("CO1"),
            )],
        );
        c.occurred_at = at(8 + i);
        c.subject = format!("Offer_{i} for Spring{i} 100% discount");
        copies.push(c);
    }
    store
        .commit_batch(&copies, &email_template(), at(20), None)
        .await
        .unwrap();
    let page = |filter: EntryFilter, before: Option<EntryCursor>, limit: i64| {
        let filter = filter.clone();
        async move {
            store
                .entries_page(&filter, before, limit)
                .await
                .unwrap()
                .iter()
                .map(|e| e.subject.chars().nth(6).unwrap())
                .collect::<String>()
        }
    };
    assert_eq!(
        page(EntryFilter::default(), None, 10).await,
        "43210",
        "newest first"
    );
    let first = store
        .entries_page(&EntryFilter::default(), None, 2)
        .await
        .unwrap();
    let cursor = EntryCursor {
        occurred_at: first[1].occurred_at,
        entry_no: first[1].entry_no,
    };
    assert_eq!(
        page(EntryFilter::default(), Some(cursor), 2).await,
        "21",
        "keyset paging"
    );
    let by = |f: fn(&mut EntryFilter)| {
        let mut filter = EntryFilter::default();
        f(&mut filter);
        filter
    };
    assert_eq!(
        page(by(|f| f.salesperson_code = Some("SP2".into())), None, 10).await,
        "43"
    );
    assert_eq!(
        page(by(|f| f.contact_no = Some("C1".into())), None, 10).await,
        "31"
    );
    assert_eq!(
        page(by(|f| f.company_no = Some("CO1".into())), None, 10).await,
        "43210"
    );
    assert_eq!(
        page(by(|f| f.direction = Some("inbound".into())), None, 10).await,
        "420"
    );
    assert_eq!(
        page(
            by(|f| {
                f.from = Some(at(9));
                f.to = Some(at(11));
            }),
            None,
            10
        )
        .await,
        "21"
    );
    // Word prefixes, any case, every word; punctuation only separates words.
    assert_eq!(
        page(by(|f| f.text = Some("spring3".into())), None, 10).await,
        "3"
    );
    assert_eq!(
        page(by(|f| f.text = Some("SPRING".into())), None, 10).await,
        "43210"
    );
    assert_eq!(
        page(by(|f| f.text = Some("pring".into())), None, 10).await,
        "",
        "not a word prefix"
    );
    assert_eq!(
        page(by(|f| f.text = Some("offer_2".into())), None, 10).await,
        "2"
    );
    assert_eq!(
        page(by(|f| f.text = Some("disc spring4".into())), None, 10).await,
        "4"
    );
    assert_eq!(
        page(by(|f| f.text = Some("100%".into())), None, 10).await,
        "43210"
    );
    assert_eq!(
        page(
            by(|f| f.text = Some("\"spring*\" OR 'x' & !:*".into())),
            None,
            10
        )
        .await,
        "",
        "no query syntax gets through"
    );

    let no = store
        .entries_page(&EntryFilter::default(), None, 1)
        .await
        .unwrap()[0]
        .entry_no;
    store
        .add_entry_comment(no, "called back", at(21))
        .await
        .unwrap();
    store
        .add_entry_comment(no, "sent the offer", at(22))
        .await
        .unwrap();
    let comments = store.entry_comments(no).await.unwrap();
    assert_eq!(
        comments
            .iter()
            .map(|c| (c.line_no, c.comment.as_str()))
            .collect::<Vec<_>>(),
        [(10000, "called back"), (20000, "sent the offer")]
    );
    store.set_entry_canceled(no, true).await.unwrap();
    assert!(store.entry(no).await.unwrap().unwrap().canceled);
    assert!(store.entry(999_999).await.unwrap().is_none());
}

async fn opportunities_from_entries_link_both_ways(store: &Store) {
    use mailscribe_store::NewOpportunity;
    let copies = vec![
        copy(
            1,
            "a@x",
            Reason::Logged,
            vec![entry(Direction::Inbound, "SP1", "C1", Some("CO1"))],
        ),
        copy(
            2,
            "b@x",
            Reason::Logged,
            vec![entry(Direction::Outbound, "SP2", "C2", None)],
        ),
    ];
    store
        .commit_batch(&copies, &email_template(), at(10), None)
        .await
        .unwrap();
    let entries = store.entries_after(0, 10).await.unwrap();
    let (first, second) = (entries[0].entry_no, entries[1].entry_no);
    store
        .add_entry_comment(first, "asked for a quote", at(11))
        .await
        .unwrap();
    let no = store
        .create_opportunity_from_entry(first, at(12))
        .await
        .unwrap();
    assert_eq!(no, "OP-1");
    let opportunity = store.opportunity(&no).await.unwrap().unwrap();
    assert_eq!(
        (
            opportunity.description.as_str(),
            opportunity.contact_no.as_deref(),
            opportunity.contact_company_no.as_deref(),
            opportunity.salesperson_code.as_deref(),
            opportunity.status.as_str()
        ),
        (
            "subject of a@x",
            Some("C1"),
            Some("CO1"),
            Some("SP1"),
            "not_started"
        )
    );
    assert_eq!(
        store.opportunity_comments(&no).await.unwrap(),
        ["asked for a quote"]
    );
    assert_eq!(store.opportunity_entries(&no).await.unwrap(), [first]);
    assert_eq!(
        store
            .entry(first)
            .await
            .unwrap()
            .unwrap()
            .opportunity_no
            .as_deref(),
        Some("OP-1")
    );
    // Not twice, and not from a canceled entry.
    assert!(matches!(
        store.create_opportunity_from_entry(first, at(12)).await,
        Err(StoreError::Conflict(_))
    ));
    store.set_entry_canceled(second, true).await.unwrap();
    assert!(matches!(
        store.create_opportunity_from_entry(second, at(12)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.entry(second).await.unwrap().unwrap().opportunity_no,
        None
    );

    let manual = store
        .create_opportunity(
            &NewOpportunity {
                description: "Big deal".into(),
                salesperson_code: Some("SP2".into()),
                estimated_value: Some("1000".parse().unwrap()),
                ..Default::default()
            },
            at(13),
        )
        .await
        .unwrap();
    store
        .update_opportunity(&manual, "won", Some("1200.50".parse().unwrap()))
        .await
        .unwrap();
    assert!(
        store
            .update_opportunity(&manual, "maybe", None)
            .await
            .is_err()
    );
    let listed: Vec<String> = store
        .opportunities(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.no)
        .collect();
    assert_eq!(listed.len(), 2);
    let mine: Vec<String> = store
        .opportunities(Some("SP2"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|o| {
            format!(
                "{} {}",
                o.no,
                o.estimated_value.map(|v| v.to_string()).unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(mine, [format!("{manual} 1200.50")]);
}

async fn deleting_from_the_directory(store: &Store) {
    store
        .import_contacts(&[contact(
            "1",
            ContactKind::Person,
            Some("Acme"),
            &["p@acme.example"],
        )])
        .await
        .unwrap();
    assert!(
        matches!(
            store.delete_contact("CO-1").await,
            Err(StoreError::Conflict(_))
        ),
        "people belong to it"
    );
    assert!(store.delete_contact("1").await.unwrap());
    assert!(!store.delete_contact("1").await.unwrap(), "gone already");
    assert!(
        store.delete_contact("CO-1").await.unwrap(),
        "a company with no people goes"
    );
    assert!(
        store
            .lookup_addresses(&[addr("p@acme.example")])
            .await
            .unwrap()
            .contact(&addr("p@acme.example"))
            .is_none()
    );
    store
        .import_salespeople(&[salesperson("SP1", &["s@x.example"])])
        .await
        .unwrap();
    assert!(store.delete_salesperson("SP1").await.unwrap());
    assert_eq!(store.count_salespeople_with_address().await.unwrap(), 0);
}

async fn a_value_the_database_cannot_hold_fails_that_copy_alone(store: &Store) {
    // PostgreSQL refuses NUL in text (SQLSTATE 22021, a data exception, all
    // digits); SQLite keeps it. Either way the batch commits, and on
    // PostgreSQL the copy is `error:store`, never an outage of the run.
    let bad = DecidedCopy {
        sender: Some("nul\0@x.example".into()),
        ..copy(1, "m1@x", Reason::UnknownSender, vec![])
    };
    let good = copy(
        2,
        "m2@x",
        Reason::Logged,
        vec![entry(Direction::Inbound, "SP1", "C1", None)],
    );
    let committed = store
        .commit_batch(&[bad, good], &email_template(), at(12), None)
        .await
        .expect("not an outage");
    let reasons: Vec<Reason> = committed.iter().map(|c| c.reason).collect();
    let expected_first = if store.backend_name() == "postgres" {
        Reason::Error(ErrorClass::Store)
    } else {
        Reason::UnknownSender
    };
    assert_eq!(reasons, [expected_first, Reason::Logged]);
    assert_eq!(store.entries_after(0, 100).await.unwrap().len(), 1);
}

async fn deleting_entries_keeps_the_ledger(store: &Store) {
    use mailscribe_store::{DeletionSummary, EntrySelection};
    // One message, two contacts: two entries on one message record.
    let two = copy(
        1,
        "m1@x",
        Reason::Logged,
        vec![
            entry(Direction::Outbound, "SP1", "C1", None),
            entry(Direction::Outbound, "SP1", "C2", None),
        ],
    );
    let one = DecidedCopy {
        raw: Some(b"From: x\r\n\r\nbody".to_vec()),
        ..copy(
            2,
            "m2@x",
            Reason::Logged,
            vec![entry(Direction::Inbound, "SP1", "C1", None)],
        )
    };
    store
        .commit_batch(&[two, one], &email_template(), at(12), None)
        .await
        .unwrap();
    let entries = store.entries_after(0, 100).await.unwrap();
    let numbers: Vec<i64> = entries.iter().map(|e| e.entry_no).collect();
    store
        .add_entry_comment(numbers[0], "a note", at(13))
        .await
        .unwrap();
    // Half of a message's entries: its record stays.
    let first = EntrySelection::Entries(vec![numbers[0]]);
    assert_eq!(
        store.delete_entries(&first, true).await.unwrap(),
        DeletionSummary {
            entries: 1,
            messages: 0
        },
        "dry run"
    );
    assert_eq!(
        store.entries_after(0, 100).await.unwrap().len(),
        3,
        "a dry run deletes nothing"
    );
    assert_eq!(
        store.delete_entries(&first, false).await.unwrap(),
        DeletionSummary {
            entries: 1,
            messages: 0
        }
    );
    assert!(
        store
            .message_record(entries[0].message_record_id.unwrap())
            .await
            .unwrap()
            .is_some()
    );
    // The last entry of a message takes its record (and stored bytes) along.
    let rest = EntrySelection::Entries(vec![numbers[1], numbers[2]]);
    assert_eq!(
        store.delete_entries(&rest, false).await.unwrap(),
        DeletionSummary {
            entries: 2,
            messages: 2
        }
    );
    assert!(
        store
            .message_record(entries[0].message_record_id.unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .stored_raw_message(entries[2].message_record_id.unwrap())
            .await
            .unwrap()
            .is_none()
    );
    // The ledger keeps both decisions, unlinked, and later copies are still duplicates.
    let decisions = store.decisions_after(0, 100).await.unwrap();
    assert_eq!(
        decisions
            .iter()
            .map(|d| d.outcome.as_str())
            .collect::<Vec<_>>(),
        ["logged", "logged"]
    );
    assert_eq!(
        store.logged_keys(&["mid:m1@x".into()]).await.unwrap().len(),
        1
    );
    // Canceled entries before a day.
    let older = DecidedCopy {
        occurred_at: at(14),
        ..copy(
            3,
            "m3@x",
            Reason::Logged,
            vec![entry(Direction::Inbound, "SP1", "C1", None)],
        )
    };
    let newer = DecidedCopy {
        occurred_at: at(15),
        ..copy(
            4,
            "m4@x",
            Reason::Logged,
            vec![entry(Direction::Inbound, "SP1", "C2", None)],
        )
    };
    store
        .commit_batch(&[older, newer], &email_template(), at(15), None)
        .await
        .unwrap();
    for entry in store.entries_after(0, 100).await.unwrap() {
        store
            .set_entry_canceled(entry.entry_no, true)
            .await
            .unwrap();
    }
    let canceled = EntrySelection::CanceledBefore(at(15));
    assert_eq!(
        store
            .delete_entries(&canceled, false)
            .await
            .unwrap()
            .entries,
        1,
        "only the older one"
    );
    assert_eq!(store.entries_after(0, 100).await.unwrap().len(), 1);
}

async fn privacy_blocked_contacts_are_kept_apart(store: &Store) {
    use mailscribe_core::Role;
    let _ = Role::Admin;
    store
        .import_contacts(&[
            Contact {
                privacy_blocked: Some(true),
                ..contact("1", ContactKind::Person, None, &["c1@x.example"])
            },
            contact("2", ContactKind::Person, None, &["c2@x.example"]),
        ])
        .await
        .unwrap();
    let view = store
        .lookup_addresses(&[addr("c1@x.example"), addr("c2@x.example")])
        .await
        .unwrap();
    assert!(view.is_privacy_blocked(&ContactNo::parse("1").unwrap()));
    assert!(!view.is_privacy_blocked(&ContactNo::parse("2").unwrap()));
    // A file without the column leaves the flag as it is; `false` clears it.
    store
        .import_contacts(&[contact("1", ContactKind::Person, None, &["c1@x.example"])])
        .await
        .unwrap();
    assert!(store.contact("1").await.unwrap().unwrap().privacy_blocked);
    store
        .import_contacts(&[Contact {
            privacy_blocked: Some(false),
            ..contact("1", ContactKind::Person, None, &["c1@x.example"])
        }])
        .await
        .unwrap();
    assert!(!store.contact("1").await.unwrap().unwrap().privacy_blocked);
    // No opportunity for a blocked contact, by hand or from an entry.
    store
        .import_contacts(&[Contact {
            privacy_blocked: Some(true),
            ..contact("1", ContactKind::Person, None, &["c1@x.example"])
        }])
        .await
        .unwrap();
    let by_hand = mailscribe_store::NewOpportunity {
        description: "d".into(),
        contact_no: Some("1".into()),
        contact_company_no: None,
        salesperson_code: Some("SP1".into()),
        estimated_value: None,
    };
    assert!(
        matches!(store.create_opportunity(&by_hand, at(10)).await, Err(StoreError::Conflict(m)) if m.contains("privacy-blocked"))
    );
    store
        .commit_batch(
            &[copy(
                1,
                "m1@x",
                Reason::Logged,
                vec![entry(Direction::Inbound, "SP1", "1", None)],
            )],
            &email_template(),
            at(10),
            None,
        )
        .await
        .unwrap();
    let entry_no = store.entries_after(0, 10).await.unwrap()[0].entry_no;
    assert!(matches!(
        store.create_opportunity_from_entry(entry_no, at(11)).await,
        Err(StoreError::Conflict(_))
    ));
}

mod sso;
