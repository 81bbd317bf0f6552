//! Errors at the edge: a safe message for 4xx, an opaque one with a request
//! id for 5xx (the cause goes to the log, never to the client).

use askama::Template;
use axum::http::StatusCode;
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
            ErrorKind::BadRequest(why) => (why.clone(), None),
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
        ErrorKind::Internal(format!("{err:#}"))
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
        let body = serde_json::json!({ "error": { "code": code, "message": message, "request_id": request_id } });
        (status, axum::Json(body)).into_response()
    }
}
