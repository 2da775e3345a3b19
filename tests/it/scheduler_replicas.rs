//! Exactly once across replicas, with real processes: three `conecta scheduler` processes on
//! one database, in fast simulated time, their clocks skewed by their start times.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

// overlap = "allow": at 1,800x a simulated minute is 33 ms of real time, less than a run's
// database round trips on a loaded machine, so a lease would (rightly) skip some runs. This
// test is about the claim alone.
const SCHEDULE: &str = "timezone = \"America/Tegucigalpa\"\n\
[[task]]\nname = \"every-minute\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\noverlap = \"allow\"\n\
[[task]]\nname = \"quarter-hour\"\ntask = \"diagnostics:noop\"\ncron = \"*/15 * * * *\"\noverlap = \"allow\"\n";

fn replicas(database_url: String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.toml"), SCHEDULE).unwrap();
    let cmd = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_conecta"));
        c.current_dir(dir.path())
            .env("DATABASE_URL", &database_url)
            .env("QUEUE_CONNECTION", "database")
            .env_remove("CONECTA_NOW")
            .env_remove("CONECTA_SPEED")
            .args(args);
        c
    };
    assert!(cmd(&["db", "migrate"]).status().unwrap().success());
    let start = "2026-11-27T10:00:00Z";
    // 1,800x: two simulated hours are four real seconds.
    let mut children: Vec<_> = (0..3)
        .map(|_| {
            cmd(&[
                "--schedule",
                "s.toml",
                "--now",
                start,
                "--speed",
                "1800",
                "scheduler",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    // Until the replicas have claimed the occurrence two simulated hours in, and the
    // slowest-started one is past it too (two more simulated minutes: 70 ms at 1,800x).
    let t0: DateTime<Utc> = start.parse().unwrap();
    let last = (t0 + TimeDelta::minutes(122))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    crate::support::wait_until(
        "the replicas to pass two simulated hours",
        Duration::from_secs(60),
        || {
            let out = cmd(&[
                "schedule",
                "history",
                "--task",
                "every-minute",
                "--limit",
                "1",
                "--format",
                "json",
            ])
            .output()
            .unwrap();
            let newest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            newest[0]["due"]
                .as_str()
                .is_some_and(|due| due >= last.as_str())
        },
    );
    for c in &children {
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
    }
    for c in &mut children {
        assert_eq!(c.wait().unwrap().code(), Some(0));
    }
    let out = cmd(&[
        "schedule", "history", "--limit", "100000", "--format", "json",
    ])
    .output()
    .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut per: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut runners = std::collections::HashSet::new();
    for r in runs.as_array().unwrap() {
        *per.entry((
            r["entry"].as_str().unwrap().into(),
            r["due"].as_str().unwrap().into(),
        ))
        .or_default() += 1;
        runners.insert(r["runner"].as_str().unwrap().to_string());
        assert_eq!(r["outcome"], "succeeded", "{r}");
    }
    assert!(
        per.values().all(|n| *n == 1),
        "an occurrence has more than one row"
    );
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for m in 1..=120 {
        let due = fmt(t0 + TimeDelta::minutes(m));
        assert!(
            per.contains_key(&("every-minute".into(), due.clone())),
            "missing every-minute {due}"
        );
        if m % 15 == 0 {
            assert!(
                per.contains_key(&("quarter-hour".into(), due.clone())),
                "missing quarter-hour {due}"
            );
        }
    }
    // Which replica wins is a matter of clock skew (the earliest-started runs ahead), so the
    // runners are only reported.
    eprintln!("runners that won claims: {runners:?}");
}

#[test]
fn three_schedulers_on_postgres_fire_each_occurrence_once() {
    let Some(base) = crate::support::service_url("CONECTA_TEST_POSTGRES_URL") else {
        return;
    };
    let schema = format!(
        "replicas_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        if let conecta::store::Db::Postgres(p) =
            conecta::store::Db::connect(&base, 1).await.unwrap()
        {
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&p)
                .await
                .unwrap();
        }
    });
    let sep = if base.contains('?') { '&' } else { '?' };
    replicas(format!("{base}{sep}options=-c%20search_path%3D{schema}"));
}

#[test]
fn three_schedulers_on_mariadb_fire_each_occurrence_once() {
    let Some(base) = crate::support::service_url("CONECTA_TEST_MYSQL_URL") else {
        return;
    };
    let name = format!(
        "replicas_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        if let conecta::store::Db::MySql(p) = conecta::store::Db::connect(&base, 1).await.unwrap() {
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&p)
                .await
                .unwrap();
        }
    });
    let root = base.rsplit_once('/').map(|(r, _)| r.to_string()).unwrap();
    replicas(format!("{root}/{name}"));
}
