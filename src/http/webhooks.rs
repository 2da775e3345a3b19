//! `POST /webhooks/payments`: the payment gateway's events, verified, stored once and handed
//! to `ProcessPaymentWebhook`.
//!
//! The gateway signs each delivery with a header
//! `Conecta-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, where each `v1` is
//! HMAC-SHA256 keyed with the shared secret over `"<t>.<raw body>"`. Several `v1` values (and
//! several comma-separated secrets in `PAYMENT_WEBHOOK_SECRET`) let a secret be rotated
//! without a gap. A delivery is accepted when any signature matches any secret (compared in
//! constant time) and `t` is within `PAYMENT_WEBHOOK_TOLERANCE` seconds of now.
//!
//! Rejected deliveries store and enqueue nothing: missing, malformed or wrong signature and a
//! stale or future timestamp answer 401, a body over 64 KiB 413, a body that is not a JSON
//! object with string `id` and `type` 400. An accepted event is stored in `payment_events`
//! (unique by id, raw body kept) and `ProcessPaymentWebhook` is enqueued, unique by event id;
//! a repeated delivery answers 200 and enqueues nothing new.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{AppState, error, not_configured};
use crate::queue::{Enqueued, NewJob, UniqueUntil};
use crate::store::payments;

/// The largest body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// The signature header.
pub const HEADER: &str = "conecta-signature";

/// How long the job's unique lock lives at most (it is released when the job is done).
const UNIQUE_FOR: u64 = 7 * 86_400;

/// Why a delivery was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejection {
    Unsigned,
    Malformed,
    BadSignature,
    Stale,
    TooLarge,
    NotJson,
    NoIdOrType,
}

impl Rejection {
    fn label(self) -> &'static str {
        match self {
            Rejection::Unsigned => "unsigned",
            Rejection::Malformed => "malformed_signature",
            Rejection::BadSignature => "bad_signature",
            Rejection::Stale => "timestamp_out_of_tolerance",
            Rejection::TooLarge => "too_large",
            Rejection::NotJson => "not_json",
            Rejection::NoIdOrType => "no_id_or_type",
        }
    }

    fn answer(self) -> (StatusCode, &'static str) {
        match self {
            Rejection::Unsigned => (StatusCode::UNAUTHORIZED, "missing Conecta-Signature header"),
            Rejection::Malformed => (
                StatusCode::UNAUTHORIZED,
                "malformed Conecta-Signature header: expected t=<unix seconds>,v1=<hex>",
            ),
            Rejection::BadSignature => (StatusCode::UNAUTHORIZED, "signature does not match"),
            Rejection::Stale => (
                StatusCode::UNAUTHORIZED,
                "timestamp outside the tolerance (a replay, or a clock far off)",
            ),
            Rejection::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body over 64 KiB"),
            Rejection::NotJson => (StatusCode::BAD_REQUEST, "body is not a JSON object"),
            Rejection::NoIdOrType => (
                StatusCode::BAD_REQUEST,
                "event has no string \"id\" and \"type\"",
            ),
        }
    }
}

/// `t` and the `v1` signatures of a header.
fn parse_header(header: &str) -> Option<(i64, Vec<Vec<u8>>)> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        match key {
            "t" if t.is_none() => t = Some(value.parse::<i64>().ok()?),
            "v1" => v1.push(hex::decode(value).ok()?),
            // Other schemes (v0, …) are ignored, as gateways add them.
            _ if key != "t" => {}
            _ => return None,
        }
    }
    Some((t?, v1)).filter(|(_, v1)| !v1.is_empty())
}

/// Whether any of `signatures` is `HMAC(secret, "<t>.<body>")` for any of `secrets`.
fn verified(secrets: &str, t: i64, body: &[u8], signatures: &[Vec<u8>]) -> bool {
    secrets
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .any(|secret| {
            let mac = signed_payload(secret, t, body);
            signatures
                .iter()
                .any(|sig| mac.clone().verify_slice(sig).is_ok())
        })
}

