//! The HTTP edge on a real socket with a real client: webhooks (forged, replayed, repeated,
//! oversized, concurrent, rotated secret), signed downloads, the dispatch API, readiness and
//! metrics.

use std::path::PathBuf;

use chrono::TimeDelta;
use conecta::config::HttpConfig;
use conecta::http::{AppState, webhooks};
use conecta::signed_url::Signer;
use conecta::stop::{StopHandle, StopReason};
use conecta::store::payments;
use serde_json::{Value, json};

use crate::support::Harness;

const SECRET: &str = "whsec_test";
const TOKEN: &str = "api-token-123";
const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn config() -> HttpConfig {
    HttpConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        app_key: Some(KEY.to_vec()),
        webhook_secret: Some(SECRET.into()),
        webhook_tolerance: 300,
        api_token: Some(TOKEN.into()),
        ui_password: None,
        app_url: "http://localhost".into(),
    }
}

/// A server for `h` on a port of its own; its base URL and the handle that stops it.
async fn serve(h: &Harness, http: HttpConfig, exports: Option<PathBuf>) -> (String, StopHandle) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut state = AppState::new(h.rt.clone(), http, None);
    if let Some(dir) = exports {
        state.exports = dir;
    }
    crate::support::serve(listener, state).await
}

fn event(id: &str, kind: &str, order: i64, amount: i64) -> String {
    json!({"id": id, "type": kind, "data": {"order_id": order, "amount_cents": amount}}).to_string()
}

async fn post_webhook(
    client: &reqwest::Client,
    base: &str,
    header: Option<String>,
    body: String,
) -> (u16, Value) {
    let mut req = client.post(format!("{base}/webhooks/payments")).body(body);
    if let Some(h) = header {
        req = req.header("Conecta-Signature", h);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn pending_order(h: &Harness, id: i64, total: i64) {
    let t = h.now().timestamp() - 600;
    h.db.query("INSERT INTO orders (id, tenant_id, status, customer_email, total_cents, created_at, updated_at) VALUES (?, 1, 'pending', 'ana@example.test', ?, ?, ?)")
        .bind(id)
        .bind(total)
        .bind(t)
        .bind(t)
        .execute(&h.db)
        .await
        .unwrap();
}

async fn order_status(h: &Harness, id: i64) -> String {
    conecta::store::orders::status(&h.db, id)
        .await
        .unwrap()
        .unwrap()
}

/// The samples of a Prometheus text exposition: `name{labels}` → value. Panics on a line
/// that is neither a comment nor a sample.
fn parse_metrics(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name_ok = series.split('{').next().is_some_and(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        });
        assert!(name_ok, "bad metric name in {line:?}");
        if series.contains('{') {
            assert!(series.ends_with('}'), "unclosed labels in {line:?}");
        }
        samples.push((series.to_string(), value));
    }
    assert!(text.trim_end().ends_with("# EOF"), "no # EOF terminator");
    samples
}

fn sample(samples: &[(String, f64)], series: &str) -> f64 {
    samples
        .iter()
        .find(|(s, _)| s == series)
        .map_or(0.0, |(_, v)| *v)
}

