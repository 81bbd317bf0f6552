//! The SSO configuration rules and the role mapping.

use crate::sso::{RoleMapping, SsoConfig, SsoConfigError, is_https_or_loopback};
use crate::{Role, SalespersonCode, SecretRef};

fn config() -> SsoConfig {
    SsoConfig {
        issuer: "https://login.microsoftonline.com/tenant-id/v2.0".into(),
        client_id: "client".into(),
        client_secret: SecretRef::Env("SSO_SECRET".into()),
        redirect_url: None,
        name_claim: "preferred_username".into(),
        roles: None,
    }
}

fn mapping() -> RoleMapping {
    RoleMapping {
        claim: "roles".into(),
        admin_value: "Mailscribe.Admin".into(),
        user_value: "Mailscribe.User".into(),
        salesperson_claim: Some("salesperson_code".into()),
    }
}

fn claims<'a>(pairs: &'a [(&'a str, &'a [&'a str])]) -> impl Fn(&str) -> Vec<String> + 'a {
    move |name| {
        pairs
            .iter()
            .filter(|(k, _)| *k == name)
            .flat_map(|(_, v)| v.iter().map(|s| (*s).to_owned()))
            .collect()
    }
}

#[test]
fn issuer_is_https_or_loopback() {
    assert!(is_https_or_loopback(
        "https://login.microsoftonline.com/t/v2.0"
    ));
    assert!(is_https_or_loopback("http://127.0.0.1:8080"));
    assert!(is_https_or_loopback("http://[::1]:80/x"));
    assert!(is_https_or_loopback("http://localhost/x"));
    assert!(!is_https_or_loopback("http://idp.example"));
    assert!(!is_https_or_loopback("http://127.0.0.1.example/"));
    assert!(!is_https_or_loopback("https://"));
    assert!(!is_https_or_loopback("ftp://x"));
    let mut bad = config();
    bad.issuer = "http://idp.example".into();
    assert_eq!(bad.validate(), Err(SsoConfigError::Issuer));
    assert_eq!(config().validate(), Ok(()));
}

#[test]
fn redirect_url_and_mapping_are_checked() {
    let mut c = config();
    c.redirect_url = Some("https://mailscribe.ourco.example/sso/callback".into());
    assert_eq!(c.validate(), Ok(()));
    c.redirect_url = Some("https://mailscribe.ourco.example/elsewhere".into());
    assert_eq!(c.validate(), Err(SsoConfigError::RedirectUrl));
    let mut c = config();
    let mut m = mapping();
    m.user_value = m.admin_value.clone();
    c.roles = Some(m);
    assert_eq!(c.validate(), Err(SsoConfigError::SameValues));
}

#[test]
fn roles_map_admin_before_user_then_salesperson() {
    let m = mapping();
    assert_eq!(
        m.role_for(claims(&[(
            "roles",
            &["Mailscribe.User", "Mailscribe.Admin"]
        )])),
        Some((Role::Admin, None))
    );
    assert_eq!(
        m.role_for(claims(&[("roles", &["Mailscribe.User"])])),
        Some((Role::User, None))
    );
    assert_eq!(
        m.role_for(claims(&[
            ("roles", &["Other"]),
            ("salesperson_code", &["SP1"])
        ])),
        Some((
            Role::Salesperson,
            Some(SalespersonCode::parse("SP1").unwrap())
        ))
    );
    assert_eq!(m.role_for(claims(&[("roles", &["Other"])])), None);
    assert_eq!(m.role_for(claims(&[])), None);
    let without_salespeople = RoleMapping {
        salesperson_claim: None,
        ..mapping()
    };
    assert_eq!(
        without_salespeople.role_for(claims(&[("salesperson_code", &["SP1"])])),
        None
    );
}

#[test]
fn provider_label() {
    assert_eq!(config().provider_label(), "Microsoft");
    let mut c = config();
    c.issuer = "http://127.0.0.1:4444/realm".into();
    assert_eq!(c.provider_label(), "127.0.0.1:4444");
}
