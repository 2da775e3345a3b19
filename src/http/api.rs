//! `POST /api/dispatch`: how the PHP application enqueues work. The body is the options of
//! `conecta dispatch` as JSON (`{"job": "…", "payload": {…}, "queue": "high", …}`), checked by
//! the same code; the answer is `{"id": …}` or `{"duplicate": true}`. The bearer token is
//! `CONECTA_API_TOKEN`, compared in constant time.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AppState, error, not_configured, same_secret};
use crate::queue::Enqueued;
use crate::tasks::dispatch::{Request, Spelling};

pub(super) async fn dispatch(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(token) = &state.http.api_token else {
        return not_configured("POST /api/dispatch", "CONECTA_API_TOKEN");
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|g| same_secret(g.trim(), token)) {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer …)",
        );
    }
    let request: Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    let job = match request.build(&state.rt.registry, Spelling::Fields) {
        Ok(job) => job,
        Err(refused) => {
            let mut body = json!({ "error": refused.message });
            if let Some(hint) = refused.hint {
                body["hint"] = json!(hint);
            }
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
    };
    match state.rt.dispatch(job).await {
        Ok(Enqueued::Job(id)) => (StatusCode::OK, axum::Json(json!({ "id": id }))).into_response(),
        Ok(Enqueued::Duplicate) => {
            (StatusCode::OK, axum::Json(json!({ "duplicate": true }))).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "POST /api/dispatch: cannot enqueue");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the job could not be queued: {e}"),
            )
        }
    }
}
