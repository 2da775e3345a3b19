//! `deploy/` for real: Debian's `supervisord` runs `deploy/supervisor/conecta.conf` as shipped
//! (only the binary, the folder and the user rewritten to a temporary directory), and
//! `systemd-analyze verify` checks the systemd units. The `.env.example` names every key the
//! program reads and loads as it is.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{CONECTA_ENV, conecta_ok, free_port, have, skip, wait_until};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The deploy files' production paths, rewritten to this test's folder and binary.
fn localise(text: &str, dir: &Path) -> String {
    text.replace("/usr/local/bin/conecta", env!("CARGO_BIN_EXE_conecta"))
        .replace("/srv/conecta", &dir.display().to_string())
}

struct Site {
    dir: tempfile::TempDir,
    supervisord: Child,
}

impl Site {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn conecta(&self, args: &[&str]) -> String {
        conecta_ok(self.path(), args)
    }

    fn ctl(&self, args: &[&str]) -> String {
        let out = Command::new("supervisorctl")
            .arg("-c")
            .arg(self.path().join("supervisord.conf"))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Each program's state and pid, from `supervisorctl status conecta:*`.
    fn status(&self) -> BTreeMap<String, (String, Option<u32>)> {
        self.ctl(&["status", "conecta:*"])
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let name = words.next()?.to_string();
                let state = words.next()?.to_string();
                let pid = line
                    .split("pid ")
                    .nth(1)
                    .and_then(|rest| rest.split(',').next())
                    .and_then(|p| p.parse().ok());
                Some((name, (state, pid)))
            })
            .collect()
    }

    fn worker_pids(&self) -> Vec<u32> {
        self.status()
            .iter()
            .filter(|(name, _)| name.contains("worker"))
            .filter_map(|(_, (_, pid))| *pid)
            .collect()
    }

    fn queue_counts(&self) -> (u64, u64, u64) {
        let status: serde_json::Value =
            serde_json::from_str(&self.conecta(&["queue", "status", "--format", "json"])).unwrap();
        let mut sums = (0, 0, 0);
        for q in status["queues"].as_array().unwrap() {
            sums.0 += q["pending"].as_u64().unwrap_or(0);
            sums.1 += q["reserved"].as_u64().unwrap_or(0);
            sums.2 += q["delayed"].as_u64().unwrap_or(0);
        }
        sums
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = self.supervisord.kill();
        let _ = self.supervisord.wait();
    }
}

const PROGRAMS: [&str; 5] = [
    "conecta:conecta-scheduler",
    "conecta:conecta-web",
    "conecta:conecta-worker-high_00",
    "conecta:conecta-worker_00",
    "conecta:conecta-worker_01",
];

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response
}

