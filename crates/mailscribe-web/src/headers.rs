//! Headers every response gets, from one layer: a Content-Security-Policy
//! that allows no inline script (the one script is `/static/mailscribe.js`),
//! `nosniff`, no framing, a same-origin referrer, and `no-store`, since
//! nearly every page shows mail or personal data. A handler that set its
//! own policy (the message view, attachments) keeps it. HSTS goes on
//! every response to a request that came over TLS (directly, or per
//! `X-Forwarded-Proto` from a trusted proxy): never over plain HTTP, where
//! browsers ignore it and where it would only confuse a test setup.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                           img-src 'self' data:; frame-src 'self'; object-src 'none'; base-uri 'none'; \
                           form-action 'self'; frame-ancestors 'none'";

/// The script, compiled in: nothing is read from disk at run time.
const SCRIPT: &str = include_str!("../static/mailscribe.js");

pub(crate) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // It holds no data: browsers may keep it for an hour.
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// Two years, the preload lists' minimum; not `includeSubDomains`, since
/// Mailscribe does not own its parent domain's other hosts.
const HSTS: &str = "max-age=63072000";

pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let https = request
        .extensions()
        .get::<crate::client::ClientInfo>()
        .is_some_and(|info| info.https);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}
