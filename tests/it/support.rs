//! Test support: a fresh, migrated store and queue per test on each backend, reading service
//! URLs from the environment. Without a URL a test skips loudly; with `CI=true` a missing
//! service is a failure, never a skip.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use conecta::clock::ManualClock;
use conecta::queue::database::DatabaseQueue;
use conecta::queue::memory::MemoryQueue;
use conecta::queue::redis::RedisQueue;
use conecta::queue::worker::{self, WorkerOptions};
use conecta::queue::{JobContext, JobError, Queue, Registry, Runtime};
use conecta::schedule::{Schedule, scheduler};
use conecta::stop::{StopHandle, StopReason};
use conecta::store::Db;
use serde::Deserialize;

pub const RETRY_AFTER: u64 = 90;

/// Where a test's jobs went: handlers append here.
#[derive(Clone, Default)]
pub struct Recorder {
    pub seen: Arc<Mutex<Vec<u64>>>,
    pub flaky_failures_left: Arc<Mutex<u32>>,
}

impl Recorder {
    pub fn seen(&self) -> Vec<u64> {
        self.seen.lock().unwrap().clone()
    }
}

#[derive(Deserialize)]
struct N {
    n: u64,
}

pub struct Harness {
    pub name: &'static str,
    pub rt: Runtime,
    pub clock: ManualClock,
    pub db: Db,
    pub recorder: Recorder,
    _dir: tempfile::TempDir,
    cleanup: Option<(String, String)>,
}

pub fn start() -> DateTime<Utc> {
    "2026-11-27T10:00:00Z".parse().unwrap()
}

/// The service URL in `var`, or `None` (a counted skip) outside CI.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            skip(&format!("{var} not set"));
            None
        }
    }
}

