//! Single sign-on in the store, on both databases: the configuration, the
//! pending sign-ins (used once), and the linking rules.

use chrono::{DateTime, TimeZone, Utc};
use mailscribe_core::{
    EmailAddress, Role, RoleMapping, Salesperson, SalespersonCode, SealedSecret, SecretRef,
    SsoConfig,
};
use mailscribe_store::{SsoIdentity, SsoPending, SsoRefusal, SsoSignIn, Store, UserChange};

use crate::open;

conformance!(
    sso_config_round_trips_and_disables,
    pending_sign_ins_are_taken_once,
    sso_links_follow_the_rules
);

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, hour, 0, 0).unwrap()
}

fn config() -> SsoConfig {
    SsoConfig {
        issuer: "https://login.microsoftonline.com/tenant/v2.0".into(),
        client_id: "client-1".into(),
        client_secret: SecretRef::Sealed(SealedSecret("v1:abcd:nonce:cipher".into())),
        redirect_url: Some("https://mailscribe.ourco.example/sso/callback".into()),
        name_claim: "preferred_username".into(),
        roles: Some(RoleMapping {
            claim: "roles".into(),
            admin_value: "Mailscribe.Admin".into(),
            user_value: "Mailscribe.User".into(),
            salesperson_claim: Some("salesperson_code".into()),
        }),
    }
}

async fn sso_config_round_trips_and_disables(store: &Store) {
    assert_eq!(store.sso_config().await.unwrap(), None);
    store.save_sso_config(&config(), at(9)).await.unwrap();
    assert_eq!(store.sso_config().await.unwrap(), Some(config()));
    let plain = SsoConfig {
        roles: None,
        redirect_url: None,
        client_secret: SecretRef::Env("SSO_SECRET".into()),
        ..config()
    };
    store.save_sso_config(&plain, at(10)).await.unwrap();
    assert_eq!(store.sso_config().await.unwrap(), Some(plain));
    assert!(store.remove_sso_config().await.unwrap());
    assert!(!store.remove_sso_config().await.unwrap());
    assert_eq!(store.sso_config().await.unwrap(), None);
}

fn pending(state: &str, expires_at: DateTime<Utc>) -> SsoPending {
    SsoPending {
        state_hash: state.into(),
        browser_hash: "browser".into(),
        nonce: "nonce".into(),
        pkce_verifier: "verifier".into(),
        redirect_url: "http://127.0.0.1/sso/callback".into(),
        expires_at,
    }
}

async fn pending_sign_ins_are_taken_once(store: &Store) {
    store
        .put_sso_pending(&pending("s1", at(10)), at(9))
        .await
        .unwrap();
    store
        .put_sso_pending(&pending("s2", at(10)), at(9))
        .await
        .unwrap();
    assert_eq!(
        store.take_sso_pending("s1", at(9)).await.unwrap(),
        Some(pending("s1", at(10)))
    );
    assert_eq!(
        store.take_sso_pending("s1", at(9)).await.unwrap(),
        None,
        "used once"
    );
    assert_eq!(
        store.take_sso_pending("s2", at(11)).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store.take_sso_pending("unknown", at(9)).await.unwrap(),
        None
    );
}

fn identity(subject: &str, name: Option<&str>, role: Option<(Role, Option<&str>)>) -> SsoIdentity {
    SsoIdentity {
        issuer: "https://idp.example".into(),
        subject: subject.into(),
        name: name.map(str::to_owned),
        role: role.map(|(role, code)| (role, code.map(|c| SalespersonCode::parse(c).unwrap()))),
    }
}

