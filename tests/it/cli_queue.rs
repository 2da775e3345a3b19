//! The queue commands as a user runs them, on the embedded default (SQLite + database queue)
//! in a temp dir: dispatch, worker, failed/retry/forget/flush, locks, status, batches.

use std::path::Path;

use crate::support::{conecta_in as conecta, conecta_ok};

fn stdout(dir: &Path, args: &[&str]) -> String {
    conecta_ok(dir, args)
}

#[test]
fn dispatch_work_fail_retry_forget_flush() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let id = stdout(d, &["dispatch", "diagnostics:noop", "--payload", r#"{}"#]);
    assert_eq!(id.trim().len(), 36, "prints the job id: {id}");
    stdout(
        d,
        &[
            "dispatch",
            "diagnostics:fail",
            "--payload",
            r#"{"message": "boom"}"#,
        ],
    );
    stdout(
        d,
        &[
            "dispatch",
            "diagnostics:sleep",
            "--payload",
            r#"{"ms": 5000}"#,
            "--timeout",
            "1",
        ],
    );
    // A payload that does not fit the job's arguments is refused at dispatch.
    let out = conecta(d)
        .args([
            "dispatch",
            "diagnostics:sleep",
            "--payload",
            r#"{"ms": "soon"}"#,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected a whole number"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        Path::new(&d.join("storage/conecta.sqlite")).exists(),
        "embedded default database created"
    );

    let status = stdout(d, &["queue", "status", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["queues"][0]["pending"], 3);

    let out = conecta(d)
        .args(["worker", "--stop-when-empty", "--sleep", "0"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let failed = stdout(d, &["queue:failed"]);
    assert!(
        failed.contains("diagnostics:fail") && failed.contains("boom"),
        "{failed}"
    );
    assert!(failed.contains("timed out after 1s"), "{failed}");
    let list: serde_json::Value =
        serde_json::from_str(&stdout(d, &["queue", "failed", "--format", "json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    for field in [
        "id",
        "uuid",
        "connection",
        "queue",
        "job",
        "failed_at",
        "exception",
    ] {
        assert!(list[0].get(field).is_some(), "missing {field}");
    }
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .collect();

    let retried = stdout(d, &["queue", "retry", &ids[0].to_string()]);
    assert!(retried.starts_with("retried failed job"), "{retried}");
    let status: serde_json::Value =
        serde_json::from_str(&stdout(d, &["queue", "status", "--format", "json"])).unwrap();
    assert_eq!(status["queues"][0]["pending"], 1);

    let forgot = stdout(d, &["queue", "forget", &ids[1].to_string()]);
    assert!(forgot.contains("forgot"), "{forgot}");
    let out = conecta(d)
        .args(["queue", "forget", "999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    stdout(d, &["worker", "--stop-when-empty", "--sleep", "0"]);
    assert!(stdout(d, &["queue", "flush"]).contains("flushed 1 failed job"));
    assert!(stdout(d, &["queue", "failed"]).contains("No failed jobs."));
}

#[test]
fn unique_dispatch_reports_duplicate_and_locks_are_listed_and_released() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = [
        "dispatch",
        "diagnostics:noop",
        "--unique-key",
        "analytics:7:2026-11-27",
        "--unique-for",
        "1h",
    ];
    let first = stdout(d, &args);
    assert_ne!(first.trim(), "duplicate");
    assert_eq!(stdout(d, &args).trim(), "duplicate");
    let locks: serde_json::Value =
        serde_json::from_str(&stdout(d, &["locks", "list", "--format", "json"])).unwrap();
    assert_eq!(locks[0]["key"], "analytics:7:2026-11-27");
    assert_eq!(locks[0]["owner"], first.trim());
    assert!(
        stdout(d, &["locks", "list", "--prefix", "analytics:7"]).contains("analytics:7:2026-11-27")
    );
    assert!(stdout(d, &["locks", "release", "analytics:7:2026-11-27"]).contains("released"));
    assert_eq!(
        conecta(d)
            .args(["locks", "release", "analytics:7:2026-11-27"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(1)
    );
    assert_ne!(stdout(d, &args).trim(), "duplicate");
}

#[test]
fn worker_flags_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = conecta(d)
        .args(["worker", "--timeout", "90"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not shorter than QUEUE_RETRY_AFTER"), "{err}");

    for _ in 0..3 {
        stdout(d, &["dispatch", "diagnostics:noop", "--queue", "low"]);
    }
    stdout(d, &["dispatch", "diagnostics:noop", "--queue", "high"]);
    let out = conecta(d)
        .args([
            "queue:work",
            "--queue",
            "high,low",
            "--max-jobs",
            "2",
            "--sleep",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let status: serde_json::Value =
        serde_json::from_str(&stdout(d, &["queue", "status", "--format", "json"])).unwrap();
    let queues = status["queues"].as_array().unwrap();
    let pending = |q: &str| {
        queues
            .iter()
            .find(|x| x["queue"] == q)
            .map(|x| x["pending"].as_u64().unwrap())
            .unwrap_or(0)
    };
    assert_eq!(pending("high"), 0, "high first");
    assert_eq!(pending("low"), 2);

    let out = conecta(d)
        .env("QUEUE_CONNECTION", "sqs")
        .args(["queue", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("QUEUE_CONNECTION"));
    let out = conecta(d)
        .args(["dispatch", "diagnostics:noop", "--payload", "{not json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn batches_are_listed_shown_and_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(stdout(d, &["batch", "list"]).contains("No batches."));
    let out = conecta(d).args(["batch", "show", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        conecta(d)
            .args(["batch", "cancel", "nope"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(1)
    );
}