/// True under CI, where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips the running test for `reason`, or fails it under CI. A skip is written at once and
/// counted; the run's last line says how many tests skipped and why.
///
/// The test harness captures what tests print with `print!`/`eprint!`; these lines are
/// written to the standard error stream directly, so they are shown, and the summary is
/// written when the process exits (after the harness's own summary).
pub fn skip(reason: &str) {
    if in_ci() {
        panic!("{reason}, and CI=true: a missing service or tool is a failure in CI");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    say(&format!("SKIPPED {test}: {reason}\n"));
    *SKIPPED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(reason.to_string())
        .or_default() += 1;
    REPORT.call_once(|| {
        // SAFETY: `atexit` is the C library's; `report_skips` is a plain `extern "C" fn`
        // that neither unwinds nor needs anything torn down before it.
        unsafe {
            atexit(report_skips);
        }
    });
}

static SKIPPED: Mutex<std::collections::BTreeMap<String, usize>> =
    Mutex::new(std::collections::BTreeMap::new());
static REPORT: std::sync::Once = std::sync::Once::new();

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

extern "C" fn report_skips() {
    let skipped = SKIPPED.lock().unwrap_or_else(|p| p.into_inner());
    let total: usize = skipped.values().sum();
    let why: Vec<String> = skipped
        .iter()
        .map(|(reason, n)| format!("{n} × {reason}"))
        .collect();
    say(&format!(
        "\n{total} test{} skipped, not run: {} (export the service URLs as in the README to run them)\n",
        if total == 1 { "" } else { "s" },
        why.join(", ")
    ));
}

/// Writes `text` to the standard error stream past the harness's capture.
fn say(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// Waits for `cond` up to `limit`, polling every 50 ms; panics with `what` when it never
/// holds. Tests wait for a condition this way instead of sleeping a fixed time.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {limit:?} waiting for: {what}");
}

/// Tests that load the whole machine (a browser, five supervised processes) and tests that
/// run a clock thousands of times faster than real time (where a run delayed by a loaded CPU
/// overlaps the next one) take this lock, so the first never starve the second. It is held
/// for the test's length; other tests run beside them as usual.
pub fn alone() -> std::sync::MutexGuard<'static, ()> {
    static ALONE: Mutex<()> = Mutex::new(());
    ALONE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Variables of the test's own environment that would change what a `conecta` process
/// reads; [`conecta_in`] removes them, so a test's process sees only what the test sets.
pub const CONECTA_ENV: &[&str] = &[
    "QUEUE_CONNECTION",
    "DATABASE_URL",
    "DB_CONNECTION",
    "REDIS_URL",
    "CONECTA_NOW",
    "CONECTA_SPEED",
    "CONECTA_SCHEDULE",
    "CONECTA_HTTP_ADDR",
    "CONECTA_API_TOKEN",
    "CONECTA_UI_PASSWORD",
    "QUEUE_RETRY_AFTER",
    "RUST_LOG",
];

/// The `conecta` binary, run in `dir` with a clean environment (see [`CONECTA_ENV`]).
pub fn conecta_in(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_conecta"));
    cmd.current_dir(dir);
    for var in CONECTA_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `conecta ARGS` in `dir` and returns its stdout; fails the test, with its stderr, when
/// it does not exit 0.
pub fn conecta_ok(dir: &std::path::Path, args: &[&str]) -> String {
    let out = conecta_in(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `cmd` to its end, killing it and failing the test when it takes longer than `limit`.
pub fn output_within(cmd: &mut std::process::Command, limit: Duration) -> std::process::Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} still ran after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The HTTP settings of a test server: every secret off but those the test sets after.
pub fn http_config(addr: std::net::SocketAddr) -> conecta::config::HttpConfig {
    conecta::config::HttpConfig {
        addr,
        app_key: None,
        webhook_secret: None,
        webhook_tolerance: 300,
        api_token: None,
        ui_password: None,
        app_url: "http://localhost".into(),
    }
}

/// Serves `state` on a port of its own; its base URL and the handle that stops it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: conecta::http::AppState,
) -> (String, StopHandle) {
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = StopHandle::default();
    tokio::spawn(conecta::http::serve(
        listener,
        Arc::new(state),
        stop.clone(),
    ));
    (base, stop)
}

/// The body of `GET {base}{path}`.
pub async fn get_text(client: &reqwest::Client, base: &str, path: &str) -> String {
    client
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn registry(rec: &Recorder) -> Registry {
    let mut r = conecta::tasks::registry();
    let seen = rec.seen.clone();
    r.register("test:record", move |_ctx: JobContext, p: N| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(p.n);
            Ok(())
        }
    });
    let seen = rec.seen.clone();
    let left = rec.flaky_failures_left.clone();
    r.register("test:flaky", move |_ctx: JobContext, p: N| {
        let seen = seen.clone();
        let left = left.clone();
        async move {
            let mut l = left.lock().unwrap();
            if *l > 0 {
                *l -= 1;
                return Err(JobError::Retry(format!(
                    "flaky job {} failed on purpose",
                    p.n
                )));
            }
            seen.lock().unwrap().push(p.n);
            Ok(())
        }
    });
    r.register("test:panic", |_ctx: JobContext, p: N| async move {
        if p.n < u64::MAX {
            panic!("test:panic was asked to panic");
        }
        Ok(())
    });
    r.register("test:fail", |_ctx: JobContext, p: N| async move {
        Err(JobError::Retry(format!("job {} always fails", p.n)))
    });
    r
}

async fn sqlite_db(dir: &tempfile::TempDir) -> Db {
    let url = format!("sqlite:{}", dir.path().join("t.sqlite").display());
    let db = Db::connect(&url, 8).await.expect("sqlite");
    db.migrate().await.expect("migrate sqlite");
    db
}

/// A fresh harness on `backend`: memory, sqlite, postgres, mysql or redis.
pub async fn harness(backend: &'static str) -> Option<Harness> {
    harness_from(backend, start()).await
}

/// A fresh harness whose clock stands at `now`.
pub async fn harness_from(backend: &'static str, now: DateTime<Utc>) -> Option<Harness> {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(now);
    let recorder = Recorder::default();
    let retry_after = Duration::from_secs(RETRY_AFTER);
    let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let mut cleanup = None;
    let (db, queue): (Db, Arc<dyn Queue>) = match backend {
        "memory" => {
            let db = sqlite_db(&dir).await;
            (db, Arc::new(MemoryQueue::new(retry_after)))
        }
        "sqlite" => {
            let db = sqlite_db(&dir).await;
            (db.clone(), Arc::new(DatabaseQueue::new(db, retry_after)))
        }
        "postgres" => {
            let base = service_url("CONECTA_TEST_POSTGRES_URL")?;
            let admin = Db::connect(&base, 1).await.expect("postgres reachable");
            let schema = format!("t_{tag}");
            if let Db::Postgres(p) = &admin {
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(p)
                    .await
                    .unwrap();
            }
            admin.close().await;
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
            let db = Db::connect(&url, 16).await.expect("postgres");
            db.migrate().await.expect("migrate postgres");
            cleanup = Some((base, format!("DROP SCHEMA {schema} CASCADE")));
            (db.clone(), Arc::new(DatabaseQueue::new(db, retry_after)))
        }
        "mysql" => {
            let base = service_url("CONECTA_TEST_MYSQL_URL")?;
            let admin = Db::connect(&base, 1).await.expect("mysql reachable");
            let name = format!("t_{tag}");
            if let Db::MySql(p) = &admin {
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(p)
                    .await
                    .unwrap();
            }
            admin.close().await;
            let root = base.rsplit_once('/').map(|(r, _)| r).unwrap_or(&base);
            let db = Db::connect(&format!("{root}/{name}"), 16)
                .await
                .expect("mysql");
            db.migrate().await.expect("migrate mysql");
            cleanup = Some((base, format!("DROP DATABASE {name}")));
            (db.clone(), Arc::new(DatabaseQueue::new(db, retry_after)))
        }
        "redis" => {
            let url = service_url("CONECTA_TEST_REDIS_URL")?;
            let db = sqlite_db(&dir).await;
            let q = RedisQueue::connect(&url, &format!("conecta-test:{tag}:"), retry_after)
                .await
                .expect("redis reachable");
            (db, Arc::new(q))
        }
        other => panic!("unknown backend {other}"),
    };
    let rt = Runtime::new(
        queue,
        db.clone(),
        Arc::new(registry(&recorder)),
        Arc::new(clock.clone()),
    );
    Some(Harness {
        name: backend,
        rt,
        clock,
        db,
        recorder,
        _dir: dir,
        cleanup,
    })
}

impl Harness {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now_utc()
    }

    /// Jobs ready to run, over every queue.
    pub async fn pending(&self) -> u64 {
        self.rt
            .queue
            .depths(self.now())
            .await
            .unwrap()
            .iter()
            .map(|d| d.pending)
            .sum()
    }

    /// Drops what the test created on shared servers.
    pub async fn finish(self) {
        let _ = self.rt.queue.purge().await;
        self.db.close().await;
        if let Some((base, sql)) = self.cleanup
            && let Ok(admin) = Db::connect(&base, 1).await
        {
            match &admin {
                Db::Postgres(p) => {
                    let _ = sqlx::query(&sql).execute(p).await;
                }
                Db::MySql(p) => {
                    let _ = sqlx::query(&sql).execute(p).await;
                }
                Db::Sqlite(_) => {}
            }
            admin.close().await;
        }
    }
}

