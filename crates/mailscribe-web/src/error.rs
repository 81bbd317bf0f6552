//! Errors at the edge: a safe message for 4xx, an opaque one with a request
//! id for 5xx (the cause goes to the log, never to the client).

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

#[derive(Debug)]
pub(crate) enum ErrorKind {
    /// Not signed in: pages redirect to the login, the API answers 401.
    Unauthenticated,
    /// A form without the right CSRF token.
    Forbidden(&'static str),
    NotFound,
    /// It existed and is gone, with the reason.
    Gone(&'static str),
    BadRequest(String),
    /// A well-formed request that the current state refuses (it exists
    /// already, it is still used), with the reason.
    Conflict(String),
    TooManyAttempts,
    Internal(String),
}

impl ErrorKind {
    fn status(&self) -> StatusCode {
        match self {
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden(_) => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Gone(_) => StatusCode::GONE,
            ErrorKind::BadRequest(_) => StatusCode::BAD_REQUEST,
            ErrorKind::Conflict(_) => StatusCode::CONFLICT,
            ErrorKind::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable code for API clients.
    fn code(&self) -> &'static str {
        match self {
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden(_) => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Gone(_) => "gone",
            ErrorKind::BadRequest(_) => "bad_request",
            ErrorKind::Conflict(_) => "conflict",
            ErrorKind::TooManyAttempts => "too_many_attempts",
            ErrorKind::Internal(_) => "internal",
        }
    }

    /// What the client may read; for 500s a request id instead of the cause.
    fn message(&self) -> (String, Option<String>) {
        match self {
            ErrorKind::Unauthenticated => ("sign in first".into(), None),
            ErrorKind::Forbidden(why) => ((*why).into(), None),
            ErrorKind::NotFound => ("there is nothing here".into(), None),
            ErrorKind::Gone(why) => ((*why).into(), None),
            ErrorKind::BadRequest(why) | ErrorKind::Conflict(why) => (why.clone(), None),
            ErrorKind::TooManyAttempts => (
                "too many failed sign-ins; wait a minute and try again".into(),
                None,
            ),
            ErrorKind::Internal(cause) => {
                let request_id = crate::auth::generate_token()[..12].to_owned();
                tracing::error!(request_id, cause, "request failed");
                (
                    "something went wrong on the server".into(),
                    Some(request_id),
                )
            }
        }
    }
}

impl From<mailscribe_store::StoreError> for ErrorKind {
    fn from(err: mailscribe_store::StoreError) -> ErrorKind {
        match err {
            // The state refuses the change (a privacy-blocked contact, a
            // name in use): the reason is written for people, and it is
            // the client's to act on, not a server fault.
            mailscribe_store::StoreError::Conflict(why) => ErrorKind::Conflict(why),
            err => ErrorKind::Internal(format!("{err:#}")),
        }
    }
}

impl From<askama::Error> for ErrorKind {
    fn from(err: askama::Error) -> ErrorKind {
        ErrorKind::Internal(format!("template: {err}"))
    }
}

/// An error of an HTML page.
#[derive(Debug)]
pub(crate) struct PageError(pub(crate) ErrorKind);

impl<E: Into<ErrorKind>> From<E> for PageError {
    fn from(err: E) -> PageError {
        PageError(err.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    message: String,
    request_id: Option<String>,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if matches!(self.0, ErrorKind::Unauthenticated) {
            return Redirect::to("/login").into_response();
        }
        let status = self.0.status();
        let (message, request_id) = self.0.message();
        let page = ErrorPage {
            status: status.as_u16(),
            message,
            request_id,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => status.into_response(),
        }
    }
}

/// An error of the JSON API: `{"error": {"code", "message", "request_id"}}`.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) ErrorKind);

impl<E: Into<ErrorKind>> From<E> for ApiError {
    fn from(err: E) -> ApiError {
        ApiError(err.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let code = self.0.code();
        let (message, request_id) = self.0.message();
        let mut response = error_json(status, code, &message, request_id);
        // RFC 6750 §3: a 401 names the scheme that would be accepted.
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn error_json(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: Option<String>,
) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message, "request_id": request_id } });
    (status, axum::Json(body)).into_response()
}

/// What axum answers by itself under `/api/v1` (a path, query, body or
/// method it cannot take: extractor rejections, 405, 413) is text; this
/// layer gives it the API's JSON error shape, keeping status and headers
/// (`Allow`, `WWW-Authenticate`). The handlers' own errors are JSON already.
pub(crate) async fn json_rejections(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    if !is_api {
        return response;
    }
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // axum's rejection texts are short and say what could not be parsed.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (code, message) = match status {
        StatusCode::BAD_REQUEST
        | StatusCode::UNPROCESSABLE_ENTITY
        | StatusCode::UNSUPPORTED_MEDIA_TYPE => ("bad_request", text),
        StatusCode::NOT_FOUND => ("not_found", "there is nothing here".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this method is not allowed here; see the Allow header".to_owned(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the body is too large".to_owned()),
        _ if status.is_server_error() => {
            return ApiError(ErrorKind::Internal(text)).into_response();
        }
        _ => ("bad_request", text),
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_owned()
    } else {
        message
    };
    let fresh = error_json(status, code, &message, None);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, fresh.into_body())
}
