//! `conecta scheduler`, `run-task` and `schedule history` as a user runs them (SQLite).

use std::process::{Command, Stdio};

fn conecta(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conecta"));
    // `start` serves HTTP too: on a port of its own, so tests in parallel do not collide.
    cmd.current_dir(dir).env("CONECTA_HTTP_ADDR", "127.0.0.1:0");
    for var in [
        "QUEUE_CONNECTION",
        "DATABASE_URL",
        "CONECTA_NOW",
        "CONECTA_SPEED",
        "CONECTA_SCHEDULE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Starts `cmd` with stdout discarded and stderr piped for [`log_lines`].
fn piped(cmd: &mut Command) -> std::process::Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The log lines a child writes on its piped stderr.
fn log_lines(child: &mut std::process::Child) -> impl Iterator<Item = String> + use<> {
    let stderr = child.stderr.take().expect("stderr piped");
    std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok)
}

#[test]
fn run_task_runs_records_and_fails_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = conecta(d)
        .args(["run-task", "diagnostics:noop"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("succeeded"));

    let out = conecta(d)
        .args(["run-task", "diagnostics:fail", "--arg", "message=boom"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("boom"));

    let out = conecta(d)
        .args([
            "run-task",
            "orders:release-stale",
            "--arg",
            "older_than=soon",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = conecta(d)
        .args(["run-task", "orders:release-stail"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean \"orders:release-stale\""));

    let out = conecta(d)
        .args([
            "run-task",
            "orders:release-stale",
            "--tenant",
            "4",
            "--at",
            "2026-11-27T10:00:00Z",
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("as of 2026-11-27T10:00:00Z"));

    let out = conecta(d)
        .args([
            "run-task",
            "diagnostics:noop",
            "--at",
            "2026-11-27T10:00:00Z",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = conecta(d)
        .args(["schedule", "history", "--format", "json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3, "the dry run is not recorded: {runs:?}");
    assert!(runs.iter().all(|r| r["manual"] == true));
    assert!(runs.iter().any(|r| {
        r["due"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-27T10:00:00")
    }));
    assert!(
        runs.iter()
            .any(|r| r["outcome"] == "failed" && r["error"] == "boom")
    );
}

#[test]
fn the_scheduler_fires_each_occurrence_once_in_fast_simulated_time_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.toml"),
        "[[task]]\nname = \"tick\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\n",
    )
    .unwrap();
    let mut child = piped(conecta(d).args([
        "--schedule",
        "s.toml",
        "--now",
        "2026-11-27T10:00:30Z",
        "--speed",
        "120",
        "scheduler",
    ]));
    // Wait for three runs to be logged (half a real second each at this speed).
    let ended = log_lines(&mut child)
        .filter(|l| l.contains("run ended"))
        .take(3)
        .count();
    assert_eq!(ended, 3, "the scheduler exited before three runs");
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let out = conecta(d)
        .args(["schedule", "history", "--task", "tick", "--format", "json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut dues: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["due"].as_str().unwrap())
        .collect();
    assert!(dues.len() >= 3, "{dues:?}");
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "succeeded")
    );
    dues.sort_unstable();
    assert_eq!(dues[0], "2026-11-27T10:01:00Z");
    let before = dues.len();
    dues.dedup();
    assert_eq!(before, dues.len(), "an occurrence ran twice");
}

#[test]
fn the_scheduler_refuses_an_invalid_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.toml"),
        "[[task]]\nname = \"tick\"\ncron = \"* * *\"\n",
    )
    .unwrap();
    let out = conecta(d)
        .args(["--schedule", "s.toml", "scheduler"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("s.toml:3:8"));
}

fn signal(child: &std::process::Child, sig: &str) {
    assert!(
        Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn sighup_with_a_broken_file_keeps_the_old_schedule_and_a_good_file_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.toml"),
        "[[task]]\nname = \"old\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\n",
    )
    .unwrap();
    let mut child = piped(conecta(d).args([
        "--schedule",
        "s.toml",
        "--now",
        "2026-11-27T10:00:30Z",
        "--speed",
        "120",
        "scheduler",
    ]));
    let mut lines = log_lines(&mut child);
    let mut wait_for = |needle: &str| {
        for line in lines.by_ref() {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("never logged {needle:?}");
    };
    wait_for("run ended");
    std::fs::write(
        d.join("s.toml"),
        "[[task]]\nname = \"old\"\ncron = \"61 * * * *\"\n",
    )
    .unwrap();
    signal(&child, "-HUP");
    let error = wait_for("s.toml:3:8");
    assert!(error.contains("bad minute field"), "{error}");
    wait_for("keeping the running one");
    let still = wait_for("run ended");
    assert!(still.contains("entry=old"), "{still}");

    std::fs::write(
        d.join("s.toml"),
        "[[task]]\nname = \"new\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\n",
    )
    .unwrap();
    signal(&child, "-HUP");
    wait_for("schedule reloaded");
    let next = wait_for("run ended");
    assert!(next.contains("entry=new"), "{next}");
    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn start_runs_scheduler_and_worker_on_the_embedded_default_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.toml"),
        "[[task]]\nname = \"tick\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\nmode = \"queue\"\n",
    )
    .unwrap();
    let mut child = piped(conecta(d).args([
        "--schedule",
        "s.toml",
        "--now",
        "2026-11-27T10:00:30Z",
        "--speed",
        "120",
        "start",
    ]));
    let mut seen = Vec::new();
    for line in log_lines(&mut child) {
        for needle in [
            "migrations applied",
            "next_due=2026-11-27T10:01:00Z",
            "worker started",
            "scheduler started",
            "run ended",
        ] {
            if line.contains(needle) && !seen.contains(&needle) {
                seen.push(needle);
            }
        }
        if seen.len() == 5 {
            break;
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(d.join("storage/conecta.sqlite").exists());
    // The queued run went through the built-in worker: nothing is left in the queue.
    let out = conecta(d)
        .args(["schedule", "history", "--format", "json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "succeeded"),
        "{runs}"
    );
}

#[test]
fn health_reports_overdue_entries_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.toml"),
        "[[task]]\nname = \"tick\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\n",
    )
    .unwrap();
    let health = |now: &str| {
        let out = conecta(d)
            .args([
                "--schedule",
                "s.toml",
                "--now",
                now,
                "schedule",
                "health",
                "--format",
                "json",
            ])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), v)
    };
    let (code, v) = health("2026-11-27T10:00:00Z");
    assert_eq!(code, Some(0));
    assert_eq!(v["entries"][0]["state"], "pending");

    let mut child = piped(conecta(d).args([
        "--schedule",
        "s.toml",
        "--now",
        "2026-11-27T10:00:30Z",
        "--speed",
        "120",
        "scheduler",
    ]));
    let ended = log_lines(&mut child)
        .filter(|l| l.contains("run ended"))
        .take(3)
        .count();
    assert_eq!(ended, 3, "the scheduler exited before three runs");
    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));

    // Runs at 10:01, 10:02, 10:03 (and perhaps 10:04): healthy just after.
    let (code, v) = health("2026-11-27T10:04:30Z");
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["entries"][0]["state"], "ok");
    assert_eq!(v["entries"][0]["period_seconds"], 60);
    // Nothing ran since: two periods later it is overdue.
    let (code, v) = health("2026-11-27T10:30:00Z");
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["entries"][0]["state"], "overdue");
    assert_eq!(v["overdue"], 1);
    assert_eq!(
        v["schedulers"],
        serde_json::json!([]),
        "a stopped scheduler is not live"
    );
}

#[test]
fn a_killed_schedulers_run_is_abandoned_and_another_takes_the_entry_after_one_lease() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.toml"),
        "[[task]]\nname = \"long\"\ntask = \"diagnostics:sleep\"\nargs = { ms = 600000 }\ncron = \"* * * * *\"\ntimeout = \"3s\"\n",
    )
    .unwrap();
    let spawn = |now: &str| {
        let mut c = piped(conecta(d).env("CONECTA_LEASE", "2").args([
            "--schedule",
            "s.toml",
            "--now",
            now,
            "scheduler",
        ]));
        let lines = log_lines(&mut c);
        (c, lines)
    };
    let (mut a, mut a_log) = spawn("2026-11-27T10:00:59Z");
    assert!(
        a_log.any(|l| l.contains("run started")),
        "A never started its run"
    );
    a.kill().unwrap(); // SIGKILL in the middle of the run, lease held
    a.wait().unwrap();

    // B's clock is a minute on: A's lease (2 s) ran out long ago. B's reaper finds it at
    // start, records the run abandoned and, per catch_up = "latest", runs the occurrence again.
    let (mut b, mut b_log) = spawn("2026-11-27T10:01:59Z");
    assert!(b_log.any(|l| l.contains("abandoned: the process running it stopped")));
    assert!(b_log.any(|l| l.contains("running the abandoned occurrence again")));
    assert!(
        b_log.any(|l| l.contains("run ended")),
        "B's run never ended"
    );
    signal(&b, "-TERM");
    assert_eq!(b.wait().unwrap().code(), Some(0));

    let out = conecta(d)
        .args(["schedule", "history", "--format", "json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = |due: &str, attempt: i64| {
        runs.as_array()
            .unwrap()
            .iter()
            .find(|r| r["due"] == due && r["attempt"] == attempt)
            .cloned()
            .unwrap_or_else(|| panic!("no run {due} attempt {attempt} in {runs}"))
    };
    let killed = run("2026-11-27T10:01:00Z", 1);
    assert_eq!(killed["outcome"], "failed", "{killed}");
    assert!(
        killed["error"].as_str().unwrap().starts_with("abandoned"),
        "{killed}"
    );
    let again = run("2026-11-27T10:01:00Z", 2);
    assert_eq!(again["outcome"], "timed_out", "{again}");
}

#[test]
fn sigterm_during_a_run_exits_0_after_the_run_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.toml"),
        "[[task]]\nname = \"slow\"\ntask = \"diagnostics:sleep\"\nargs = { ms = 1500 }\ncron = \"* * * * *\"\n",
    )
    .unwrap();
    let mut child = piped(conecta(d).args([
        "--schedule",
        "s.toml",
        "--now",
        "2026-11-27T10:00:59Z",
        "scheduler",
    ]));
    let mut log = log_lines(&mut child);
    assert!(log.any(|l| l.contains("run started")));
    signal(&child, "-TERM");
    assert!(
        log.any(|l| l.contains("run ended") && l.contains("succeeded")),
        "the run in hand did not finish"
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let out = conecta(d)
        .args(["schedule", "history", "--format", "json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["outcome"], "succeeded");
}

/// Runs a command to its end, killing it past `secs` seconds (a test never hangs).
trait OutputWithin {
    fn output_within(&mut self, secs: u64) -> std::process::Output;
}

impl OutputWithin for Command {
    fn output_within(&mut self, secs: u64) -> std::process::Output {
        let child = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let guard = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(secs));
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        });
        let out = child.wait_with_output().unwrap();
        drop(guard);
        out
    }
}