fn start_site() -> Option<Site> {
    if !have("supervisord") || !have("supervisorctl") {
        skip("supervisord not installed (Debian's supervisor package; .ci/run installs it)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("storage/logs")).unwrap();
    std::fs::create_dir_all(d.join("schedules")).unwrap();
    std::fs::write(
        d.join("schedules/production.toml"),
        "[[task]]\nname = \"diagnostics:noop\"\ncron = \"* * * * *\"\n",
    )
    .unwrap();
    let port = free_port();
    std::fs::write(
        d.join(".env"),
        format!("QUEUE_CONNECTION=database\nCONECTA_HTTP_ADDR=127.0.0.1:{port}\n"),
    )
    .unwrap();
    let shipped = std::fs::read_to_string(repo().join("deploy/supervisor/conecta.conf")).unwrap();
    // Supervisor runs as this test's user, which cannot switch to www-data.
    let programs: String = localise(&shipped, d)
        .lines()
        .filter(|l| !l.starts_with("user="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(d.join("conecta.conf"), programs).unwrap();
    std::fs::write(
        d.join("supervisord.conf"),
        format!(
            "[unix_http_server]\nfile={d}/supervisor.sock\n\n\
             [supervisord]\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\nchildlogdir={d}\n\n\
             [rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
             [supervisorctl]\nserverurl=unix://{d}/supervisor.sock\n\n\
             [include]\nfiles = {d}/conecta.conf\n",
            d = d.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new("supervisord");
    for var in CONECTA_ENV {
        cmd.env_remove(var);
    }
    let supervisord = cmd
        .arg("-n")
        .arg("-c")
        .arg(d.join("supervisord.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let site = Site { dir, supervisord };
    // The SQLite schema exists before five programs open the file at once.
    site.conecta(&["db", "migrate"]);
    wait_until("every program RUNNING", Duration::from_secs(30), || {
        let status = site.status();
        PROGRAMS
            .iter()
            .all(|p| status.get(*p).is_some_and(|(s, _)| s == "RUNNING"))
    });
    wait_until("conecta-web answers", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(http_get(port, "/healthz").ends_with("ok"));
    Some(site)
}

fn dispatch(site: &Site, n: usize, queue: &str, ms: u64) {
    let payload = format!(r#"{{"ms": {ms}}}"#);
    for _ in 0..n {
        site.conecta(&[
            "dispatch",
            "diagnostics:sleep",
            "--payload",
            &payload,
            "--queue",
            queue,
        ]);
    }
}

#[test]
fn supervisor_runs_the_shipped_programs_restarts_workers_and_loses_no_job() {
    let _alone = crate::support::alone();
    let Some(site) = start_site() else { return };
    let before = site.worker_pids();
    assert_eq!(before.len(), 3, "{:?}", site.status());

    // Load while the workers run, a restart while they are in the middle of jobs (and hold
    // more taken ahead), more load after it.
    dispatch(&site, 30, "default", 300);
    dispatch(&site, 10, "high", 300);
    site.conecta(&["queue", "restart"]);
    wait_until(
        "every worker replaced by a new process",
        Duration::from_secs(60),
        || {
            let now = site.worker_pids();
            now.len() == 3 && now.iter().all(|p| !before.contains(p))
        },
    );
    dispatch(&site, 30, "default", 40);
    dispatch(&site, 10, "high", 40);
    wait_until("every job done", Duration::from_secs(60), || {
        site.queue_counts() == (0, 0, 0)
    });
    let failed: serde_json::Value =
        serde_json::from_str(&site.conecta(&["queue", "failed", "--format", "json"])).unwrap();
    assert_eq!(failed.as_array().unwrap().len(), 0, "{failed}");
    let status = site.status();
    assert!(
        PROGRAMS
            .iter()
            .all(|p| status.get(*p).is_some_and(|(s, _)| s == "RUNNING")),
        "{status:?}"
    );

    // SIGTERM to the whole group: every program exits 0 on its own, none is killed.
    let stopped = site.ctl(&["stop", "conecta:*"]);
    for p in PROGRAMS {
        assert!(stopped.contains(&format!("{p}: stopped")), "{stopped}");
    }
    let log = std::fs::read_to_string(site.path().join("supervisord.log")).unwrap();
    for p in PROGRAMS {
        let name = p.trim_start_matches("conecta:");
        assert!(
            log.contains(&format!("stopped: {name} (exit status 0)")),
            "{name} did not exit 0 on SIGTERM:\n{log}"
        );
    }
    assert!(!log.contains("SIGKILL"), "{log}");
    // The restart made each old worker exit 0 after its job (Supervisor calls that an
    // expected exit) before Supervisor started another.
    let restarted = log
        .lines()
        .filter(|l| l.contains("exited: conecta-worker") && l.contains("(exit status 0; expected)"))
        .count();
    assert!(
        restarted >= 3,
        "{restarted} workers exited 0 after the restart:\n{log}"
    );

    // Every job ran exactly once: the workers' own counts (final at their exit) add up to
    // the 80 dispatched, none failed, none is left.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let processed: i64 = runtime.block_on(async {
        let url = format!(
            "sqlite:{}",
            site.path().join("storage/conecta.sqlite").display()
        );
        let db = conecta::store::Db::connect(&url, 1).await.unwrap();
        db.query("SELECT COALESCE(SUM(jobs_processed), 0) FROM worker_heartbeats")
            .scalar(&db)
            .await
            .unwrap()
    });
    assert_eq!(processed, 80);
    let logs = site.path().join("storage/logs");
    for file in ["worker.log", "worker-high.log", "scheduler.log", "web.log"] {
        assert!(logs.join(file).exists(), "storage/logs/{file}");
    }
}

#[test]
fn systemd_units_verify() {
    if !have("systemd-analyze") {
        skip("systemd-analyze not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let units = repo().join("deploy/systemd");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&units).unwrap() {
        let path: PathBuf = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(dir.path().join(&name), localise(&text, dir.path())).unwrap();
        // A template is verified as an instance of it.
        names.push(name.replace("@.", "@1."));
    }
    names.sort();
    assert_eq!(
        names,
        [
            "conecta-scheduler.service",
            "conecta-web.service",
            "conecta-worker-high@1.service",
            "conecta-worker@1.service",
            "conecta.target",
        ]
    );
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&names)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
}

#[test]
fn env_example_names_every_key_and_loads() {
    let example = std::fs::read_to_string(repo().join("deploy/.env.example")).unwrap();
    let source = std::fs::read_to_string(repo().join("src/config.rs")).unwrap();
    // Every key config.rs reads is a quoted upper-case name.
    let mut missing = Vec::new();
    for piece in source.split('"').skip(1).step_by(2) {
        let key = piece.len() > 3
            && piece.contains('_')
            && piece
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if key
            && !example
                .lines()
                .any(|l| l.trim_start_matches('#').starts_with(&format!("{piece}=")))
        {
            missing.push(piece.to_string());
        }
    }
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "deploy/.env.example lacks {missing:?}");
    for key in ["LOG_FORMAT", "CONECTA_UI_PASSWORD"] {
        assert!(example.contains(&format!("\n{key}=")), "{key}");
    }
    let out = crate::support::conecta_in(repo())
        .arg("--env-file")
        .arg(repo().join("deploy/.env.example"))
        .args(["tasks", "list", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
