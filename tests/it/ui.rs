//! The dashboard (`/ui`): in Debian's headless Chromium, driven through chromedriver, a user
//! logs in, sees a failed job with its exception, clicks retry, sees it gone from the failed
//! list, and the job runs; screenshots of each page land in
//! `target/tmp/ui-screenshots/`. Without a browser: what the login, the session cookie and
//! the CSRF tokens refuse, and the schedule page following a SIGHUP reload of `serve`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::TimeDelta;
use conecta::config::HttpConfig;
use conecta::http::AppState;
use conecta::stop::StopHandle;
use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

use crate::support::{
    conecta_in as conecta, conecta_ok as ok, free_port, have, http_config, skip, wait_until,
};

const PASSWORD: &str = "correct horse battery staple";

/// Kills its process when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Types `password` into the login form, submits it, and returns the element `expect` of the
/// page that answers. (A click that submits a form returns before the next page is in.)
async fn log_in_with(
    browser: &fantoccini::Client,
    password: &str,
    expect: &str,
) -> fantoccini::elements::Element {
    let field = browser.find(Locator::Id("password")).await.unwrap();
    field.send_keys(password).await.unwrap();
    let submit = browser.find(Locator::Id("login-submit")).await.unwrap();
    submit.click().await.unwrap();
    browser
        .wait()
        .for_element(Locator::Id(expect))
        .await
        .unwrap()
}

