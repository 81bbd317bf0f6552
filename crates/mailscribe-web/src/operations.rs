//! What operators and monitoring read: `/healthz` (the process is up),
//! `/readyz` (it can do its work), `/metrics` (Prometheus), and the HTTP
//! request metrics every route records.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

pub const HTTP_REQUESTS: &str = "mailscribe_http_requests_total";
pub const HTTP_DURATION: &str = "mailscribe_http_request_duration_seconds";

/// Renders the process's metrics in the Prometheus text format.
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// The scheduler's pulse: it stores the time of its latest tick (Unix
/// milliseconds); `/readyz` fails when the pulse stops.
#[derive(Clone)]
pub struct SchedulerPulse {
    pub last_tick_ms: Arc<AtomicI64>,
    /// Silence longer than this means the scheduler is stuck or gone.
    pub max_silence: Duration,
}

pub fn describe_metrics() {
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by route template and status code"
    );
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request duration by route template"
    );
}

/// Records every request under its route template (never the raw path,
/// which would hold entry numbers and names).
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "status" => response.status().as_u16().to_string()).increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    response
}

/// `/readyz`: the database answers, its migrations are applied, and the
/// scheduler ticks. Logging being disabled is not a reason to be unready.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let mut reasons: Vec<String> = Vec::new();
    match state.store.migrations_current().await {
        Ok(true) => {}
        Ok(false) => reasons.push(
            "the database has migrations this version does not know, or lacks some it needs".into(),
        ),
        Err(err) => reasons.push(format!("the database does not answer: {err}")),
    }
    if let Some(pulse) = &state.scheduler_pulse {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let silent_ms = now_ms - pulse.last_tick_ms.load(Ordering::Relaxed);
        if silent_ms > i64::try_from(pulse.max_silence.as_millis()).unwrap_or(i64::MAX) {
            reasons.push(format!(
                "the scheduler has not ticked for {} s",
                silent_ms / 1000
            ));
        }
    }
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({ "ready": reasons.is_empty(), "reasons": reasons })),
    )
        .into_response()
}

/// `/metrics` on the main listener: only to a client on this machine that
/// did not come through a proxy (a reverse proxy on the same host would
/// otherwise expose it to everyone). `serve --metrics-listen` serves it
/// without this rule on an address of the operator's choosing.
pub(crate) async fn metrics_on_main_listener(
    State(state): State<AppState>,
    request: Request,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let forwarded = forwarded(request.headers());
    if !peer.is_some_and(|p| p.ip().is_loopback()) || forwarded {
        return (
            StatusCode::FORBIDDEN,
            "metrics are served to loopback clients only; use serve --metrics-listen\n",
        )
            .into_response();
    }
    render(&state)
}

pub(crate) async fn metrics_open(State(state): State<AppState>) -> Response {
    render(&state)
}

fn forwarded(headers: &HeaderMap) -> bool {
    ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|name| headers.contains_key(*name))
}

fn render(state: &AppState) -> Response {
    match &state.metrics {
        Some(renderer) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            renderer(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics are not recorded by this process\n",
        )
            .into_response(),
    }
}