async fn sso_links_follow_the_rules(store: &Store) {
    store
        .create_user("sally", "hash", Role::User, None, at(8))
        .await
        .unwrap();
    store
        .create_user("olga", "hash", Role::Admin, None, at(8))
        .await
        .unwrap();
    store
        .create_user("dora", "hash", Role::User, None, at(8))
        .await
        .unwrap();
    store
        .change_user("dora", &UserChange::Disable)
        .await
        .unwrap();
    store
        .import_salespeople(&[Salesperson {
            code: SalespersonCode::parse("SP1").unwrap(),
            name: "One".into(),
            addresses: vec![EmailAddress::parse("one@ourco.example").unwrap()],
        }])
        .await
        .unwrap();

    // An existing user without a link is linked by name, whatever the role
    // claim says; the next sign-in finds the link, even under a new name.
    let SsoSignIn::LinkedExisting(sally) = store
        .sso_sign_in(&identity("sub-sally", Some("sally"), None), at(9))
        .await
        .unwrap()
    else {
        panic!("sally is linked by name")
    };
    assert_eq!(sally.role, Role::User);
    assert_eq!(
        store
            .sso_sign_in(&identity("sub-sally", Some("sally.renamed"), None), at(9))
            .await
            .unwrap(),
        SsoSignIn::Known(sally.clone())
    );
    // A second identity with the same name is not linked to sally again.
    assert_eq!(
        store
            .sso_sign_in(
                &identity("sub-impostor", Some("sally"), Some((Role::Admin, None))),
                at(9)
            )
            .await
            .unwrap(),
        SsoSignIn::Refused(SsoRefusal::NameLinkedElsewhere("sally".into()))
    );
    // A disabled user is refused, by name and (once linked) by link.
    assert_eq!(
        store
            .sso_sign_in(&identity("sub-dora", Some("dora"), None), at(9))
            .await
            .unwrap(),
        SsoSignIn::Refused(SsoRefusal::Disabled("dora".into()))
    );
    // A new name: created with the mapped role, or refused without one.
    let SsoSignIn::Created(new_admin) = store
        .sso_sign_in(
            &identity("sub-nina", Some("nina"), Some((Role::Admin, None))),
            at(9),
        )
        .await
        .unwrap()
    else {
        panic!("nina is created")
    };
    assert_eq!(
        (new_admin.name.as_str(), new_admin.role),
        ("nina", Role::Admin)
    );
    assert_eq!(
        store.user_by_name("nina").await.unwrap().map(|(u, _)| u),
        Some(new_admin.clone())
    );
    assert_eq!(
        store
            .sso_sign_in(&identity("sub-nobody", Some("nobody"), None), at(9))
            .await
            .unwrap(),
        SsoSignIn::Refused(SsoRefusal::NoRole)
    );
    assert!(store.user_by_name("nobody").await.unwrap().is_none());
    assert_eq!(
        store
            .sso_sign_in(&identity("sub-anon", None, Some((Role::User, None))), at(9))
            .await
            .unwrap(),
        SsoSignIn::Refused(SsoRefusal::NoName)
    );
    // A salesperson gets the code from the claim; an unknown code is refused.
    let SsoSignIn::Created(seller) = store
        .sso_sign_in(
            &identity(
                "sub-sp",
                Some("seller"),
                Some((Role::Salesperson, Some("SP1"))),
            ),
            at(9),
        )
        .await
        .unwrap()
    else {
        panic!("seller is created")
    };
    assert_eq!(
        seller.salesperson,
        Some(SalespersonCode::parse("SP1").unwrap())
    );
    assert_eq!(
        store
            .sso_sign_in(
                &identity(
                    "sub-sp9",
                    Some("ghost"),
                    Some((Role::Salesperson, Some("SP9")))
                ),
                at(9)
            )
            .await
            .unwrap(),
        SsoSignIn::Refused(SsoRefusal::UnknownSalesperson("SP9".into()))
    );
    // Disabling a linked user refuses the link; removing the user removes it.
    store
        .change_user("nina", &UserChange::Disable)
        .await
        .unwrap();
    assert_eq!(
        store
            .sso_sign_in(
                &identity("sub-nina", Some("nina"), Some((Role::Admin, None))),
                at(10)
            )
            .await
            .unwrap(),
        SsoSignIn::Refused(SsoRefusal::Disabled("nina".into()))
    );
    store
        .change_user("nina", &UserChange::Remove)
        .await
        .unwrap();
    assert!(matches!(
        store
            .sso_sign_in(
                &identity("sub-nina", Some("nina"), Some((Role::User, None))),
                at(11)
            )
            .await
            .unwrap(),
        SsoSignIn::Created(_)
    ));
    // The same subject at another issuer is another identity.
    let other_issuer = SsoIdentity {
        issuer: "https://other.example".into(),
        ..identity("sub-sally", Some("sally"), None)
    };
    assert_eq!(
        store.sso_sign_in(&other_issuer, at(12)).await.unwrap(),
        SsoSignIn::Refused(SsoRefusal::NameLinkedElsewhere("sally".into()))
    );
    // An account made by SSO has no usable password hash.
    let (_, hash) = store.user_by_name("seller").await.unwrap().unwrap();
    assert_eq!(hash, mailscribe_store::NO_PASSWORD);
}