async fn metrics(client: &reqwest::Client, base: &str) -> Vec<(String, f64)> {
    parse_metrics(&crate::support::get_text(client, base, "/metrics").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_webhooks_store_and_enqueue_nothing() {
    let h = crate::support::harness("sqlite").await.unwrap();
    let (base, stop) = serve(&h, config(), None).await;
    let client = reqwest::Client::new();
    let now = h.now().timestamp();
    let body = event("evt_1", "payment.succeeded", 1, 100);
    let cases: Vec<(Option<String>, String, u16, &str)> = vec![
        (None, body.clone(), 401, "unsigned"),
        (Some("t=1,v1".into()), body.clone(), 401, "malformed"),
        (
            Some(webhooks::sign("forged", now, body.as_bytes())),
            body.clone(),
            401,
            "forged",
        ),
        (
            Some(webhooks::sign(SECRET, now, body.as_bytes())),
            event("evt_1", "payment.succeeded", 1, 999),
            401,
            "body changed after signing",
        ),
        (
            Some(webhooks::sign(SECRET, now - 301, body.as_bytes())),
            body.clone(),
            401,
            "replayed",
        ),
        (
            Some(webhooks::sign(SECRET, now + 301, body.as_bytes())),
            body.clone(),
            401,
            "future",
        ),
        (
            Some(webhooks::sign(SECRET, now, b"not json")),
            "not json".into(),
            400,
            "not json",
        ),
        (
            Some(webhooks::sign(
                SECRET,
                now,
                br#"{"type":"payment.succeeded"}"#,
            )),
            r#"{"type":"payment.succeeded"}"#.into(),
            400,
            "no id",
        ),
    ];
    for (header, body, want, what) in cases {
        let (status, answer) = post_webhook(&client, &base, header, body).await;
        assert_eq!(status, want, "{what}: {answer}");
        assert!(answer["error"].is_string(), "{what}: {answer}");
    }
    let big = format!(
        r#"{{"id":"evt_big","type":"x","pad":"{}"}}"#,
        "a".repeat(70_000)
    );
    let header = webhooks::sign(SECRET, now, big.as_bytes());
    let (status, _) = post_webhook(&client, &base, Some(header), big).await;
    assert_eq!(status, 413);
    assert_eq!(payments::count_events(&h.db, "evt_1").await.unwrap(), 0);
    assert_eq!(payments::count_events(&h.db, "evt_big").await.unwrap(), 0);
    assert_eq!(h.rt.jobs_in("high").await.unwrap(), 0);
    let m = metrics(&client, &base).await;
    assert_eq!(
        sample(
            &m,
            "conecta_webhooks_rejected_total{reason=\"bad_signature\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &m,
            "conecta_webhooks_rejected_total{reason=\"timestamp_out_of_tolerance\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(&m, "conecta_webhooks_rejected_total{reason=\"too_large\"}"),
        1.0
    );
    // The clock is the injected one: travel an hour and the old signature is a replay.
    let signed_now = webhooks::sign(SECRET, now, body.as_bytes());
    h.clock.advance(TimeDelta::hours(1));
    let (status, _) = post_webhook(&client, &base, Some(signed_now), body).await;
    assert_eq!(status, 401);
    stop.stop(StopReason::Signal);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_accepts_either_signature() {
    let h = crate::support::harness("sqlite").await.unwrap();
    let mut http = config();
    http.webhook_secret = Some("whsec_new".into());
    let (base, stop) = serve(&h, http, None).await;
    let client = reqwest::Client::new();
    let now = h.now().timestamp();
    pending_order(&h, 5, 100).await;
    let body = event("evt_rot", "payment.succeeded", 5, 100);
    // The gateway signs with both secrets while it rotates: one v1 per secret.
    let old = webhooks::sign("whsec_old", now, body.as_bytes());
    let new = webhooks::sign("whsec_new", now, body.as_bytes());
    let both = format!("{old},v1={}", new.rsplit("v1=").next().unwrap());
    let (status, answer) = post_webhook(&client, &base, Some(both), body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    // Only the old one: refused by a server that has moved on.
    let (status, _) = post_webhook(&client, &base, Some(old), body.clone()).await;
    assert_eq!(status, 401);
    // A server that keeps both secrets while the gateway moves accepts the old one alone.
    stop.stop(StopReason::Signal);
    let mut http = config();
    http.webhook_secret = Some("whsec_new, whsec_old".into());
    let (base, stop) = serve(&h, http, None).await;
    let body = event("evt_rot2", "payment.succeeded", 5, 100);
    let header = webhooks::sign("whsec_old", now, body.as_bytes());
    let (status, answer) = post_webhook(&client, &base, Some(header), body).await;
    assert_eq!(status, 200, "{answer}");
    stop.stop(StopReason::Signal);
    h.finish().await;
}

/// Twenty deliveries of one event at once: one row, one job, the order paid once.
async fn twenty_concurrent_deliveries_pay_the_order_once(h: Harness) {
    let (base, stop) = serve(&h, config(), None).await;
    let client = reqwest::Client::new();
    pending_order(&h, 41, 950).await;
    let body = event("evt_twenty", "payment.succeeded", 41, 950);
    let header = webhooks::sign(SECRET, h.now().timestamp(), body.as_bytes());
    let sends = (0..20).map(|_| post_webhook(&client, &base, Some(header.clone()), body.clone()));
    for (status, answer) in futures::future::join_all(sends).await {
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!(
        payments::count_events(&h.db, "evt_twenty").await.unwrap(),
        1
    );
    assert_eq!(h.rt.jobs_in("high").await.unwrap(), 1);
    crate::support::drain(&h).await;
    assert_eq!(order_status(&h, 41).await, "paid");
    let paid_at: Option<i64> =
        h.db.query("SELECT paid_at FROM orders WHERE id = 41")
            .scalar(&h.db)
            .await
            .unwrap();
    assert_eq!(paid_at, Some(h.now().timestamp()));
    // Delivered again after it was applied: 200, nothing enqueued.
    let (status, answer) = post_webhook(&client, &base, Some(header), body).await;
    assert_eq!(
        (status, &answer["duplicate"]),
        (200, &json!(true)),
        "{answer}"
    );
    assert_eq!(h.rt.jobs_in("high").await.unwrap(), 0);
    stop.stop(StopReason::Signal);
}

/// A payment for an order release-stale already cancelled is reviewed, not applied.
async fn a_payment_for_a_cancelled_order_goes_to_review(h: Harness) {
    let (base, stop) = serve(&h, config(), None).await;
    let client = reqwest::Client::new();
    pending_order(&h, 42, 500).await;
    h.db.query("UPDATE orders SET status = 'cancelled' WHERE id = 42")
        .execute(&h.db)
        .await
        .unwrap();
    let body = event("evt_late", "payment.succeeded", 42, 500);
    let header = webhooks::sign(SECRET, h.now().timestamp(), body.as_bytes());
    let (status, _) = post_webhook(&client, &base, Some(header), body).await;
    assert_eq!(status, 200);
    crate::support::drain(&h).await;
    assert_eq!(order_status(&h, 42).await, "cancelled");
    let reviews = payments::reviews(&h.db).await.unwrap();
    assert_eq!(reviews.len(), 1);
    assert_eq!((reviews[0].order_id, reviews[0].amount_cents), (42, 500));
    assert!(reviews[0].reason.contains("cancelled"), "{:?}", reviews[0]);
    let outbox = conecta::store::outbox::range(&h.db, 0, i64::MAX)
        .await
        .unwrap();
    assert!(
        outbox
            .iter()
            .any(|m| m.event_type == "PaymentNeedsReview" && m.aggregate_id == "42"),
        "{outbox:?}"
    );
    // Unknown order and wrong amount fail the job, saying which.
    for (id, order, amount, says) in [
        ("evt_unknown", 999, 100, "order 999 does not exist"),
        (
            "evt_amount",
            43,
            1,
            "amount 1 does not match order 43's total 700",
        ),
    ] {
        pending_order(&h, 43, 700).await;
        let body = event(id, "payment.succeeded", order, amount);
        let header = webhooks::sign(SECRET, h.now().timestamp(), body.as_bytes());
        post_webhook(&client, &base, Some(header), body).await;
        let ctx = h.rt.context("t".into(), 1, "high");
        let err = conecta::tasks::payments::apply(&ctx, id).await.unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
        h.db.query("DELETE FROM orders WHERE id = 43")
            .execute(&h.db)
            .await
            .unwrap();
    }
    stop.stop(StopReason::Signal);
}

on_databases!(twenty_concurrent_deliveries_pay_the_order_once);
on_databases!(a_payment_for_a_cancelled_order_goes_to_review);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_need_a_good_signature_and_stay_in_their_folder() {
    let h = crate::support::harness("sqlite").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    std::fs::create_dir_all(exports.join("7")).unwrap();
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(exports.join("7/sales.csv"), &bytes).unwrap();
    std::fs::write(dir.path().join("secret.txt"), b"outside").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), exports.join("7/link.csv")).unwrap();
    let (base, stop) = serve(&h, config(), Some(exports)).await;
    let client = reqwest::Client::new();
    let signer = Signer::new(KEY);
    let expires = h.now() + TimeDelta::hours(24);
    let good = signer.url(&base, "7/sales.csv", expires);
    let resp = client.get(&good).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(resp.headers()["content-length"], bytes.len().to_string());
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("filename=\"sales.csv\"")
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let t = expires.timestamp();
    let sig = signer.signature("7/sales.csv", t);
    let status = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        status(format!(
            "{base}/downloads/7/sales.csv?expires={}&signature={sig}",
            t + 1
        ))
        .await,
        403
    );
    assert_eq!(
        status(format!(
            "{base}/downloads/7/other.csv?expires={t}&signature={sig}"
        ))
        .await,
        403
    );
    assert_eq!(status(format!("{base}/downloads/7/sales.csv")).await, 403);
    h.clock.advance(TimeDelta::hours(25));
    assert_eq!(status(good).await, 403, "expired");
    let fresh = h.now() + TimeDelta::hours(1);
    for path in [
        "7/../../secret.txt",
        "7/%2e%2e/%2e%2e/secret.txt",
        "%2Fetc%2Fpasswd",
        "7/..%2F..%2Fsecret.txt",
    ] {
        let url = format!(
            "{base}/downloads/{path}?expires={}&signature={}",
            fresh.timestamp(),
            signer.signature(
                &path.replace("%2e", ".").replace("%2F", "/"),
                fresh.timestamp()
            )
        );
        assert_eq!(status(url).await, 404, "{path}");
    }
    // A link inside the folder that points out of it.
    assert_eq!(status(signer.url(&base, "7/link.csv", fresh)).await, 404);
    stop.stop(StopReason::Signal);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatch_api_checks_its_token_and_request_like_the_cli() {
    let h = crate::support::harness("sqlite").await.unwrap();
    let (base, stop) = serve(&h, config(), None).await;
    let client = reqwest::Client::new();
    let post = |token: Option<&str>, body: Value| {
        let mut req = client.post(format!("{base}/api/dispatch")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let job = json!({"job": "diagnostics:noop", "unique_key": "k1", "unique_for": "1h"});
    assert_eq!(post(None, job.clone()).await.0, 401);
    assert_eq!(post(Some("wrong"), job.clone()).await.0, 401);
    let (status, answer) = post(Some(TOKEN), job.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["id"].is_string(), "{answer}");
    let (status, answer) = post(Some(TOKEN), job).await;
    assert_eq!((status, answer), (200, json!({"duplicate": true})));
    let (status, answer) = post(
        Some(TOKEN),
        json!({"job": "AuditTenantLimits", "payload": {"tenent": 3}}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"],
        "payload: unknown argument \"tenent\" for \"AuditTenantLimits\""
    );
    assert_eq!(answer["hint"], "did you mean \"tenant\"?");
    let (status, answer) = post(Some(TOKEN), json!({"job": "diagnostics:nop"})).await;
    assert_eq!(status, 400);
    assert!(
        answer["hint"]
            .as_str()
            .unwrap()
            .contains("diagnostics:noop"),
        "{answer}"
    );
    stop.stop(StopReason::Signal);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_when_a_job_runs_and_routes_without_secrets_answer_503() {
    let h = crate::support::harness("sqlite").await.unwrap();
    let mut http = config();
    http.api_token = None;
    let (base, stop) = serve(&h, http, None).await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["database"], "ok");
    let off = client
        .post(format!("{base}/api/dispatch"))
        .json(&json!({"job": "diagnostics:noop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 503);
    assert!(off.text().await.unwrap().contains("CONECTA_API_TOKEN"));
    let series =
        "conecta_jobs_total{queue=\"default\",job=\"diagnostics:noop\",outcome=\"succeeded\"}";
    let before = sample(&metrics(&client, &base).await, series);
    h.rt.dispatch(conecta::queue::NewJob::new("diagnostics:noop", json!({})))
        .await
        .unwrap();
    crate::support::drain(&h).await;
    let after = metrics(&client, &base).await;
    assert_eq!(sample(&after, series) - before, 1.0);
    assert!(
        after.iter().any(|(s, _)| s
            .starts_with("conecta_http_requests_total{route=\"/healthz\",status=\"200\"}")),
        "{after:?}"
    );
    assert!(
        after
            .iter()
            .any(|(s, _)| s.starts_with("conecta_outbox_backlog"))
    );
    stop.stop(StopReason::Signal);
    h.finish().await;
}
