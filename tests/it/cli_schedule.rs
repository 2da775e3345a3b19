//! The `schedule` commands, run as a user runs them: the real binary in a temp dir.

use assert_cmd::Command;
use std::path::Path;

fn conecta(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("conecta").unwrap();
    cmd.current_dir(dir)
        .env_remove("CONECTA_SCHEDULE")
        .env_remove("CONECTA_NOW")
        .env_remove("CONECTA_SPEED")
        .env_remove("APP_TIMEZONE");
    cmd
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

const BROKEN: &str = r#"timezone = "America/Tegucigalpa"
tasks = 1

[[task]]
name = "outbox:process"
cron = "61 * * * *"

[[task]]
name = "orders:release-stail"
cron = "*/15 * * * *"
timezone = "America/Tegucigalpha"
args = { older_than = "half an hour" }

[[task]]
name = "outbox:process"
task = "outbox:process"
cron = "* * * * *"
catch_up_window = "1 hour"
overlpa = "skip"
"#;

#[test]
fn check_reports_every_problem_with_file_line_col_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.toml"), BROKEN).unwrap();
    let out = conecta(dir.path())
        .args(["schedule", "check", "broken.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    let expected = [
        // unknown top-level key
        (
            "broken.toml:2:1: unknown key \"tasks\"",
            Some("did you mean \"task\"?"),
        ),
        // bad cron field
        ("broken.toml:6:8: bad minute field \"61\"", None),
        // unknown task with a suggestion
        (
            "broken.toml:9:8: unknown task \"orders:release-stail\"",
            Some("did you mean \"orders:release-stale\"?"),
        ),
        // bad time zone with a suggestion
        (
            "broken.toml:11:12: unknown time zone \"America/Tegucigalpha\"",
            Some("did you mean \"America/Tegucigalpa\"?"),
        ),
        // duplicate name
        (
            "broken.toml:15:8: duplicate entry name \"outbox:process\"",
            Some("first defined on line 5"),
        ),
        // bad duration
        (
            "broken.toml:18:19: bad duration for `catch_up_window`",
            None,
        ),
        // unknown key with a suggestion
        (
            "broken.toml:19:1: unknown key \"overlpa\"",
            Some("did you mean \"overlap\"?"),
        ),
    ];
    for (line, hint) in expected {
        assert!(err.contains(line), "missing {line:?} in:\n{err}");
        if let Some(hint) = hint {
            assert!(err.contains(hint), "missing hint {hint:?} in:\n{err}");
        }
    }
    assert!(err.contains("problems in broken.toml"), "{err}");
}

#[test]
fn check_reports_bad_arguments_and_a_missing_cron() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "[[task]]\nname = \"orders:release-stale\"\nargs = { older_than = \"soon\", tenent = 3 }\n",
    )
    .unwrap();
    let out = conecta(dir.path())
        .args(["schedule", "check", "s.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("s.toml:1:1: entry \"orders:release-stale\" has no `cron`"),
        "{err}"
    );
    assert!(
        err.contains("s.toml:3:23: bad argument `older_than` for \"orders:release-stale\": expected a duration"),
        "{err}"
    );
    assert!(
        err.contains("s.toml:3:31: unknown argument \"tenent\""),
        "{err}"
    );
    assert!(err.contains("did you mean \"tenant\"?"), "{err}");
}

