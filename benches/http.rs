//! The HTTP edge under load, against a real `conecta serve` process.
//!
//! 1. Signed payment webhooks at a fixed 1,000 requests/s for 30 s (open loop: a request is
//!    sent every millisecond whatever the answers do): p50/p99/max latency, and a check that
//!    every event was stored once and enqueued once.
//! 2. The most `GET /healthz` requests/s (64 connections, 5 s), and the same against a
//!    minimal axum hello-world process, as a ratio.
//!
//! `DATABASE_URL` picks the database (default: PostgreSQL's `conecta_bench` on localhost,
//! created if missing is up to you: `createdb -h 127.0.0.1 -U postgres conecta_bench`).
//! Run with `cargo bench --bench http`; `RATE` and `SECONDS` change the webhook load.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conecta::http::webhooks;

const SECRET: &str = "whsec_bench";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--hello-world") {
        return hello_world(args[i + 1].parse().unwrap());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench());
}

/// A minimal axum server answering `ok` on every path: the peer of `/healthz`.
fn hello_world(port: u16) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        axum::serve(listener, app).await.unwrap();
    });
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_up(client: &reqwest::Client, base: &str) {
    for _ in 0..300 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} did not come up");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn bench() {
    let database = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/conecta_bench".into());
    let rate: u64 = std::env::var("RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1000);
    let seconds: u64 = std::env::var("SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let conecta = env!("CARGO_BIN_EXE_conecta");
    let env = |c: &mut Command| {
        c.current_dir(dir.path())
            .env("DATABASE_URL", &database)
            .env("QUEUE_CONNECTION", "database")
            .env("PAYMENT_WEBHOOK_SECRET", SECRET)
            .env("RUST_LOG", "error")
            .env_remove("CONECTA_NOW")
            .env_remove("CONECTA_SPEED");
    };
    let mut migrate = Command::new(conecta);
    env(&mut migrate);
    assert!(migrate.args(["db", "migrate"]).status().unwrap().success());
    let db = conecta::store::Db::connect(&database, 2).await.unwrap();
    for table in ["payment_events", "jobs", "job_locks"] {
        db.query(format!("DELETE FROM {table}"))
            .execute(&db)
            .await
            .unwrap();
    }
    let port = free_port();
    let mut serve = Command::new(conecta);
    env(&mut serve);
    let _server = Server(
        serve
            .env("CONECTA_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .arg("serve")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    wait_up(&client, &base).await;

    // 1. Webhooks at a fixed rate.
    let total = rate * seconds;
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total as usize)));
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for n in 0..total {
        tick.tick().await;
        let body = serde_json::json!({
            "id": format!("evt_bench_{n}"),
            "type": "payment.succeeded",
            "data": {"order_id": n, "amount_cents": 100},
        })
        .to_string();
        let t = chrono::Utc::now().timestamp();
        let header = webhooks::sign(SECRET, t, body.as_bytes());
        let (client, base) = (client.clone(), base.clone());
        let (latencies, failures) = (latencies.clone(), failures.clone());
        tasks.spawn(async move {
            let sent = Instant::now();
            let answer = client
                .post(format!("{base}/webhooks/payments"))
                .header("Conecta-Signature", header)
                .body(body)
                .send()
                .await;
            let took = sent.elapsed();
            match answer {
                Ok(r) if r.status() == 200 => latencies.lock().unwrap().push(took),
                _ => {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_unstable();
    let stored: i64 = db
        .query("SELECT COUNT(*) FROM payment_events WHERE event_id LIKE 'evt_bench_%'")
        .scalar(&db)
        .await
        .unwrap();
    let queued: i64 = db
        .query("SELECT COUNT(*) FROM jobs WHERE queue = 'high'")
        .scalar(&db)
        .await
        .unwrap();
    println!(
        "RESULT workload=webhooks rate={rate} seconds={seconds} sent={total} ok={} failed={} achieved_rps={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} stored={stored} enqueued={queued}",
        lat.len(),
        failures.load(std::sync::atomic::Ordering::Relaxed),
        total as f64 / elapsed,
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );

    // 2. /healthz, conecta and a hello-world, the same load.
    let conecta_rps = max_rps(&client, &base).await;
    let hello_port = free_port();
    let _hello = Server(
        Command::new(std::env::current_exe().unwrap())
            .args(["--hello-world", &hello_port.to_string()])
            .spawn()
            .unwrap(),
    );
    let hello = format!("http://127.0.0.1:{hello_port}");
    wait_up(&client, &hello).await;
    let hello_rps = max_rps(&client, &hello).await;
    println!(
        "RESULT workload=healthz conecta_rps={conecta_rps:.0} hello_world_rps={hello_rps:.0} ratio={:.2}",
        conecta_rps / hello_rps
    );
}

/// Requests per second of `GET /healthz` over 64 connections for 5 seconds.
async fn max_rps(client: &reqwest::Client, base: &str) -> f64 {
    let until = Instant::now() + Duration::from_secs(5);
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (client, url, count) = (client.clone(), format!("{base}/healthz"), count.clone());
        tasks.spawn(async move {
            while Instant::now() < until {
                if client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
                {
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    count.load(std::sync::atomic::Ordering::Relaxed) as f64 / 5.0
}
