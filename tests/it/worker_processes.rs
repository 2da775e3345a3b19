//! Real worker processes: a worker SIGKILLed in the middle of a job (Redis and PostgreSQL),
//! SIGTERM finishing the job in hand, and `queue restart`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Env {
    vars: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Env {
    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_conecta"));
        c.current_dir(self.dir.path());
        for v in [
            "QUEUE_CONNECTION",
            "DATABASE_URL",
            "REDIS_URL",
            "REDIS_PREFIX",
            "CONECTA_NOW",
            "CONECTA_SPEED",
        ] {
            c.env_remove(v);
        }
        c.env("QUEUE_RETRY_AFTER", "3");
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.run(args)).unwrap()
    }

    /// A worker whose log lines arrive on the returned channel.
    fn worker(&self, args: &[&str]) -> (Child, mpsc::Receiver<serde_json::Value>) {
        let mut child = self
            .cmd()
            .env("RUST_LOG", "conecta=debug")
            .args(["--log-format", "json", "worker"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        (child, rx)
    }
}

fn wait_for(
    rx: &mpsc::Receiver<serde_json::Value>,
    what: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if what(&v) => return v,
            Ok(_) => {}
            Err(_) => panic!("the awaited log line never came"),
        }
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> i32 {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("worker did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn started(uuid: &str) -> impl Fn(&serde_json::Value) -> bool + '_ {
    move |v| v["message"] == "job started" && v["uuid"] == uuid
}

fn empty_everywhere(env: &Env) {
    let status = env.json(&["queue", "status", "--format", "json"]);
    for q in status["queues"].as_array().unwrap() {
        assert_eq!(
            q["pending"].as_u64().unwrap()
                + q["reserved"].as_u64().unwrap()
                + q["delayed"].as_u64().unwrap(),
            0,
            "{status}"
        );
    }
    assert_eq!(
        env.json(&["queue", "failed", "--format", "json"]),
        serde_json::json!([])
    );
}

fn crash_and_recover(env: Env) {
    let uuid = env.run(&[
        "dispatch",
        "diagnostics:sleep",
        "--payload",
        r#"{"ms": 1500}"#,
        "--unique-key",
        "crash-test",
        "--unique-for",
        "1h",
        "--tries",
        "3",
    ]);
    let uuid = uuid.trim().to_string();
    let (mut a, logs_a) = env.worker(&["--timeout", "2", "--sleep", "0.1"]);
    wait_for(&logs_a, started(&uuid));
    a.kill().unwrap(); // SIGKILL in the middle of the job
    a.wait().unwrap();
    let status = env.json(&["queue", "status", "--format", "json"]);
    assert_eq!(
        status["queues"][0]["reserved"], 1,
        "the dead worker's job stays reserved: {status}"
    );
    assert_eq!(
        env.json(&["locks", "list", "--format", "json"])[0]["key"],
        "crash-test"
    );

    let (mut b, logs_b) = env.worker(&["--timeout", "2", "--sleep", "0.2", "--max-jobs", "1"]);
    let again = wait_for(&logs_b, started(&uuid));
    assert_eq!(again["attempt"], 2, "delivered again with attempts + 1");
    assert_eq!(wait_exit(&mut b, Duration::from_secs(20)), 0);
    // It ran to completion: it left the queue, never failed, and released its lock.
    empty_everywhere(&env);
    assert_eq!(
        env.json(&["locks", "list", "--format", "json"]),
        serde_json::json!([])
    );
}

#[test]
fn a_killed_workers_job_is_completed_by_another_on_redis() {
    let Some(url) = crate::support::service_url("CONECTA_TEST_REDIS_URL") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let env = Env {
        vars: vec![
            ("QUEUE_CONNECTION".into(), "redis".into()),
            ("REDIS_URL".into(), url),
            ("REDIS_PREFIX".into(), format!("conecta-crash-{tag}:")),
            (
                "DATABASE_URL".into(),
                format!("sqlite:{}", dir.path().join("db.sqlite").display()),
            ),
        ],
        dir,
    };
    crash_and_recover(env);
}

#[test]
fn a_killed_workers_job_is_completed_by_another_on_postgres() {
    let Some(base) = crate::support::service_url("CONECTA_TEST_POSTGRES_URL") else {
        return;
    };
    let schema = format!("crash_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let status = Command::new("psql")
        .arg(&base)
        .args(["-c", &format!("CREATE SCHEMA {schema}")])
        .output();
    if !status.as_ref().is_ok_and(|s| s.status.success()) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let db = conecta::store::Db::connect(&base, 1).await.unwrap();
            if let conecta::store::Db::Postgres(p) = &db {
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(p)
                    .await
                    .unwrap();
            }
        });
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let env = Env {
        vars: vec![
            ("QUEUE_CONNECTION".into(), "database".into()),
            ("DATABASE_URL".into(), url),
        ],
        dir: tempfile::tempdir().unwrap(),
    };
    env.run(&["db", "migrate"]);
    crash_and_recover(env);
}

fn sqlite_env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    Env { vars: vec![], dir }
}

#[test]
fn sigterm_finishes_the_job_in_hand_then_exits_0() {
    let env = sqlite_env();
    let uuid = env.run(&[
        "dispatch",
        "diagnostics:sleep",
        "--payload",
        r#"{"ms": 1000}"#,
    ]);
    let (mut w, logs) = env.worker(&["--sleep", "0.1", "--timeout", "2"]);
    wait_for(&logs, started(uuid.trim()));
    sigterm(&w);
    assert_eq!(wait_exit(&mut w, Duration::from_secs(15)), 0);
    empty_everywhere(&env);
}

#[test]
fn queue_restart_makes_a_worker_exit_0() {
    let env = sqlite_env();
    assert!(Path::new(env.dir.path()).exists());
    let (mut w, logs) = env.worker(&["--sleep", "0.1", "--timeout", "2"]);
    wait_for(&logs, |v| v["message"] == "worker started");
    env.run(&["queue", "restart"]);
    assert_eq!(wait_exit(&mut w, Duration::from_secs(10)), 0);
}