// The guard of `support::alone` is held for the whole test on purpose; nothing in this
// test's runtime takes it.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_a_user_logs_in_and_retries_a_failed_job() {
    let _alone = crate::support::alone();
    for tool in ["chromium", "chromedriver"] {
        if !have(tool) {
            skip(&format!(
                "{tool} not installed (Debian's chromium and chromium-driver; .ci/run installs them)"
            ));
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("schedule.toml"),
        "timezone = \"America/New_York\"\n\n[[task]]\nname = \"nightly\"\ntask = \"diagnostics:noop\"\ncron = \"30 2 * * *\"\n",
    )
    .unwrap();
    // A job that fails for a reason an operator can fix: it needs 1.5 s and the worker allows
    // it one.
    ok(
        d,
        &[
            "dispatch",
            "diagnostics:sleep",
            "--payload",
            r#"{"ms": 1500}"#,
        ],
    );
    ok(
        d,
        &[
            "worker",
            "--stop-when-empty",
            "--sleep",
            "0",
            "--timeout",
            "1",
        ],
    );
    let failed: serde_json::Value =
        serde_json::from_str(&ok(d, &["queue", "failed", "--format", "json"])).unwrap();
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    let id = failed[0]["id"].as_i64().unwrap();

    let (_server, port) = serve_process(d, "schedule.toml");
    let driver_port = free_port();
    let _driver = Killed(
        Command::new("chromedriver")
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("chromedriver listens", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", driver_port)).is_ok()
    });

    let profile = d.join("chromium-profile");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("chromedriver starts a Chromium session");
    let shots = screenshots();
    let shot = |name: &'static str| {
        let browser = browser.clone();
        let path = shots.join(name);
        async move {
            let png = browser.screenshot().await.unwrap();
            std::fs::write(&path, png).unwrap();
            eprintln!("screenshot: {}", path.display());
        }
    };
    let base = format!("http://127.0.0.1:{port}");

    // Not logged in: the dashboard sends the browser to the login page.
    browser.goto(&format!("{base}/ui/failed")).await.unwrap();
    assert!(
        browser
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/ui/login")
    );
    let error = log_in_with(&browser, "not the password", "login-error").await;
    assert_eq!(error.text().await.unwrap(), "Wrong password.");
    shot("01-login-refused.png").await;
    let failed_hour = log_in_with(&browser, PASSWORD, "failed-hour").await;
    assert_eq!(browser.current_url().await.unwrap().path(), "/ui");
    assert_eq!(failed_hour.text().await.unwrap(), "1");
    browser.find(Locator::Id("chart")).await.unwrap();
    shot("02-overview.png").await;

    // The failed job, its exception, and its page with the payload.
    browser.goto(&format!("{base}/ui/failed")).await.unwrap();
    let row = browser
        .find(Locator::Id(&format!("failed-{id}")))
        .await
        .unwrap();
    let text = row.text().await.unwrap();
    assert!(text.contains("diagnostics:sleep"), "{text}");
    assert!(text.contains("timed out after 1s"), "{text}");
    shot("03-failed.png").await;
    browser
        .goto(&format!("{base}/ui/failed/{id}"))
        .await
        .unwrap();
    let payload = browser.find(Locator::Id("payload")).await.unwrap();
    assert!(payload.text().await.unwrap().contains("1500"));
    shot("04-failed-job.png").await;

    // Retry: the job leaves the failed list and is back on its queue.
    browser.goto(&format!("{base}/ui/failed")).await.unwrap();
    browser
        .find(Locator::Id(&format!("retry-{id}")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let notice = browser
        .wait()
        .for_element(Locator::Id("notice"))
        .await
        .unwrap();
    assert_eq!(
        notice.text().await.unwrap(),
        format!("Job {id} is back on its queue.")
    );
    browser.find(Locator::Id("no-failed")).await.unwrap();
    shot("05-retried.png").await;

    // The operator fixed the cause (a longer timeout): the job runs and succeeds.
    let out = conecta(d)
        .args([
            "worker",
            "--stop-when-empty",
            "--sleep",
            "0",
            "--timeout",
            "10",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("processed=1"), "{log}");
    let failed: serde_json::Value =
        serde_json::from_str(&ok(d, &["queue", "failed", "--format", "json"])).unwrap();
    assert_eq!(failed.as_array().unwrap().len(), 0, "{failed}");
    browser.goto(&format!("{base}/ui")).await.unwrap();
    let processed = browser.find(Locator::Id("processed-hour")).await.unwrap();
    assert_eq!(processed.text().await.unwrap(), "1");
    shot("06-overview-after.png").await;

    // The other pages render for a logged-in user.
    for (page, name) in [
        ("schedule", "07-schedule.png"),
        ("batches", "08-batches.png"),
        ("outbox", "09-outbox.png"),
        ("locks", "10-locks.png"),
    ] {
        browser.goto(&format!("{base}/ui/{page}")).await.unwrap();
        let h1 = browser.find(Locator::Css("h1")).await.unwrap();
        assert!(!h1.text().await.unwrap().is_empty());
        shot(name).await;
    }
    browser.goto(&format!("{base}/ui/schedule")).await.unwrap();
    let entries = browser.find(Locator::Id("entries")).await.unwrap();
    let entries = entries.text().await.unwrap();
    assert!(
        entries.contains("nightly") && entries.contains("America/New_York"),
        "{entries}"
    );
    // 02:30 in New York is skipped by the March change and shifted (the default rule).
    assert!(entries.contains("2027-03-14"), "{entries}");
    browser.close().await.unwrap();
}

/// `conecta serve` in `d` with the dashboard password, on a free port, once it listens.
fn serve_process(d: &Path, schedule: &str) -> (Killed, u16) {
    let port = free_port();
    let server = Killed(
        conecta(d)
            .env("CONECTA_UI_PASSWORD", PASSWORD)
            .env("CONECTA_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .args(["--schedule", schedule, "serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("serve listens", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (server, port)
}

/// A server on the harness's database with `password` (and no API token).
async fn serve(h: &crate::support::Harness, password: Option<&str>) -> (String, StopHandle) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = HttpConfig {
        ui_password: password.map(String::from),
        ..http_config(listener.local_addr().unwrap())
    };
    crate::support::serve(listener, AppState::new(h.rt.clone(), http, None)).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn log_in(base: &str, password: &str) -> (u16, Option<String>) {
    let r = client()
        .post(format!("{base}/ui/login"))
        .form(&[("password", password)])
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
    (r.status().as_u16(), cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_refuses_without_password_session_or_csrf_token() {
    let Some(h) = crate::support::harness("sqlite").await else {
        return;
    };
    // No password configured: off, and it says which key to set.
    let (off, stop_off) = serve(&h, None).await;
    let r = client().get(format!("{off}/ui")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.text().await.unwrap().contains("CONECTA_UI_PASSWORD"));
    stop_off.stop(conecta::stop::StopReason::Signal);

    let (base, stop) = serve(&h, Some(PASSWORD)).await;
    let r = client().get(format!("{base}/ui")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "no session: to the login page");
    assert_eq!(r.headers()["location"], "/ui/login");
    assert_eq!(log_in(&base, "wrong").await, (401, None));
    let (status, cookie) = log_in(&base, PASSWORD).await;
    assert_eq!(status, 303);
    let cookie = cookie.expect("a session cookie");
    let page = client()
        .get(format!("{base}/ui/failed"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries a CSRF token")
        .to_string();
    // A post without the token, or with a forged one, is refused.
    for token in ["", "0000", &csrf[..csrf.len() - 1]] {
        let r = client()
            .post(format!("{base}/ui/failed/1/forget"))
            .header("cookie", &cookie)
            .form(&[("csrf", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "token {token:?}");
    }
    // With it the action runs (here: there is no failed job 1 to forget).
    let r = client()
        .post(format!("{base}/ui/failed/1/forget"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("No+failed+job+1")
    );
    let r = client()
        .post(format!("{base}/ui/failed/1/explode"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        404,
        "only retry and forget are actions"
    );
    // A tampered cookie is no session.
    let tampered = cookie.replacen('.', ".0", 1);
    let r = client()
        .get(format!("{base}/ui"))
        .header("cookie", tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    // A session ends after 12 hours on the server's clock.
    h.clock.advance(TimeDelta::hours(12));
    let r = client()
        .get(format!("{base}/ui"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        303,
        "an expired session is sent to log in"
    );
    stop.stop(conecta::stop::StopReason::Signal);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_page_follows_a_sighup_reload_of_serve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let entry = |name: &str| {
        format!("[[task]]\nname = \"{name}\"\ntask = \"diagnostics:noop\"\ncron = \"0 3 * * *\"\n")
    };
    std::fs::write(d.join("s.toml"), entry("alpha")).unwrap();
    ok(d, &["db", "migrate"]);
    let (server, port) = serve_process(d, "s.toml");
    let base = format!("http://127.0.0.1:{port}");
    let (_, cookie) = log_in(&base, PASSWORD).await;
    let mut session = reqwest::header::HeaderMap::new();
    session.insert("cookie", cookie.expect("a session").parse().unwrap());
    let browser = reqwest::Client::builder()
        .default_headers(session)
        .build()
        .unwrap();
    let page = || crate::support::get_text(&browser, &base, "/ui/schedule");
    assert!(page().await.contains("alpha"));
    std::fs::write(d.join("s.toml"), entry("beta")).unwrap();
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut shown = String::new();
    for _ in 0..100 {
        shown = page().await;
        if shown.contains("beta") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        shown.contains("beta") && !shown.contains("alpha"),
        "{shown}"
    );
}
