//! `deploy/grafana/conecta.json` and `deploy/prometheus/alerts.yml`: both parse, every alert
//! has what an on-call person needs (a severity, a summary, what to do, a runbook section that
//! exists), and every metric either names is one `/metrics` exports.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::TimeDelta;
use conecta::config::HttpConfig;
use conecta::http::AppState;
use conecta::queue::NewJob;
use conecta::queue::worker::{self, WorkerOptions};
use conecta::stop::StopHandle;
use serde_json::{Value, json};
use yaml_rust2::YamlLoader;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `conecta_…` name in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("conecta_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

fn grafana_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("deploy/grafana/conecta.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("conecta.json is JSON");
    assert_eq!(dashboard["uid"], "conecta");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8, "{} panels", panels.len());
    let mut exprs = Vec::new();
    for p in panels {
        let title = p["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "a panel without a title: {p}");
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            exprs.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    exprs
}

fn alert_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml")).unwrap();
    let docs = YamlLoader::load_from_str(&text).expect("alerts.yml is YAML");
    let runbook = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
                .collect::<String>()
                .replace(' ', "-")
        })
        .collect();
    let mut out = Vec::new();
    let groups = docs[0]["groups"].as_vec().expect("groups");
    for group in groups {
        for rule in group["rules"].as_vec().expect("rules") {
            let name = rule["alert"].as_str().expect("alert name").to_string();
            let expr = rule["expr"].as_str().expect("expr").to_string();
            assert!(
                rule["labels"]["severity"].as_str().is_some(),
                "{name}: labels.severity"
            );
            for key in ["summary", "description", "runbook"] {
                assert!(
                    rule["annotations"][key].as_str().is_some(),
                    "{name}: annotations.{key}"
                );
            }
            let link = rule["annotations"]["runbook"].as_str().unwrap();
            let anchor = link.split('#').nth(1).expect("runbook#section");
            assert!(
                anchors.contains(anchor),
                "{name}: docs/operations.md has no section #{anchor}"
            );
            out.push((name, expr));
        }
    }
    out
}

#[test]
fn the_alerts_cover_what_the_issue_asks() {
    let alerts = alert_exprs();
    let exprs: Vec<&str> = alerts.iter().map(|(_, e)| e.as_str()).collect();
    for needed in [
        "conecta_failed_jobs_last_hour > 0",
        "conecta_schedule_overdue_entries > 0",
        "conecta_outbox_oldest_age_seconds > 600",
        "conecta_live_workers == 0",
        "conecta_schedule_hashes > 1",
    ] {
        assert!(exprs.contains(&needed), "no alert on {needed}: {exprs:?}");
    }
}

/// The metric names `/metrics` declares (`# TYPE name kind`), with the sample names each
/// kind produces.
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        for s in suffixes {
            names.insert(format!("{name}{s}"));
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_alerts_name_is_exported() {
    let Some(h) = crate::support::harness("sqlite").await else {
        return;
    };
    // Work in one minute, scraped in the next: the per-minute gauge has figures.
    h.rt.dispatch(NewJob::new("test:record", json!({"n": 1})))
        .await
        .unwrap();
    let opts = WorkerOptions {
        queues: vec!["default".into()],
        stop_when_empty: true,
        ..WorkerOptions::default()
    };
    worker::run(h.rt.clone(), opts, StopHandle::default())
        .await
        .unwrap();
    h.clock.advance(TimeDelta::seconds(60));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = HttpConfig {
        webhook_secret: Some("whsec_test".into()),
        ..crate::support::http_config(listener.local_addr().unwrap())
    };
    let (base, stop) =
        crate::support::serve(listener, AppState::new(h.rt.clone(), http, None)).await;
    let client = reqwest::Client::new();
    // A forged webhook, so the rejection counter has a sample too.
    let forged = client
        .post(format!("{base}/webhooks/payments"))
        .header("Conecta-Signature", "t=1,v1=00")
        .body(r#"{"id":"evt_1","type":"payment.succeeded"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let text = crate::support::get_text(&client, &base, "/metrics").await;
    stop.stop(conecta::stop::StopReason::Signal);

    assert!(
        text.contains(r#"conecta_queue_jobs_per_minute{queue="default",outcome="processed"} 1"#),
        "{text}"
    );
    let exported = exported(&text);
    let mut named: BTreeSet<String> = BTreeSet::new();
    for expr in grafana_exprs() {
        named.extend(metric_names(&expr));
    }
    for (_, expr) in alert_exprs() {
        named.extend(metric_names(&expr));
    }
    assert!(named.len() >= 10, "{named:?}");
    let missing: Vec<&String> = named.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "named by the dashboard or alerts but not exported: {missing:?}\n{text}"
    );
    h.finish().await;
}