/// HMAC-SHA256 keyed with `secret` over `"<t>.<body>"`, ready to finalize or verify.
fn signed_payload(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header value for `body` at `t` with `secret` (for tests and adapters).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mac = signed_payload(secret, t, body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a delivery; its event's id, type and the raw body when it is good.
fn check(
    state: &AppState,
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, String), Rejection> {
    let header = headers
        .get(HEADER)
        .ok_or(Rejection::Unsigned)?
        .to_str()
        .map_err(|_| Rejection::Malformed)?;
    let (t, signatures) = parse_header(header).ok_or(Rejection::Malformed)?;
    if !verified(secret, t, body, &signatures) {
        return Err(Rejection::BadSignature);
    }
    let now = state.rt.clock.now().timestamp();
    if now.abs_diff(t) > state.http.webhook_tolerance {
        return Err(Rejection::Stale);
    }
    let event: Value = serde_json::from_slice(body).map_err(|_| Rejection::NotJson)?;
    if !event.is_object() {
        return Err(Rejection::NotJson);
    }
    match (event["id"].as_str(), event["type"].as_str()) {
        (Some(id), Some(kind)) if !id.is_empty() && !kind.is_empty() => {
            Ok((id.to_string(), kind.to_string()))
        }
        _ => Err(Rejection::NoIdOrType),
    }
}

/// The job that applies event `id`.
pub fn job(id: &str) -> NewJob {
    crate::tasks::new_job("ProcessPaymentWebhook", json!({ "event_id": id })).unique(
        format!("payment:{id}"),
        UNIQUE_FOR,
        UniqueUntil::Processed,
    )
}

pub(super) async fn receive(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(secret) = state.http.webhook_secret.clone() else {
        return not_configured("POST /webhooks/payments", "PAYMENT_WEBHOOK_SECRET");
    };
    let checked = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => check(&state, &secret, &headers, &bytes).map(|ok| (ok, bytes)),
        Err(_) => Err(Rejection::TooLarge),
    };
    let ((id, kind), bytes) = match checked {
        Ok(ok) => ok,
        Err(rejection) => {
            state
                .rt
                .metrics
                .webhooks_rejected
                .get_or_create(&vec![("reason", rejection.label().to_string())])
                .inc();
            let (status, message) = rejection.answer();
            tracing::warn!(
                reason = rejection.label(),
                "payment webhook rejected: {message}"
            );
            return error(status, message);
        }
    };
    let now = state.rt.clock.now();
    // The body was checked to be JSON, so it is UTF-8.
    let raw = String::from_utf8_lossy(&bytes);
    let stored = match payments::store_event(&state.rt.db, &id, &kind, &raw, now).await {
        Ok(stored) => stored,
        Err(e) => {
            tracing::error!(event = %id, error = %e, "cannot store a payment webhook");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the event could not be stored; deliver it again",
            );
        }
    };
    if !stored {
        // A re-delivery. Enqueue again only if it was never applied; the unique lock keeps a
        // job still waiting from being doubled.
        let applied = match payments::event(&state.rt.db, &id).await {
            Ok(stored) => stored.is_some_and(|e| e.processed_at.is_some()),
            Err(e) => {
                // Enqueueing again is safe (the unique lock and the guarded updates make a
                // second job harmless), so a failed read falls through to it.
                tracing::warn!(event = %id, error = %e, "cannot read a stored payment event; enqueueing it again");
                false
            }
        };
        if applied {
            return (StatusCode::OK, axum::Json(json!({ "duplicate": true }))).into_response();
        }
    }
    match state.rt.dispatch(job(&id)).await {
        Ok(Enqueued::Job(job)) => (
            StatusCode::OK,
            axum::Json(json!({ "stored": stored, "job": job })),
        )
            .into_response(),
        Ok(Enqueued::Duplicate) => {
            (StatusCode::OK, axum::Json(json!({ "duplicate": true }))).into_response()
        }
        Err(e) => {
            // Stored but not enqueued: the gateway's retry of this delivery enqueues it.
            tracing::error!(event = %id, error = %e, "cannot enqueue a stored payment webhook");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the event is stored but could not be queued; deliver it again",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_with_several_signatures_and_unknown_schemes() {
        let (t, sigs) = parse_header("t=1700000000,v1=00ff,v0=zz,v1=0a").unwrap();
        assert_eq!(t, 1_700_000_000);
        assert_eq!(sigs, vec![vec![0, 255], vec![10]]);
        for bad in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=zz",
            "t=1,t=2,v1=00",
            "garbage",
        ] {
            assert!(parse_header(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_signature_verifies_with_its_secret_only() {
        let header = sign("whsec_new", 1_700_000_000, b"{}");
        let (t, sigs) = parse_header(&header).unwrap();
        assert!(verified("whsec_new", t, b"{}", &sigs));
        assert!(verified("whsec_old, whsec_new", t, b"{}", &sigs));
        assert!(!verified("whsec_old", t, b"{}", &sigs));
        assert!(!verified("whsec_new", t + 1, b"{}", &sigs));
        assert!(!verified("whsec_new", t, b"{ }", &sigs));
    }
}
