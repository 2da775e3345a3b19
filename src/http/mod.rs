//! The HTTP edge (`conecta serve`, and inside `conecta start`): payment webhooks, signed
//! downloads, health and readiness, Prometheus metrics, the dispatch API and the dashboard
//! (`/ui`), with axum.
//!
//! A route whose secret is not configured answers 503 and says which key to set; `serve`
//! warns about each such route when it starts. Every request is counted by route and status
//! in `/metrics`. A stop (SIGTERM) stops accepting, lets requests in flight finish, and then
//! the server returns.

mod api;
mod downloads;
mod scrape;
mod ui;
mod unsubscribe;
pub mod webhooks;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::config::HttpConfig;
use crate::queue::Runtime;
use crate::schedule::Schedule;
use crate::signed_url::Signer;
use crate::stop::StopHandle;

/// What every handler shares.
pub struct AppState {
    /// The runtime: database, queue, clock, metrics.
    pub rt: Runtime,
    /// The HTTP settings and secrets.
    pub http: HttpConfig,
    /// The download signer, when `APP_KEY` is set.
    pub signer: Option<Signer>,
    /// The folder downloads come from.
    pub exports: PathBuf,
    /// The schedule (for the overdue-entries metric and the dashboard), when one was loaded;
    /// it follows SIGHUP reloads where the process has them (`start` and `serve`).
    schedules: Option<tokio::sync::watch::Receiver<Arc<Schedule>>>,
    scrape: scrape::Cache,
}

impl AppState {
    /// The state for `rt` with `http`'s settings.
    pub fn new(rt: Runtime, http: HttpConfig, schedule: Option<Arc<Schedule>>) -> Self {
        let signer = http.app_key.as_deref().map(Signer::new);
        Self {
            exports: rt.settings.exports_dir(),
            rt,
            http,
            signer,
            // A receiver keeps the last value after its sender is gone: a fixed schedule.
            schedules: schedule.map(|s| tokio::sync::watch::channel(s).1),
            scrape: scrape::Cache::default(),
        }
    }

    /// This state, showing whatever schedule `schedules` holds as it is reloaded.
    pub fn following(mut self, schedules: tokio::sync::watch::Receiver<Arc<Schedule>>) -> Self {
        self.schedules = Some(schedules);
        self
    }

    /// The schedule as it stands now, when one was loaded.
    pub fn schedule(&self) -> Option<Arc<Schedule>> {
        self.schedules.as_ref().map(|rx| rx.borrow().clone())
    }
}

/// The routes whose secret is missing, each with the key that enables it.
pub fn disabled_routes(http: &HttpConfig) -> Vec<(&'static str, &'static str)> {
    let mut off = Vec::new();
    if http.webhook_secret.is_none() {
        off.push(("POST /webhooks/payments", "PAYMENT_WEBHOOK_SECRET"));
    }
    if http.app_key.is_none() {
        off.push(("GET /downloads/{path}", "APP_KEY"));
        off.push(("GET /unsubscribe/{campaign}/{customer}", "APP_KEY"));
    }
    if http.api_token.is_none() {
        off.push(("POST /api/dispatch", "CONECTA_API_TOKEN"));
    }
    if http.api_token.is_none() && http.ui_password.is_none() {
        off.push(("GET /ui", "CONECTA_UI_PASSWORD"));
    }
    off
}

/// Every route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(scrape::metrics))
        .route("/webhooks/payments", post(webhooks::receive))
        .route("/downloads/{*path}", get(downloads::download))
        .route("/api/dispatch", post(api::dispatch))
        .route(
            "/unsubscribe/{campaign}/{customer}",
            get(unsubscribe::unsubscribe).post(unsubscribe::unsubscribe),
        )
        .merge(ui::routes())
        .layer(axum::middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

/// Serves `router` on `listener` until `stop`, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    stop: StopHandle,
) -> std::io::Result<()> {
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.stopped().await })
        .await
}

/// Logs what `serve` does without a secret, one line per disabled route.
pub fn warn_disabled(http: &HttpConfig) {
    for (route, key) in disabled_routes(http) {
        tracing::warn!(
            route,
            "{route} is disabled: set {key} to enable it (it answers 503 until then)"
        );
    }
}

/// Counts every request by route and status.
async fn count(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    state
        .rt
        .metrics
        .http_requests
        .get_or_create(&vec![
            ("route", route),
            ("status", response.status().as_u16().to_string()),
        ])
        .inc();
    response
}

/// A JSON error body: `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// Whether `given` equals `expected`, in time that does not depend on where they differ:
/// both are run through HMAC first and the digests compared with the `hmac` crate's check.
pub(crate) fn same_secret(given: &str, expected: &str) -> bool {
    use hmac::Mac as _;
    let digest = |text: &str| {
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(b"conecta api token").expect("any key");
        mac.update(text.as_bytes());
        mac
    };
    let expected = digest(expected).finalize().into_bytes();
    digest(given).verify_slice(&expected).is_ok()
}

/// 503 for a route whose `key` is not set, with a log line.
pub(crate) fn not_configured(route: &str, key: &str) -> Response {
    tracing::warn!(
        route,
        "{route} was called but {key} is not set: answering 503"
    );
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{route} is not configured: set {key} on the conecta server"),
    )
}

async fn healthz() -> &'static str {
    "ok"
}

/// How long `/readyz` waits for each dependency.
const READY_WITHIN: Duration = Duration::from_secs(1);

/// Whether `probe` succeeds within [`READY_WITHIN`]; why not, otherwise.
async fn answers<E: std::fmt::Display>(
    probe: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(READY_WITHIN, probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", READY_WITHIN.as_secs())),
    }
}

/// 200 when the database (and Redis, when it is the queue) answer within a second; 503 with
/// what failed otherwise.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let db = answers(state.rt.db.ping()).await;
    let mut body = serde_json::Map::new();
    let mut ready = true;
    let mut report = |name: &str, r: Result<(), String>| {
        match r {
            Ok(()) => body.insert(name.into(), json!("ok")),
            Err(e) => {
                ready = false;
                body.insert(name.into(), json!(e))
            }
        };
    };
    report("database", db);
    if state.rt.queue.connection() == "redis" {
        report("redis", answers(state.rt.queue.ping()).await);
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(serde_json::Value::Object(body))).into_response()
}
