//! Dependencies going away: a Redis and a PostgreSQL of the test's own are killed or stopped
//! under real conecta processes, which must wait, carry on and lose nothing. Also the bounds
//! on what users type, jitter that delays only its own entry, reload from zero entries, and
//! an abandoned daily run handed to catch-up.
//!
//! The Redis and PostgreSQL servers here are private to each test (their own port and data
//! directory), so stopping them never disturbs the shared services other tests use. They need
//! `redis-server`, `initdb` and `pg_ctl` on the PATH; without them a test skips loudly, and
//! with `CI=true` a missing tool fails it.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

use crate::support::wait_until;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        crate::support::skip(&format!("{tool} not installed"));
    }
    found
}

/// A Redis of the test's own, persisting every write (`appendonly yes`), killed with SIGKILL.
struct OwnRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnRedis {
    fn new(dir: &Path) -> Self {
        Self {
            port: free_port(),
            dir: dir.to_path_buf(),
            child: None,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn start(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--appendonly", "yes", "--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let port = self.port.to_string();
        wait_until("Redis answers PING", Duration::from_secs(20), || {
            Command::new("redis-cli")
                .args(["-p", &port, "ping"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
        });
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A PostgreSQL cluster of the test's own (`initdb` + `pg_ctl`), run as the `postgres` user
/// when the tests run as root (PostgreSQL refuses to run as root).
struct OwnPostgres {
    port: u16,
    data: PathBuf,
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn pg_tool(tool: &str) -> Command {
    if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", tool]);
        c
    } else {
        Command::new(tool)
    }
}

impl OwnPostgres {
    fn init(dir: &Path) -> Self {
        let data = dir.join("pg");
        std::fs::create_dir_all(&data).unwrap();
        if as_root() {
            Command::new("chmod").arg("755").arg(dir).status().unwrap();
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&data)
                .status()
                .unwrap();
        }
        let out = pg_tool("initdb")
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = Self {
            port: free_port(),
            data,
        };
        pg.start();
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", "postgres", "-c", "CREATE DATABASE conecta"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/conecta", self.port)
    }

    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data.display()
        );
        let out = pg_tool("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&self.data)
            .args(["-o", &opts, "-l"])
            .arg(self.data.join("server.log"))
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop(&self) {
        let out = pg_tool("pg_ctl")
            .args(["-w", "-m", "fast", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = pg_tool("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output();
    }
}

/// The conecta binary in `dir`, with nothing inherited that could point it elsewhere.
fn conecta(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut c = Command::cargo_bin("conecta").unwrap();
    c.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("QUEUE_CONNECTION")
        .env_remove("REDIS_URL")
        .env_remove("CONECTA_NOW")
        .env_remove("CONECTA_SPEED")
        // `start` serves HTTP too: on a port of its own, so tests in parallel do not collide.
        .env("CONECTA_HTTP_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// A running conecta daemon whose stderr lines are collected in the background.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn pump(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
    }

    /// Waits for a log line containing `text`.
    fn expect_log(&mut self, text: &str, limit: Duration) {
        let start = Instant::now();
        loop {
            self.pump();
            if self.seen.iter().any(|l| l.contains(text)) {
                return;
            }
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "exited before logging {text:?}:\n{}",
                self.seen.join("\n")
            );
            assert!(
                start.elapsed() < limit,
                "no {text:?} within {limit:?}:\n{}",
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn terminate(&mut self) -> i32 {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.wait(Duration::from_secs(60))
    }

    fn wait(&mut self, limit: Duration) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                self.pump();
                return s.code().unwrap_or(-1);
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                self.pump();
                panic!("did not exit within {limit:?}:\n{}", self.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&mut self) -> String {
        self.pump();
        self.seen.join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// `conecta --schedule s.toml --now NOW --speed 60 COMMAND` in `dir`: an hour a minute.
fn simulated(dir: &Path, env: &[(&str, &str)], now: &str, command: &str) -> Daemon {
    let mut c = conecta(dir, env);
    c.args([
        "--schedule",
        "s.toml",
        "--now",
        now,
        "--speed",
        "60",
        command,
    ]);
    Daemon::spawn(c)
}

/// How many jobs a stopped worker says it processed, and its log.
fn processed(worker: &mut Daemon) -> (u64, String) {
    let log = worker.log();
    let n = log
        .lines()
        .find(|l| l.contains("worker stopped"))
        .and_then(|l| l.split("processed=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no processed count in:\n{log}"));
    (n, log)
}

/// The JSON a successful `conecta ARGS` prints.
fn json(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Value {
    let mut c = conecta(dir, env);
    c.args(args);
    json_of(c)
}

fn json_of(mut cmd: Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Enqueues `n` jobs through the library, in chunks, on the Redis at `url`.
fn enqueue(url: &str, prefix: &str, n: usize, job: &str, data: Value) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let q = conecta::queue::redis::RedisQueue::connect(url, prefix, Duration::from_secs(90))
            .await
            .unwrap();
        use conecta::queue::Queue;
        let now = chrono::Utc::now();
        for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
            let jobs = chunk
                .iter()
                .map(|_| conecta::queue::NewJob::new(job, data.clone()))
                .collect();
            q.enqueue_bulk(jobs, now).await.unwrap();
        }
    });
}

/// Redis killed for 15 s while a worker drains 5,000 jobs: the worker survives, every job
/// runs, none fails for the outage, none is lost.
#[test]
fn a_worker_survives_redis_killed_for_15_seconds_and_loses_no_job() {
    if !have("redis-server") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut redis = OwnRedis::new(dir.path());
    redis.start();
    let url = redis.url();
    enqueue(
        &url,
        "conecta:",
        5_000,
        "diagnostics:sleep",
        serde_json::json!({ "ms": 8 }),
    );
    let env = [
        ("QUEUE_CONNECTION", "redis"),
        ("REDIS_URL", url.as_str()),
        ("QUEUE_RETRY_AFTER", "40"),
    ];
    let mut worker = Daemon::spawn({
        let mut c = conecta(dir.path(), &env);
        c.args([
            "worker",
            "--concurrency",
            "2",
            "--sleep",
            "1",
            "--timeout",
            "10",
        ]);
        c.arg("--stop-when-empty");
        c
    });
    worker.expect_log("worker started", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    redis.kill();
    worker.expect_log("Redis is unavailable", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(15));
    assert!(
        worker.alive(),
        "the worker died during the outage:\n{}",
        worker.log()
    );
    // `queue status` says Redis is unreachable (exit 1) and what the worker waits for.
    let out = conecta(dir.path(), &env)
        .args(["queue", "status", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        status["workers"][0]["status"]
            .as_str()
            .unwrap()
            .starts_with("waiting for Redis since"),
        "{status}"
    );
    assert!(status["queue_error"].is_string(), "{status}");
    redis.start();
    worker.expect_log("Redis is back after", Duration::from_secs(30));
    assert_eq!(worker.wait(Duration::from_secs(120)), 0, "{}", worker.log());
    let (processed, log) = processed(&mut worker);
    assert!(processed >= 5_000, "only {processed} jobs ran:\n{log}");
    assert_eq!(redis.cli(&["LLEN", "conecta:queues:{default}"]), "0");
    assert_eq!(
        redis.cli(&["ZCARD", "conecta:queues:{default}:reserved"]),
        "0"
    );
    assert_eq!(
        redis.cli(&["ZCARD", "conecta:queues:{default}:delayed"]),
        "0"
    );
    let failed = json(dir.path(), &env, &["queue", "failed", "--format", "json"]);
    assert_eq!(failed, serde_json::json!([]), "jobs failed for the outage");
}

/// Occurrences of every entry between `from` and `to` (exclusive) in the history, by due.
fn rows_by_due(history: &Value, entry: &str) -> std::collections::BTreeMap<String, Vec<Value>> {
    let mut by: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for r in history.as_array().unwrap() {
        if r["entry"] == entry {
            by.entry(r["due"].as_str().unwrap().to_string())
                .or_default()
                .push(r.clone());
        }
    }
    by
}

/// PostgreSQL stopped for 60 s under a scheduler at --speed 60 and a database-queue worker:
/// both survive, every occurrence of the window has exactly one row, every job runs.
#[test]
fn scheduler_and_worker_survive_postgres_stopped_for_60_seconds() {
    if !have("initdb") || !have("pg_ctl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pg = OwnPostgres::init(dir.path());
    let url = pg.url();
    std::fs::write(
        dir.path().join("s.toml"),
        "[[task]]\nname = \"tick\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\n",
    )
    .unwrap();
    let env = [("DATABASE_URL", url.as_str()), ("QUEUE_RETRY_AFTER", "120")];
    let ok = conecta(dir.path(), &env)
        .args(["db", "migrate"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for _ in 0..300 {
        let ok = conecta(dir.path(), &env)
            .args([
                "dispatch",
                "diagnostics:sleep",
                "--payload",
                "{\"ms\": 100}",
            ])
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }
    let mut scheduler = simulated(dir.path(), &env, "2026-11-27T10:00:00Z", "scheduler");
    let mut worker = Daemon::spawn({
        let mut c = conecta(dir.path(), &env);
        c.args([
            "worker",
            "--sleep",
            "1",
            "--timeout",
            "10",
            "--stop-when-empty",
        ]);
        c
    });
    scheduler.expect_log("run ended", Duration::from_secs(30));
    worker.expect_log("worker started", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(4));
    pg.stop();
    scheduler.expect_log("the database is unavailable", Duration::from_secs(30));
    worker.expect_log("the database is unavailable", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(60));
    assert!(scheduler.alive(), "scheduler died:\n{}", scheduler.log());
    assert!(worker.alive(), "worker died:\n{}", worker.log());
    pg.start();
    scheduler.expect_log("the database is back after", Duration::from_secs(30));
    // Let it settle the backlog and fire a few more occurrences, then stop it.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(scheduler.terminate(), 0, "{}", scheduler.log());
    assert_eq!(worker.wait(Duration::from_secs(120)), 0, "{}", worker.log());

    let history = json(
        dir.path(),
        &env,
        &[
            "schedule", "history", "--limit", "10000", "--format", "json",
        ],
    );
    let rows = rows_by_due(&history, "tick");
    let dues: Vec<chrono::DateTime<chrono::Utc>> =
        rows.keys().map(|d| d.parse().unwrap()).collect();
    // Every minute from the first to the last recorded has exactly one row.
    let (first, last) = (dues[0], *dues.last().unwrap());
    let minutes = (last - first).num_minutes() + 1;
    assert!(minutes >= 60, "the window covers only {minutes} minutes");
    assert_eq!(
        rows.len() as i64,
        minutes,
        "an occurrence has no row: {rows:?}"
    );
    let mut missed = 0;
    for (due, rs) in &rows {
        assert_eq!(rs.len(), 1, "{due} has {} rows: {rs:?}", rs.len());
        let outcome = rs[0]["outcome"].as_str().unwrap();
        assert!(
            outcome == "succeeded" || outcome == "missed",
            "{due}: {outcome} ({})",
            rs[0]
        );
        missed += usize::from(outcome == "missed");
    }
    assert!(
        missed >= 30,
        "the outage should leave missed rows, got {missed}"
    );

    let status = json(dir.path(), &env, &["queue", "status", "--format", "json"]);
    let text = status.to_string();
    assert!(
        !text.contains("\"pending\":1") && !text.contains("\"reserved\":1"),
        "{text}"
    );
    let failed = json(dir.path(), &env, &["queue", "failed", "--format", "json"]);
    assert_eq!(failed, serde_json::json!([]));
    let (processed, log) = processed(&mut worker);
    assert!(processed >= 300, "only {processed} jobs ran:\n{log}");
}

/// `start` keeps running through a Redis outage and a PostgreSQL outage, and a worker and a
/// scheduler started while their dependency is down begin work when it comes up.
#[test]
fn start_survives_both_and_daemons_started_during_an_outage_wait() {
    if !have("redis-server") || !have("initdb") || !have("pg_ctl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pg = OwnPostgres::init(dir.path());
    let mut redis = OwnRedis::new(dir.path());
    let (db_url, redis_url) = (pg.url(), redis.url());
    std::fs::write(
        dir.path().join("s.toml"),
        "[[task]]\nname = \"tick\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\nmode = \"queue\"\n",
    )
    .unwrap();
    let env = [
        ("DATABASE_URL", db_url.as_str()),
        ("QUEUE_CONNECTION", "redis"),
        ("REDIS_URL", redis_url.as_str()),
    ];
    let ok = conecta(dir.path(), &env)
        .args(["db", "migrate"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // Redis is not up yet: the worker waits instead of exiting.
    let mut worker = Daemon::spawn({
        let mut c = conecta(dir.path(), &env);
        c.args(["worker", "--sleep", "1"]);
        c
    });
    worker.expect_log("Redis is unavailable", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(3));
    assert!(worker.alive(), "{}", worker.log());
    redis.start();
    worker.expect_log("worker started", Duration::from_secs(30));
    let _ = worker.terminate();

    // The database is down: the scheduler waits, then fires once it is up.
    pg.stop();
    let mut scheduler = simulated(dir.path(), &env, "2026-11-27T10:00:00Z", "scheduler");
    scheduler.expect_log("the database is unavailable", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(3));
    assert!(scheduler.alive(), "{}", scheduler.log());
    pg.start();
    scheduler.expect_log("run ended", Duration::from_secs(60));
    assert_eq!(scheduler.terminate(), 0, "{}", scheduler.log());

    // `start` through a Redis outage, then a database outage.
    let mut start = simulated(dir.path(), &env, "2026-11-27T12:00:00Z", "start");
    start.expect_log("run ended", Duration::from_secs(60));
    redis.kill();
    start.expect_log("Redis is unavailable", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(5));
    assert!(start.alive(), "{}", start.log());
    redis.start();
    start.expect_log("Redis is back after", Duration::from_secs(30));
    pg.stop();
    start.expect_log("the database is unavailable", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(10));
    assert!(start.alive(), "{}", start.log());
    pg.start();
    start.expect_log("the database is back after", Duration::from_secs(30));
    let before = start.log().matches("run ended").count();
    wait_until("a run after both outages", Duration::from_secs(30), || {
        start.log().matches("run ended").count() > before
    });
    assert_eq!(start.terminate(), 0, "{}", start.log());
}

/// A Redis key of the wrong type is a logged error the worker waits out, not an exit.
#[test]
fn a_redis_key_of_the_wrong_type_does_not_stop_the_worker() {
    if !have("redis-server") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut redis = OwnRedis::new(dir.path());
    redis.start();
    let url = redis.url();
    redis.cli(&["SET", "conecta:queues:{default}", "not a list"]);
    let env = [("QUEUE_CONNECTION", "redis"), ("REDIS_URL", url.as_str())];
    let mut worker = Daemon::spawn({
        let mut c = conecta(dir.path(), &env);
        c.args(["worker", "--sleep", "1", "--max-jobs", "3"]);
        c
    });
    worker.expect_log("WRONGTYPE", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    assert!(worker.alive(), "{}", worker.log());
    redis.cli(&["DEL", "conecta:queues:{default}"]);
    enqueue(
        &url,
        "conecta:",
        3,
        "diagnostics:noop",
        serde_json::json!({}),
    );
    assert_eq!(worker.wait(Duration::from_secs(60)), 0, "{}", worker.log());
    assert!(worker.log().contains("processed=3"), "{}", worker.log());
}

/// A daily inline run killed with its process is recorded abandoned as soon as a scheduler
/// runs again (its lease long expired), and catch_up = "latest" runs the occurrence again.
#[test]
fn an_abandoned_daily_run_is_reaped_and_run_again_per_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "[[task]]\nname = \"nightly\"\ntask = \"diagnostics:sleep\"\nargs = { ms = 3000 }\ncron = \"0 3 * * *\"\n",
    )
    .unwrap();
    let env = [("CONECTA_LEASE", "2")];
    let scheduler = |now: &str| {
        let mut c = conecta(dir.path(), &env);
        c.args(["--schedule", "s.toml", "--now", now, "scheduler"]);
        Daemon::spawn(c)
    };
    let mut a = scheduler("2026-11-27T02:59:59Z");
    a.expect_log("run started", Duration::from_secs(30));
    a.child.kill().unwrap();
    a.child.wait().unwrap();

    let mut b = scheduler("2026-11-27T03:00:30Z");
    b.expect_log(
        "abandoned: the process running it stopped",
        Duration::from_secs(20),
    );
    b.expect_log(
        "running the abandoned occurrence again",
        Duration::from_secs(10),
    );
    b.expect_log("run ended", Duration::from_secs(30));
    assert_eq!(b.terminate(), 0);
    let history = json(
        dir.path(),
        &env,
        &["schedule", "history", "--format", "json"],
    );
    let runs = rows_by_due(&history, "nightly");
    let rs = &runs["2026-11-27T03:00:00Z"];
    let attempt = |n: i64| rs.iter().find(|r| r["attempt"] == n).cloned().unwrap();
    assert_eq!(attempt(1)["outcome"], "failed");
    assert!(
        attempt(1)["error"]
            .as_str()
            .unwrap()
            .starts_with("abandoned")
    );
    assert_eq!(attempt(2)["outcome"], "succeeded", "{history}");
}

/// A daily entry with a five-minute jitter does not hold an every-minute entry: each minute
/// runs on time and none is skipped.
#[test]
fn jitter_on_one_entry_does_not_delay_another() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "[[task]]\nname = \"daily\"\ntask = \"diagnostics:noop\"\ncron = \"0 0 * * *\"\njitter = \"5m\"\n\n\
         [[task]]\nname = \"minutely\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\n",
    )
    .unwrap();
    let mut s = simulated(dir.path(), &[], "2026-11-27T23:59:30Z", "scheduler");
    // Six simulated minutes past midnight.
    std::thread::sleep(Duration::from_secs(7));
    s.expect_log("run ended", Duration::from_secs(5));
    assert_eq!(s.terminate(), 0);
    let history = json(
        dir.path(),
        &[],
        &["schedule", "history", "--format", "json"],
    );
    let minutely = rows_by_due(&history, "minutely");
    for m in 0..5 {
        let due = format!("2026-11-28T00:0{m}:00Z");
        let rs = minutely
            .get(&due)
            .unwrap_or_else(|| panic!("no run for {due}: {history}"));
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0]["outcome"], "succeeded", "{}", rs[0]);
        let started: chrono::DateTime<chrono::Utc> =
            rs[0]["started_at"].as_str().unwrap().parse().unwrap();
        let due: chrono::DateTime<chrono::Utc> = due.parse().unwrap();
        assert!(
            started - due < chrono::TimeDelta::seconds(15),
            "{due} started late, at {started}"
        );
    }
    let daily = rows_by_due(&history, "daily");
    if let Some(rs) = daily.get("2026-11-28T00:00:00Z") {
        assert_eq!(rs[0]["outcome"], "succeeded");
    }
}

/// A scheduler whose schedule has no enabled entry still reloads on SIGHUP.
#[test]
fn a_scheduler_with_zero_entries_reloads_into_some() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "[[task]]\nname = \"tick\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\nenabled = false\n",
    )
    .unwrap();
    let check = conecta(dir.path(), &[])
        .args(["schedule", "check", "s.toml"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&check.stderr).contains("no enabled entry"),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut s = simulated(dir.path(), &[], "2026-11-27T10:00:00Z", "scheduler");
    s.expect_log("no enabled entry is ever due", Duration::from_secs(30));
    std::fs::write(
        &file,
        "[[task]]\nname = \"tick\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\n",
    )
    .unwrap();
    Command::new("kill")
        .args(["-HUP", &s.child.id().to_string()])
        .status()
        .unwrap();
    s.expect_log("run ended", Duration::from_secs(20));
    assert_eq!(s.terminate(), 0);
}

fn usage_error(dir: &Path, args: &[&str], files: &[(&str, &str)], expect: &str) {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let out = conecta(dir, &[]).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(expect),
        "{args:?}: expected {expect:?} in:\n{err}"
    );
}

/// Every number a user types is bounded, with the limit in the message; nothing panics.
#[test]
fn numbers_users_type_are_bounded_with_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let every = "[[task]]\nname = \"t\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\n";
    std::fs::write(d.join("ok.toml"), every).unwrap();
    for speed in ["1e12", "1e300", "0", "0.5", "NaN"] {
        usage_error(
            d,
            &[
                "--schedule",
                "ok.toml",
                "--now",
                "2026-11-27T10:00:00Z",
                "--speed",
                speed,
                "schedule",
                "list",
            ],
            &[],
            "from 1 to 100000",
        );
    }
    usage_error(
        d,
        &["schedule", "check", "j.toml"],
        &[(
            "j.toml",
            "[[task]]\nname = \"t\"\ntask = \"diagnostics:noop\"\ncron = \"0 0 * * *\"\njitter = \"100000000d\"\n",
        )],
        "longer than a year",
    );
    usage_error(
        d,
        &["schedule", "check", "p.toml"],
        &[(
            "p.toml",
            "[[task]]\nname = \"t\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\njitter = \"5m\"\n",
        )],
        "must be shorter than the entry's period (1m)",
    );
    usage_error(
        d,
        &["dispatch", "diagnostics:noop", "--delay", "99999999999d"],
        &[],
        "longer than a year",
    );
    usage_error(
        d,
        &["dispatch", "diagnostics:noop", "--queue", ""],
        &[],
        "--queue is empty",
    );
    usage_error(
        d,
        &["dispatch", "diagnostics:sleep", "--payload", "{\"msx\": 5}"],
        &[],
        "did you mean \"ms\"?",
    );
    usage_error(
        d,
        &[
            "dispatch",
            "diagnostics:sleep",
            "--payload",
            "{\"ms\": \"soon\"}",
        ],
        &[],
        "expected a whole number",
    );
    usage_error(
        d,
        &["dispatch", "diagnostics:noop", "--timeout", "999999999999"],
        &[],
        "longer than a year",
    );
    usage_error(d, &["worker", "--sleep", "1e300"], &[], "a year");
    usage_error(
        d,
        &["worker", "--concurrency", "100000000"],
        &[],
        "from 1 to 1000",
    );
    // A closed stderr or stdout is not an error, and never a panic (exit 101).
    let bin = assert_cmd::cargo::cargo_bin("conecta");
    let script = format!(
        "cd {d}; {bin} --speed 1e12 --now 2026-11-27T10:00:00Z schedule list 2>&1 >/dev/null | true; echo ${{PIPESTATUS[0]}}; \
         {bin} --schedule ok.toml schedule simulate --from 2026-01-01T00:00:00Z --to 2027-01-01T00:00:00Z | head -c 10 >/dev/null; echo ${{PIPESTATUS[0]}}",
        d = d.display(),
        bin = bin.display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    let codes = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        codes.split_whitespace().collect::<Vec<_>>(),
        ["2", "0"],
        "{codes}"
    );
}

/// `GET` of `path` on `port`, over a plain socket: the status and the body.
fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// `/readyz` answers 503 naming the database while PostgreSQL is stopped and 200 once it is
/// back; `/healthz` stays 200 throughout; SIGTERM stops `serve` with exit 0.
#[test]
fn readyz_follows_the_database_and_serve_stops_cleanly() {
    if !have("initdb") || !have("pg_ctl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pg = OwnPostgres::init(dir.path());
    let url = pg.url();
    let port = free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("CONECTA_HTTP_ADDR", addr.as_str()),
    ];
    let ok = conecta(dir.path(), &env)
        .args(["db", "migrate"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut serve = Daemon::spawn({
        let mut c = conecta(dir.path(), &env);
        c.arg("serve");
        c
    });
    serve.expect_log("HTTP server listening", Duration::from_secs(30));
    serve.expect_log(
        "is disabled: set PAYMENT_WEBHOOK_SECRET",
        Duration::from_secs(5),
    );
    let port: u16 = port.parse().unwrap();
    assert_eq!(http_get(port, "/readyz").0, 200);
    pg.stop();
    wait_until("readyz to turn 503", Duration::from_secs(30), || {
        let (status, body) = http_get(port, "/readyz");
        status == 503 && body.contains("\"database\"")
    });
    assert_eq!(http_get(port, "/healthz").0, 200);
    pg.start();
    wait_until("readyz to turn 200 again", Duration::from_secs(60), || {
        http_get(port, "/readyz").0 == 200
    });
    assert_eq!(serve.terminate(), 0, "{}", serve.log());
}