#[test]
fn check_reports_invalid_toml_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "[[task]]\nname = \"x\ncron = \"* * * * *\"\n",
    )
    .unwrap();
    let out = conecta(dir.path())
        .args(["schedule", "check", "s.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("s.toml:2:"), "{err}");
    assert!(err.contains("invalid TOML"), "{err}");
}

#[test]
fn check_of_a_missing_file_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = conecta(dir.path())
        .args(["schedule", "check", "nope.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cannot read schedule file nope.toml"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn check_of_production_is_ok_and_lists_dst_dates_for_a_dst_zone() {
    let out = conecta(repo())
        .args(["schedule", "check", "schedules/production.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ok, 5 entries"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let ny = std::fs::read_to_string(repo().join("schedules/production.toml"))
        .unwrap()
        .replace("America/Tegucigalpa", "America/New_York")
        .replace("30 0 * * *", "30 2 * * *");
    std::fs::write(dir.path().join("ny.toml"), ny).unwrap();
    let out = conecta(dir.path())
        .args([
            "--now",
            "2026-11-27T00:00:00Z",
            "schedule",
            "check",
            "ny.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("2027-03-14  analytics:sync") && text.contains("02:30 does not exist"),
        "{text}"
    );
    assert!(
        text.contains("runs once at 2027-03-14T03:00:00-04:00"),
        "{text}"
    );
    assert!(text.contains("2027-11-07  outbox:process"), "{text}");
}

#[test]
fn simulate_json_has_the_documented_shape() {
    let out = conecta(repo())
        .args([
            "schedule",
            "simulate",
            "--from",
            "2026-11-27T06:00:00Z",
            "--to",
            "2026-11-27T06:31:00Z",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    // 31 minutes of outbox:process, release-stale at :00, :15, :30, reminders at :00,
    // analytics:sync at 00:30 local = 06:30Z.
    assert_eq!(lines.len(), 31 + 3 + 1 + 1);
    assert_eq!(
        lines[0],
        serde_json::json!({
            "name": "outbox:process",
            "task": "outbox:process",
            "due": "2026-11-27T06:00:00Z",
            "local": "2026-11-27T00:00:00-06:00"
        })
    );
    let analytics: Vec<_> = lines
        .iter()
        .filter(|l| l["name"] == "analytics:sync")
        .collect();
    assert_eq!(analytics[0]["due"], "2026-11-27T06:30:00Z");
    assert_eq!(analytics[0]["local"], "2026-11-27T00:30:00-06:00");
    let dues: Vec<&str> = lines.iter().map(|l| l["due"].as_str().unwrap()).collect();
    assert!(dues.windows(2).all(|w| w[0] <= w[1]), "not in order");
}

#[test]
fn simulate_rejects_a_bad_instant_with_exit_2() {
    let out = conecta(repo())
        .args([
            "schedule",
            "simulate",
            "--from",
            "yesterday",
            "--to",
            "2026-11-28T00:00:00Z",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("--from: expected an RFC 3339 instant")
    );
}

#[test]
fn list_shows_every_entry_with_its_next_run() {
    let out = conecta(repo())
        .args(["--now", "2026-11-27T12:00:00Z", "schedule", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    insta::with_settings!({filters => vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", "[TIME]"),
    ]}, {
        insta::assert_snapshot!(text);
    });
}

#[test]
fn list_json_and_laravel_alias() {
    let out = conecta(repo())
        .args([
            "--now",
            "2026-11-27T12:00:00Z",
            "schedule:list",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &list[0];
    assert_eq!(first["name"], "outbox:process");
    assert_eq!(first["timezone"], "America/Tegucigalpa");
    assert_eq!(first["next_due"], "2026-11-27T12:01:00Z");
    assert_eq!(first["next_local"], "2026-11-27T06:01:00-06:00");
    assert_eq!(list[3]["next_due"], "2026-11-28T06:30:00Z");
}

#[test]
fn next_merges_entries_in_order() {
    let out = conecta(repo())
        .args([
            "--now",
            "2026-11-27T11:59:30Z",
            "schedule",
            "next",
            "--count",
            "4",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let names: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "outbox:process",
            "orders:release-stale",
            "appointments:send-reminders",
            "outbox:process"
        ]
    );
}

#[test]
fn schedule_env_var_and_flag_choose_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.toml"),
        "[[task]]\nname = \"model:prune\"\ncron = \"0 4 * * *\"\n",
    )
    .unwrap();
    let out = conecta(dir.path())
        .env("CONECTA_SCHEDULE", "mine.toml")
        .args(["schedule", "list", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["timezone"], "UTC");

    // APP_TIMEZONE from .env is the fallback zone.
    std::fs::write(dir.path().join(".env"), "APP_TIMEZONE=Asia/Kathmandu\n").unwrap();
    let out = conecta(dir.path())
        .args([
            "--schedule",
            "mine.toml",
            "schedule",
            "list",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["timezone"], "Asia/Kathmandu");
}

/// One daily entry at `at` local time in `zone`.
fn daily(zone: &str, at: &str, extra: &str) -> String {
    let (h, m) = at.split_once(':').unwrap();
    format!(
        "[[task]]\nname = \"nightly\"\ntask = \"model:prune\"\ncron = \"{m} {h} * * *\"\ntimezone = \"{zone}\"\n{extra}"
    )
}

fn diff_json(dir: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let out = conecta(dir)
        .args(["schedule", "diff"])
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let doc = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap(), doc)
}

#[test]
fn diff_reports_moves_across_dst_in_three_zones_and_exits_1_only_on_change() {
    let dir = tempfile::tempdir().unwrap();
    // Each window holds the zone's spring-forward day: 02:30 does not exist there and is
    // shifted to the end of the gap (the default), so moving the entry to 03:30 moves that
    // day's run by 30 minutes and every other day's by an hour.
    let cases = [
        (
            "America/New_York",
            "2026-03-07T00:00:00Z",
            "2026-03-10T00:00:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-08T07:30:00Z",
        ),
        (
            "Europe/Lisbon",
            "2026-03-28T00:00:00Z",
            "2026-03-31T00:00:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-29T01:30:00Z",
        ),
        (
            "Australia/Sydney",
            "2026-10-03T00:00:00Z",
            "2026-10-06T00:00:00Z",
            "2026-10-03T16:00:00Z",
            "2026-10-03T16:30:00Z",
        ),
    ];
    for (zone, from, to, gap_from, gap_to) in cases {
        let old = dir.path().join("old.toml");
        let new = dir.path().join("new.toml");
        let (at_old, at_new) = if zone == "Europe/Lisbon" {
            ("01:30", "02:30")
        } else {
            ("02:30", "03:30")
        };
        std::fs::write(&old, daily(zone, at_old, "")).unwrap();
        std::fs::write(&new, daily(zone, at_new, "")).unwrap();
        let (code, doc) = diff_json(
            dir.path(),
            &["old.toml", "new.toml", "--from", from, "--to", to],
        );
        assert_eq!(code, 1, "{zone}: {doc}");
        assert_eq!(doc["changed"], true);
        let e = &doc["entries"][0];
        assert_eq!(e["status"], "changed", "{zone}");
        assert_eq!(e["moved"]["count"], 3, "{zone}: {e}");
        assert_eq!(e["added"]["count"], 0, "{zone}");
        assert_eq!(e["settings"][0]["setting"], "cron", "{zone}");
        let moved = e["moved"]["first"].as_array().unwrap();
        assert!(
            moved
                .iter()
                .any(|m| m["from"]["utc"] == gap_from && m["to"]["utc"] == gap_to),
            "{zone}: the spring-forward day's run moves from {gap_from} to {gap_to}: {e}"
        );
        // The same file on both sides: nothing changes, exit 0.
        let (code, doc) = diff_json(
            dir.path(),
            &["new.toml", "new.toml", "--from", from, "--to", to],
        );
        assert_eq!(
            (code, &doc["changed"]),
            (0, &serde_json::Value::Bool(false)),
            "{zone}"
        );
        assert_eq!(doc["entries"][0]["status"], "unchanged");
    }
}

#[test]
fn diff_reads_the_old_file_from_git_and_reports_added_removed_and_policies() {
    if std::process::Command::new("git")
        .arg("--version")
        .output()
        .is_err()
    {
        crate::support::skip("git not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .current_dir(dir.path())
            .args(["-c", "user.email=ci@example.test", "-c", "user.name=ci"])
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    };
    let file = dir.path().join("schedule.toml");
    std::fs::write(
        &file,
        format!(
            "{}\n[[task]]\nname = \"old-audit\"\ntask = \"tenants:audit-limits\"\ncron = \"0 4 * * *\"\n",
            daily("UTC", "02:00", "")
        ),
    )
    .unwrap();
    git(&["init", "-q", "."]);
    git(&["add", "schedule.toml"]);
    git(&["commit", "-qm", "first"]);
    std::fs::write(
        &file,
        format!(
            "{}\n[[task]]\nname = \"reminders\"\ntask = \"appointments:send-reminders\"\ncron = \"0 9 * * *\"\n",
            daily("UTC", "02:00", "overlap = \"allow\"\ncatch_up = \"all\"\n")
        ),
    )
    .unwrap();
    let window = [
        "--from",
        "2026-05-01T00:00:00Z",
        "--to",
        "2026-05-11T00:00:00Z",
    ];
    let mut args = vec!["git:HEAD", "schedule.toml"];
    args.extend(window);
    let (code, doc) = diff_json(dir.path(), &args);
    assert_eq!(code, 1, "{doc}");
    let entry = |name: &str| {
        doc["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {doc}"))
    };
    let nightly = entry("nightly");
    assert_eq!(nightly["status"], "changed");
    let changed: Vec<&str> = nightly["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["setting"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["overlap", "catch_up"]);
    assert_eq!(nightly["moved"]["count"], 0);
    assert_eq!(entry("reminders")["status"], "added");
    assert_eq!(entry("reminders")["added"]["count"], 10);
    assert_eq!(entry("old-audit")["status"], "removed");
    assert_eq!(entry("old-audit")["removed"]["count"], 10);
    assert_eq!(
        entry("old-audit")["removed"]["first"][0]["utc"],
        "2026-05-01T04:00:00Z"
    );
    // A broken new file: exit 2 with its line and column.
    std::fs::write(
        &file,
        "[[task]]\nname = \"x\"\ncron = \"61 * * * *\"\ntask = \"model:prune\"\n",
    )
    .unwrap();
    let out = conecta(dir.path())
        .args(["schedule", "diff", "git:HEAD", "schedule.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("schedule.toml:3:8"));
}

fn explain_json(dir: &Path, schedule: &str, args: &[&str]) -> serde_json::Value {
    std::fs::write(dir.join("explain.toml"), schedule).unwrap();
    let out = conecta(dir)
        .args(["--schedule", "explain.toml", "schedule", "explain"])
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn explain_names_the_dst_rule_applied_in_three_zones_and_the_day_rule() {
    let dir = tempfile::tempdir().unwrap();
    // New York, spring forward: 02:30 does not exist on 8 March and is shifted to 03:00 EDT.
    let doc = explain_json(
        dir.path(),
        &daily("America/New_York", "02:30", ""),
        &["nightly", "--at", "2026-03-07T12:00:00Z", "--count", "2"],
    );
    let gap = &doc["occurrences"][0];
    assert_eq!(gap["due"], "2026-03-08T07:00:00Z", "{doc}");
    assert_eq!(gap["local"], "2026-03-08T03:00:00-04:00");
    assert_eq!(gap["zone"], "EDT");
    assert!(
        gap["dst"].as_str().unwrap().contains("does not exist"),
        "{gap}"
    );
    assert!(
        doc["dst_rule"]
            .as_str()
            .unwrap()
            .contains("dst_skipped = \"shift\"")
    );
    // Lisbon, fall back: 01:30 happens twice on 25 October; dst_repeated = "last" runs the second.
    let doc = explain_json(
        dir.path(),
        &daily("Europe/Lisbon", "01:30", "dst_repeated = \"last\"\n"),
        &["nightly", "--at", "2026-10-24T12:00:00Z", "--count", "1"],
    );
    let repeated = &doc["occurrences"][0];
    assert_eq!(repeated["due"], "2026-10-25T01:30:00Z", "{doc}");
    assert_eq!(repeated["local"], "2026-10-25T01:30:00+00:00");
    assert!(
        repeated["dst"].as_str().unwrap().contains("happens twice"),
        "{repeated}"
    );
    assert!(
        repeated["dst"].as_str().unwrap().contains("second"),
        "{repeated}"
    );
    // Sydney, spring forward with dst_skipped = "skip": 4 October has no run, and says why.
    let doc = explain_json(
        dir.path(),
        &daily("Australia/Sydney", "02:30", "dst_skipped = \"skip\"\n"),
        &["nightly", "--at", "2026-10-02T12:00:00Z", "--count", "2"],
    );
    let dues: Vec<&str> = doc["occurrences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["due"].as_str().unwrap())
        .collect();
    assert_eq!(
        dues,
        ["2026-10-02T16:30:00Z", "2026-10-04T15:30:00Z"],
        "{doc}"
    );
    let change = &doc["dst_changes"][0];
    assert_eq!(change["date"], "2026-10-04", "{doc}");
    assert!(
        change["detail"]
            .as_str()
            .unwrap()
            .contains("no run that day"),
        "{change}"
    );
    // Both day fields restricted: either matching runs, and each run says which one did.
    let monthly = "[[task]]\nname = \"monthly\"\ntask = \"model:prune\"\ncron = \"0 9 1 * MON\"\ntimezone = \"Australia/Sydney\"\n";
    let doc = explain_json(
        dir.path(),
        monthly,
        &["monthly", "--at", "2026-05-31T00:00:00Z", "--count", "2"],
    );
    assert!(
        doc["day_rule"].as_str().unwrap().contains("either"),
        "{doc}"
    );
    assert_eq!(
        doc["occurrences"][0]["day_matched_by"], "both day-of-month and day-of-week",
        "{doc}"
    );
    assert_eq!(doc["occurrences"][0]["local"], "2026-06-01T09:00:00+10:00");
    assert_eq!(doc["occurrences"][1]["day_matched_by"], "day-of-week");
    assert_eq!(doc["occurrences"][1]["local"], "2026-06-08T09:00:00+10:00");
}

#[test]
fn check_rejects_a_bad_every_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("e.toml"),
        "[[task]]\nname = \"a\"\ntask = \"diagnostics:noop\"\nevery = \"7s\"\n\n[[task]]\nname = \"b\"\ntask = \"diagnostics:noop\"\nevery = \"0s\"\n\n[[task]]\nname = \"c\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\nevery = \"10s\"\n\n[[task]]\nname = \"d\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\nanchor = \"2026-01-01T00:00:00Z\"\n",
    )
    .unwrap();
    let out = conecta(dir.path())
        .args(["schedule", "check", "e.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    for expected in [
        "e.toml:4:9: `every` (7s) must divide a day evenly",
        "e.toml:9:9: ",
        "e.toml:15:9: entry \"c\" has both `cron` and `every`",
        "e.toml:21:10: `anchor` is only for `every` entries",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    // A good one: listed with its interval, next due on the grid of its anchor.
    std::fs::write(
        dir.path().join("ok.toml"),
        "[[task]]\nname = \"tick\"\ntask = \"diagnostics:noop\"\nevery = \"15m\"\nanchor = \"2026-01-01T00:05:00Z\"\n",
    )
    .unwrap();
    let out = conecta(dir.path())
        .args([
            "--schedule",
            "ok.toml",
            "--now",
            "2026-05-01T10:00:00Z",
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
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("every 15m"), "{text}");
    assert!(text.contains("2026-05-01T10:05:00Z"), "{text}");
}