/// The rows of a rehearsal summary's first table: entry -> the six counts.
fn summary_rows(text: &str) -> std::collections::BTreeMap<String, Vec<u64>> {
    text.lines()
        .skip_while(|l| !l.starts_with("ENTRY"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            let counts = cells[1..].iter().map(|c| c.parse().unwrap()).collect();
            (cells[0].to_string(), counts)
        })
        .collect()
}

#[test]
fn a_rehearsed_day_at_speed_3600_runs_every_occurrence_once_and_says_so() {
    let _alone = crate::support::alone();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("schedules")).unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schedules/production.toml"),
        d.join("schedules/production.toml"),
    )
    .unwrap();
    let seeded = conecta(d).args(["demo", "seed"]).output().unwrap();
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let out = conecta(d)
        .args([
            // Half a minute before the day, so its first midnight is inside the window.
            "--now",
            "2026-03-06T23:59:30-06:00",
            "--speed",
            "3600",
            "start",
            "--no-http",
            "--until",
            "2026-03-08T00:00:00-06:00",
        ])
        .output_within(120);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let rows = summary_rows(&stdout);
    // A Tegucigalpa day (no DST): every minute, every quarter hour, every hour, two dailies.
    // OCCURRENCES SUCCEEDED FAILED SKIPPED MISSED UNFINISHED
    let expect: [(&str, u64); 5] = [
        ("outbox:process", 1440),
        ("orders:release-stale", 96),
        ("appointments:send-reminders", 24),
        ("analytics:sync", 1),
        ("model:prune", 1),
    ];
    for (name, n) in expect {
        assert_eq!(
            rows.get(name),
            Some(&vec![n, n, 0, 0, 0, 0]),
            "{name}:\n{stdout}"
        );
    }
    assert!(stdout.contains("SyncTenantAnalytics"), "{stdout}");
    assert!(stdout.contains("No run and no job failed."), "{stdout}");
    assert!(!stderr.contains("abandoned"), "{stderr}");
}

