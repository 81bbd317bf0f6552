//! PostgreSQL over TLS (issue 10, item 7): a private server started with
//! `pg_ctl` that takes TCP connections only over TLS, with a certificate for
//! `localhost` made by the test. `sslmode` and `sslrootcert` in the URL
//! decide what is verified.

use mailscribe_store::{DatabaseUrl, Store};
use mailscribe_testkit::PgServer;

async fn open(url: String) -> Result<Store, String> {
    let url: DatabaseUrl = url
        .parse()
        .map_err(|err: mailscribe_store::StoreError| err.to_string())?;
    Store::open(&url).await.map_err(|err| err.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_over_tls_verifies_the_server_as_the_url_says() {
    let server = PgServer::start_tls();
    let port = server.port();
    let ca = server.ca_file().display().to_string();
    let wrong = server.wrong_ca_file().display().to_string();
    let url =
        |host: &str, query: &str| format!("postgres://postgres@{host}:{port}/postgres?{query}");

    // The right root and the name on the certificate.
    let store = open(url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await
    .expect("verify-full with the right CA");
    assert!(
        store.migrations_current().await.expect("answers over TLS"),
        "migrated over TLS"
    );
    store.close().await;
    // verify-ca checks the chain.
    open(url(
        "localhost",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ))
    .await
    .expect("verify-ca")
    .close()
    .await;
    let err = open(url(
        "localhost",
        &format!("sslmode=verify-ca&sslrootcert={wrong}"),
    ))
    .await
    .expect_err("verify-ca, wrong CA");
    assert!(err.contains("certificate"), "{err}");
    // FIXME: verify-ca should accept a name that is not on the certificate,
    // but sqlx 0.8.6 only recognises rustls's old `NotValidForName` error,
    // and rustls 0.23 now reports `NotValidForNameContext`: verify-ca checks
    // the name too, as verify-full does. Stricter, never weaker.
    let err = open(url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ))
    .await
    .expect_err("today: the name is checked");
    assert!(err.contains("not valid for name"), "{err}");
    // require encrypts without verifying.
    open(url("127.0.0.1", "sslmode=require"))
        .await
        .expect("require")
        .close()
        .await;

    // A wrong root, or a name not on the certificate, is refused, saying why.
    let err = open(url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={wrong}"),
    ))
    .await
    .expect_err("a wrong CA is refused");
    assert!(
        err.contains("certificate") && err.contains("sslrootcert"),
        "{err}"
    );
    let err = open(url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await
    .expect_err("a name not on the certificate");
    assert!(err.contains("certificate"), "{err}");
    // Without TLS the server lets nobody in: the connections above were TLS.
    let err = open(url("127.0.0.1", "sslmode=disable"))
        .await
        .expect_err("no TLS, no entry");
    assert!(
        err.contains("pg_hba") || err.contains("no encryption"),
        "{err}"
    );
}