pub trait NowUtc {
    fn now_utc(&self) -> DateTime<Utc>;
}

impl NowUtc for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        use conecta::clock::Clock;
        self.now()
    }
}

/// Runs the test body `$name(h: Harness)` once per database (SQLite, PostgreSQL, MariaDB),
/// as a module of three tests: the one suite every store behaviour is checked with.
#[macro_export]
macro_rules! on_databases {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                if let Some(h) = $crate::support::harness("sqlite").await {
                    super::$name(h).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(h) = $crate::support::harness("postgres").await {
                    super::$name(h).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn mysql() {
                if let Some(h) = $crate::support::harness("mysql").await {
                    super::$name(h).await
                }
            }
        }
    };
}

/// Drives the real loop from the clock's instant up to `until`, a minute at a time. Time moves
/// only once the loop sleeps on an occurrence after the clock and every run it started has
/// ended, so the runs are exact whatever the machine's speed. With `work`, the real worker
/// loop drains every ready job (queues `high,default`) before time moves on.
pub async fn live(h: &Harness, schedule: &Arc<Schedule>, until: DateTime<Utc>, work: bool) {
    let now0 = h.now();
    let (tx, mut rx) = tokio::sync::watch::channel(scheduler::Progress {
        next_due: now0 - TimeDelta::seconds(1),
        in_flight: 0,
    });
    let stop = StopHandle::default();
    let looping = tokio::spawn(scheduler::run(
        schedule.clone(),
        h.rt.clone(),
        stop.clone(),
        Some(tx),
    ));
    let mut now = now0;
    loop {
        rx.wait_for(|p| p.next_due > now && p.in_flight == 0)
            .await
            .unwrap();
        if work && h.pending().await > 0 {
            drain(h).await;
        }
        if now >= until {
            break;
        }
        now += TimeDelta::minutes(1);
        h.clock.set(now);
    }
    stop.stop(StopReason::Signal);
    looping.await.unwrap().unwrap();
}

/// Drains every ready job on `high,default` with the real worker loop, then returns.
pub async fn drain(h: &Harness) {
    drain_with(&h.rt).await
}

/// [`drain`] with runtime `rt` (a harness's, with other settings).
pub async fn drain_with(rt: &Runtime) {
    let opts = WorkerOptions {
        queues: vec!["high".into(), "default".into()],
        stop_when_empty: true,
        concurrency: 4,
        ..WorkerOptions::default()
    };
    worker::run(rt.clone(), opts, StopHandle::default())
        .await
        .unwrap();
}