#[test]
fn a_rehearsal_with_a_failing_run_exits_1_and_a_bad_until_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.toml"),
        "[[task]]\nname = \"broken\"\ntask = \"diagnostics:fail\"\ncron = \"0 * * * *\"\nargs = { message = \"on purpose\" }\n",
    )
    .unwrap();
    let out = conecta(d)
        .args([
            "--schedule",
            "s.toml",
            "--now",
            "2026-04-30T23:59:30Z",
            "--speed",
            "3600",
            "scheduler",
            "--until",
            "2026-05-01T03:00:00Z",
        ])
        .output_within(60);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        summary_rows(&stdout).get("broken"),
        Some(&vec![3, 0, 3, 0, 0, 0]),
        "{stdout}"
    );
    let out = conecta(d)
        .args([
            "--schedule",
            "s.toml",
            "--now",
            "2026-05-01T00:00:00Z",
            "scheduler",
            "--until",
            "2026-04-30T00:00:00Z",
        ])
        .output_within(20);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--until"));
}

#[test]
fn an_every_second_entry_fires_each_second_once_in_a_rehearsal() {
    let _alone = crate::support::alone();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.toml"),
        "[[task]]\nname = \"tick\"\ntask = \"diagnostics:noop\"\nevery = \"1s\"\n",
    )
    .unwrap();
    let out = conecta(d)
        .args([
            "--schedule",
            "s.toml",
            "--now",
            "2026-05-01T00:00:00Z",
            "--speed",
            "30",
            "scheduler",
            "--until",
            "2026-05-01T00:01:00Z",
        ])
        .output_within(60);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        summary_rows(&stdout).get("tick"),
        Some(&vec![60, 60, 0, 0, 0, 0]),
        "{stdout}"
    );
}
