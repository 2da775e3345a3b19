//! `conecta tasks list`, and one argument check for the schedule file, `run-task` and
//! `dispatch`.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn conecta(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("conecta").unwrap();
    cmd.current_dir(dir)
        .env_remove("CONECTA_SCHEDULE")
        .env_remove("DATABASE_URL")
        .env_remove("QUEUE_CONNECTION");
    cmd
}

#[test]
fn tasks_list_json_shows_every_catalog_name_with_its_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let out = conecta(dir.path())
        .args(["tasks", "list", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = listed.iter().map(|t| t["name"].as_str().unwrap()).collect();
    let catalog: Vec<&str> = conecta::tasks::names().collect();
    assert_eq!(names, catalog);
    let release = &listed[names
        .iter()
        .position(|n| *n == "orders:release-stale")
        .unwrap()];
    assert_eq!(release["kind"], "task");
    assert_eq!(release["queue"], Value::Null);
    assert_eq!(
        release["arguments"][0],
        serde_json::json!({"name": "older_than", "type": "duration", "default": "30m"})
    );
    let mail = &listed[names
        .iter()
        .position(|n| *n == "SendOrderCancellation")
        .unwrap()];
    assert_eq!(
        (&mail["kind"], &mail["queue"], &mail["tries"]),
        (
            &Value::from("job"),
            &Value::from("default"),
            &Value::from(5)
        )
    );
    let table = conecta(dir.path())
        .args(["tasks", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.starts_with("NAME"), "{text}");
    assert!(
        text.contains("older_than:duration=30m, tenant:integer=every tenant"),
        "{text}"
    );
}

#[test]
fn an_argument_typo_gets_the_same_message_from_schedule_check_run_task_and_dispatch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "[[task]]\nname = \"audit\"\ntask = \"AuditTenantLimits\"\ncron = \"0 * * * *\"\nargs = { tenent = 3 }\n",
    )
    .unwrap();
    let message = "unknown argument \"tenent\" for \"AuditTenantLimits\"";
    let hint = "did you mean \"tenant\"?";
    let runs: [&[&str]; 3] = [
        &["schedule", "check", "s.toml"],
        &["run-task", "AuditTenantLimits", "--arg", "tenent=3"],
        &[
            "dispatch",
            "AuditTenantLimits",
            "--payload",
            "{\"tenent\":3}",
        ],
    ];
    for args in runs {
        let out = conecta(dir.path()).args(args).output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(err.contains(hint), "{args:?}: {err}");
    }
}

#[test]
fn laravel_class_names_are_accepted_as_the_tasks_they_became() {
    let dir = tempfile::tempdir().unwrap();
    let listed: Vec<Value> = serde_json::from_slice(
        &conecta(dir.path())
            .args(["tasks", "list", "--format", "json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        listed.iter().all(|t| t["implemented"] == true),
        "every name has a body"
    );
    let sync = listed
        .iter()
        .find(|t| t["name"] == "analytics:sync")
        .unwrap();
    assert_eq!(sync["aliases"], serde_json::json!(["SyncAnalyticsJob"]));

    // The schedule file.
    std::fs::write(
        dir.path().join("s.toml"),
        "[[task]]\nname = \"stale\"\ntask = \"ReleaseStaleOrders\"\ncron = \"*/15 * * * *\"\nargs = { older_than = \"45m\" }\n",
    )
    .unwrap();
    let out = conecta(dir.path())
        .args([
            "--schedule",
            "s.toml",
            "schedule",
            "list",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entries[0]["task"], "orders:release-stale", "{entries}");

    // run-task.
    let out = conecta(dir.path())
        .args(["run-task", "SendAppointmentReminders", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("would run appointments:send-reminders"));

    // dispatch: enqueued under the catalog name, and checked by its definition.
    let out = conecta(dir.path())
        .args([
            "dispatch",
            "SyncAnalyticsJob",
            "--payload",
            r#"{"chunk": "many"}"#,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("analytics:sync"));
    let out = conecta(dir.path())
        .args([
            "dispatch",
            "SyncAnalyticsJob",
            "--payload",
            r#"{"chunk": 100}"#,
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
