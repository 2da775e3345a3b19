//! Laravel's command spellings, as the operators of the PHP setup type them: `queue:work` with
//! a positional connection and `--opt=value` flags, the failed-job commands, and
//! `schedule:run` called by cron every minute (several at once never run an occurrence twice).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::{conecta_in as conecta, conecta_ok as ok, output_within};

fn json(dir: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(dir, args)).unwrap()
}

fn pending(dir: &Path, queue: &str) -> u64 {
    let status = json(dir, &["queue:status", "--format=json"]);
    status["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == queue)
        .map_or(0, |q| q["pending"].as_u64().unwrap())
}

#[test]
fn queue_work_takes_a_positional_connection_and_both_flag_spellings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for queue in ["high", "high", "default"] {
        ok(d, &["dispatch", "diagnostics:noop", "--queue", queue]);
    }
    // QUEUE_CONNECTION says redis, on a port where nothing listens; the positional
    // `database` is what the worker drains, or it would wait for Redis forever.
    let out = output_within(
        conecta(d)
            .env("QUEUE_CONNECTION", "redis")
            .env("REDIS_URL", "redis://127.0.0.1:1/0")
            .args([
                "queue:work",
                "database",
                "--queue=high,default",
                "--sleep=0",
                "--tries",
                "5",
                "--once",
            ]),
        Duration::from_secs(30),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        pending(d, "high"),
        1,
        "--once ran exactly one job, from high"
    );
    assert_eq!(pending(d, "default"), 1);
    ok(
        d,
        &[
            "queue:work",
            "database",
            "--queue",
            "high,default",
            "--stop-when-empty",
            "--sleep=0",
        ],
    );
    assert_eq!(pending(d, "high") + pending(d, "default"), 0);

    let out = conecta(d).args(["queue:work", "sqs"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown queue connection \"sqs\""), "{err}");
    assert!(err.contains("redis, database or sync"), "{err}");
}

#[test]
fn failed_job_commands_in_laravel_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for message in ["one", "two", "three"] {
        let payload = format!(r#"{{"message": "{message}"}}"#);
        ok(d, &["dispatch", "diagnostics:fail", "--payload", &payload]);
    }
    ok(d, &["queue:work", "--stop-when-empty", "--sleep=0"]);
    let failed = json(d, &["queue:failed", "--format=json"]);
    let ids: Vec<String> = failed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 3, "{failed}");

    ok(d, &["queue:forget", &ids[0]]);
    assert_eq!(
        json(d, &["queue:failed", "--format=json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    ok(d, &["queue:retry", "all"]);
    assert_eq!(
        json(d, &["queue:failed", "--format=json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        pending(d, "default"),
        2,
        "retried jobs are back on their queue"
    );
    ok(d, &["queue:work", "--stop-when-empty", "--sleep=0"]);
    assert_eq!(
        json(d, &["queue:failed", "--format=json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    ok(d, &["queue:flush"]);
    assert_eq!(
        json(d, &["queue:failed", "--format=json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    ok(d, &["queue:restart"]);
    assert!(ok(d, &["queue:monitor"]).contains("failed in the last hour: 0"));
}

const EVERY_MINUTE: &str = r#"
[[task]]
name = "diagnostics:noop"
cron = "* * * * *"

# Three processes may each claim one of its occurrences at the same instant; with the
# default overlap = "skip" the later ones would be recorded as skipped, as they should.
[[task]]
name = "fast"
task = "diagnostics:noop"
every = "20s"
overlap = "allow"

[[task]]
name = "hourly"
task = "diagnostics:noop"
cron = "0 * * * *"
"#;

#[test]
fn schedule_run_fires_the_current_minute_once_however_many_crons_call_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("s.toml"), EVERY_MINUTE).unwrap();
    // Make the embedded database before three processes race to create it.
    ok(d, &["db", "migrate"]);
    let at = "2026-12-01T10:00:45Z";
    let racers: Vec<_> = (0..3)
        .map(|_| {
            conecta(d)
                .args(["--schedule", "s.toml", "--now", at])
                .args(["schedule:run", "--format=json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut claimed: Vec<(String, String)> = Vec::new();
    for racer in racers {
        let out = racer.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
        let rows = rows.as_array().unwrap();
        assert_eq!(
            rows.len(),
            5,
            "every process sees the minute's 5 occurrences"
        );
        for row in rows.iter().filter(|r| r["claimed"] == true) {
            assert_eq!(row["outcome"], "succeeded", "{row}");
            claimed.push((row["entry"].to_string(), row["due"].to_string()));
        }
    }
    claimed.sort();
    let expected: Vec<(String, String)> = [
        ("diagnostics:noop", "2026-12-01T10:00:00Z"),
        ("fast", "2026-12-01T10:00:00Z"),
        ("fast", "2026-12-01T10:00:20Z"),
        ("fast", "2026-12-01T10:00:40Z"),
        ("hourly", "2026-12-01T10:00:00Z"),
    ]
    .iter()
    .map(|(e, t)| (format!("\"{e}\""), format!("\"{t}\"")))
    .collect();
    assert_eq!(
        claimed, expected,
        "each occurrence claimed by exactly one process"
    );
    let history = json(d, &["schedule:history", "--format=json"]);
    assert_eq!(history.as_array().unwrap().len(), 5, "{history}");

    // The next minute's pass runs that minute's occurrences, and nothing of the last one again.
    let out = ok(
        d,
        &[
            "--schedule",
            "s.toml",
            "--now",
            "2026-12-01T10:01:59Z",
            "schedule:run",
        ],
    );
    assert!(
        out.contains("diagnostics:noop") && !out.contains("hourly"),
        "{out}"
    );
    assert!(!out.contains("already claimed"), "{out}");
    assert_eq!(
        json(d, &["schedule:history", "--format=json"])
            .as_array()
            .unwrap()
            .len(),
        9,
        "10:01's every-minute run and fast's 10:01:00, :20 and :40"
    );
}

#[test]
fn schedule_work_is_the_scheduler_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("s.toml"), EVERY_MINUTE).unwrap();
    // Three simulated minutes in six real seconds, then the rehearsal's summary.
    let out = output_within(
        conecta(d).args([
            "--schedule",
            "s.toml",
            "--now",
            "2026-12-01T10:00:00Z",
            "--speed",
            "30",
            "schedule:work",
            "--until",
            "2026-12-01T10:03:00Z",
        ]),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("Rehearsal of [2026-12-01T10:00:00Z, 2026-12-01T10:03:00Z)"),
        "{stdout}"
    );
    let history = json(d, &["schedule:history", "--format=json", "--limit=100"]);
    let runs = history.as_array().unwrap();
    let of = |entry: &str| runs.iter().filter(|r| r["entry"] == entry).count();
    // Exactly [10:00, 10:03): the start instant included, the --until instant not.
    assert_eq!(of("diagnostics:noop"), 3, "{history}");
    assert_eq!(of("fast"), 9, "{history}");
    assert_eq!(of("hourly"), 1, "{history}");
}
