//! The job catalog's bodies, written once and run on SQLite, PostgreSQL and MariaDB: sales
//! exports (CSV and Excel) delivered as signed links through the outbox and the mailer, the
//! PDF month report read back with `pdftotext`, product BlurHash (good, missing and corrupt
//! images), campaign mail (fan-out, one message per recipient, the unsubscribe link, the
//! campaign's counts), AI profiles (offline and against a local chat-completions server that
//! answers slowly, 429, 500 or garbage), and the Laravel names.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use conecta::config::{AiConfig, AiProviderKind};
use conecta::mail::Mailer;
use conecta::queue::{JobContext, JobError, Runtime};
use conecta::settings::Settings;
use conecta::signed_url::Signer;
use conecta::store::demo::{self, SeedOptions};
use conecta::store::{Db, analytics, campaigns, products, tenants};
use conecta::tasks;
use serde_json::{Value, json};

use crate::support::{self, Harness};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

/// `h`'s runtime with storage, mail and links in `dir`, and `ai` writing profiles.
fn runtime(h: &Harness, dir: &Path, ai: AiConfig) -> Runtime {
    let mut rt = h.rt.clone();
    rt.settings = Arc::new(Settings {
        mailer: Mailer::File {
            dir: dir.join("mail"),
            from: "noreply@vito.test".into(),
        },
        storage: dir.join("storage"),
        signer: Some(Signer::new(KEY)),
        app_url: "https://app.test".into(),
        ai,
        ..Settings::default()
    });
    rt
}

/// Runs job `name` with `payload` once, inline, as a worker would.
async fn run(rt: &Runtime, name: &str, payload: Value) -> Result<(), JobError> {
    let handler = rt.registry.get(name).expect("registered").clone();
    let ctx: JobContext = rt.context(uuid::Uuid::new_v4().to_string(), 1, "default");
    rt.run_handler(&handler, ctx, payload, None)
        .await
        .expect("no timeout")
}

async fn scalar(db: &Db, sql: &str) -> i64 {
    db.query(sql).scalar::<i64>(db).await.unwrap()
}

async fn seed(h: &Harness, tenants: u64) -> demo::SeedReport {
    let o = SeedOptions {
        tenants,
        ..SeedOptions::default()
    };
    demo::seed(&h.db, &o, h.now(), |_| {}).await.unwrap()
}

/// Publishes the outbox and runs what it enqueued; returns the mails written.
async fn publish_and_mail(rt: &Runtime, dir: &Path) -> Vec<String> {
    tasks::outbox::process(rt, 500, None, |_| {}).await.unwrap();
    support::drain_with(rt).await;
    mails(dir)
}

fn mails(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join("mail")) else {
        return Vec::new();
    };
    let mut texts: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    texts.sort();
    texts
}

/// The tenant with the most order lines (orders with their items) today, and that count.
async fn busiest_tenant(db: &Db) -> (i64, i64) {
    let rows = db
        .query(
            "SELECT o.tenant_id, COUNT(*) FROM orders o LEFT JOIN order_items i ON i.order_id = o.id \
             GROUP BY o.tenant_id ORDER BY COUNT(*) DESC, o.tenant_id LIMIT 1",
        )
        .fetch_all(db)
        .await
        .unwrap();
    (rows[0].try_get(0).unwrap(), rows[0].try_get(1).unwrap())
}

fn export_path(dir: &Path, tenant: i64, from: &str, to: &str, ext: &str) -> PathBuf {
    dir.join(format!("storage/exports/{tenant}/sales-{from}-{to}.{ext}"))
}

async fn sales_exports_stream_every_line_and_mail_a_signed_link(h: Harness) {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&h, dir.path(), AiConfig::default());
    seed(&h, 6).await;
    let (tenant, lines) = busiest_tenant(&h.db).await;
    // Orders of the seed were all placed in the six hours before now.
    let (from, to) = ("2026-11-26", "2026-11-28");
    run(
        &rt,
        "GenerateSalesExport",
        json!({"tenant": tenant, "from": from, "to": to}),
    )
    .await
    .unwrap();
    let csv_path = export_path(dir.path(), tenant, from, to, "csv");
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        tasks::exports::HEADER
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(
        records.len() as i64,
        lines,
        "[{}] one line per order item",
        h.name
    );
    let total_of_lines: i64 = records
        .iter()
        .filter(|r| !r[9].is_empty())
        .map(|r| (r[9].parse::<f64>().unwrap() * 100.0).round() as i64)
        .sum();
    let items_total = scalar(
        &h.db,
        &format!(
            "SELECT {} FROM order_items i JOIN orders o ON o.id = i.order_id WHERE o.tenant_id = {tenant}",
            h.db.backend().cast_int("COALESCE(SUM(i.quantity * i.price_cents), 0)")
        ),
    )
    .await;
    assert_eq!(total_of_lines, items_total, "[{}]", h.name);
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(csv_path.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());

    // Excel: a workbook (a zip) of the same lines.
    run(
        &rt,
        "GenerateSalesExport",
        json!({"tenant": tenant, "from": from, "to": to, "format": "xlsx"}),
    )
    .await
    .unwrap();
    let xlsx = std::fs::read(export_path(dir.path(), tenant, from, to, "xlsx")).unwrap();
    assert!(xlsx.starts_with(b"PK"), "[{}] an xlsx is a zip", h.name);

    // Running it again writes the same file.
    run(
        &rt,
        "GenerateSalesExport",
        json!({"tenant": tenant, "from": from, "to": to}),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read_to_string(&csv_path).unwrap(), text);

    // Three ExportReady events, each mailed once with a link that checks.
    let mails = publish_and_mail(&rt, dir.path()).await;
    assert_eq!(mails.len(), 3, "[{}] {mails:?}", h.name);
    let link = mails
        .iter()
        .find(|m| m.contains(".csv?"))
        .and_then(|m| {
            m.split_whitespace()
                .find(|w| w.starts_with("https://app.test/downloads/"))
        })
        .expect("a download link")
        .to_string();
    let (path, query) = link
        .trim_start_matches("https://app.test/downloads/")
        .split_once('?')
        .unwrap();
    let q: std::collections::HashMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let signer = Signer::new(KEY);
    assert_eq!(
        signer.check(path, Some(q["expires"]), Some(q["signature"]), h.now()),
        Ok(())
    );
    assert!(
        signer
            .check(
                path,
                Some(q["expires"]),
                Some(q["signature"]),
                h.now() + TimeDelta::hours(25)
            )
            .is_err(),
        "the link expires after 24 hours"
    );

    // Bad input fails with a clear message and writes nothing.
    let e = run(&rt, "GenerateSalesExport", json!({"tenant": 999_999})).await;
    assert!(
        matches!(&e, Err(JobError::Fail(m)) if m.contains("tenant 999999 does not exist")),
        "{e:?}"
    );
    let e = run(
        &rt,
        "GenerateSalesExport",
        json!({"tenant": tenant, "from": to, "to": from}),
    )
    .await;
    assert!(
        matches!(&e, Err(JobError::Fail(m)) if m.contains("is after")),
        "{e:?}"
    );
    let e = run(&rt, "GenerateSalesExport", json!({"tenant": "seven"})).await;
    assert!(matches!(&e, Err(JobError::Undecodable(_))), "{e:?}");
    h.finish().await;
}
on_databases!(sales_exports_stream_every_line_and_mail_a_signed_link);

/// `pdftotext` of `pdf`, or `None` (skipped, loudly) where poppler-utils is missing.
fn pdf_text(pdf: &Path) -> Option<String> {
    match std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(pdf)
        .arg("-")
        .output()
    {
        Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => panic!(
            "pdftotext could not read {}: {}",
            pdf.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => {
            support::skip("pdftotext (Debian's poppler-utils) not installed");
            None
        }
    }
}

async fn the_pdf_report_reads_back_with_the_tenant_and_its_totals(h: Harness) {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&h, dir.path(), AiConfig::default());
    seed(&h, 4).await;
    let (tenant, _) = busiest_tenant(&h.db).await;
    let name = tenants::find(&h.db, tenant).await.unwrap().unwrap().name;
    // Two days of analytics rows, as analytics:sync writes them.
    for (date, visitors, views, clicks) in [("2026-11-26", 11, 30, 4), ("2026-11-27", 9, 25, 6)] {
        let mut f = analytics::Figures {
            visitors,
            interactions: views + clicks,
            ..Default::default()
        };
        f.interactions_by_kind.insert("view".into(), views);
        f.interactions_by_kind.insert("click".into(), clicks);
        analytics::upsert(&h.db, tenant, date, &f, h.now())
            .await
            .unwrap();
    }
    run(
        &rt,
        "GeneratePdfReportJob",
        json!({"tenant": tenant, "month": "2026-11"}),
    )
    .await
    .unwrap();
    let pdf = dir
        .path()
        .join(format!("storage/exports/{tenant}/report-2026-11.pdf"));
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let (orders, paid) = analytics::order_totals(&h.db, tenant, 0, i64::MAX)
        .await
        .unwrap();
    if let Some(text) = pdf_text(&pdf) {
        assert!(text.contains(&format!("Monthly report: {name}")), "{text}");
        assert!(text.contains("November 2026"), "{text}");
        let totals: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(totals.contains(&format!("Orders {orders}")), "{totals}");
        assert!(
            totals.contains(&format!("Paid revenue {}", tasks::exports::money(paid))),
            "{totals}"
        );
        assert!(totals.contains("Visitors 20"), "{totals}");
        assert!(totals.contains("Interactions 65"), "{totals}");
        assert!(
            totals.contains("view 55") && totals.contains("click 10"),
            "{totals}"
        );
        assert!(
            totals.contains("2026-11-26 11 34"),
            "the daily table: {totals}"
        );
    }
    let e = run(
        &rt,
        "GeneratePdfReportJob",
        json!({"tenant": tenant, "month": "2026-13"}),
    )
    .await;
    assert!(
        matches!(&e, Err(JobError::Fail(m)) if m.contains("2026-13")),
        "{e:?}"
    );
    let mails = publish_and_mail(&rt, dir.path()).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("report-2026-11.pdf?expires="),
        "{}",
        mails[0]
    );
    h.finish().await;
}
on_databases!(the_pdf_report_reads_back_with_the_tenant_and_its_totals);

async fn product_blurhash_is_stored_and_bad_images_fail_naming_product_and_file(h: Harness) {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&h, dir.path(), AiConfig::default());
    seed(&h, 1).await;
    let public = rt.settings.public_dir();
    let images = products::with_images(&h.db, 3).await.unwrap();
    tasks::blurhash::write_demo_images(&public, &images[..1]).unwrap();
    let (good, corrupt, missing) = (images[0].0, images[1].0, images[2].0);
    let corrupt_path = public.join(&images[1].1);
    std::fs::create_dir_all(corrupt_path.parent().unwrap()).unwrap();
    std::fs::write(&corrupt_path, b"\xFF\xD8 this is not really a JPEG").unwrap();

    run(&rt, "GenerateProductBlurhash", json!({"product": good}))
        .await
        .unwrap();
    let hash = products::image(&h.db, good)
        .await
        .unwrap()
        .unwrap()
        .blurhash
        .unwrap();
    assert_eq!(hash.len(), 28, "{hash}");
    // Twice: the same hash.
    run(&rt, "GenerateProductBlurhash", json!({"product": good}))
        .await
        .unwrap();
    assert_eq!(
        products::image(&h.db, good)
            .await
            .unwrap()
            .unwrap()
            .blurhash
            .unwrap(),
        hash
    );
    for (product, file) in [(corrupt, &images[1].1), (missing, &images[2].1)] {
        let e = run(&rt, "GenerateProductBlurhash", json!({"product": product})).await;
        let Err(JobError::Fail(m)) = e else {
            panic!("expected a failure, got {e:?}")
        };
        assert!(
            m.contains(&format!("product {product}")) && m.contains(file.as_str()),
            "{m}"
        );
        assert!(
            products::image(&h.db, product)
                .await
                .unwrap()
                .unwrap()
                .blurhash
                .is_none()
        );
    }
    h.finish().await;
}
on_databases!(product_blurhash_is_stored_and_bad_images_fail_naming_product_and_file);

/// Moves `h`'s clock forward in small steps until `done`, so jobs waiting for a send slot on
/// the manual clock get it.
fn tick(
    h: &Harness,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<std::sync::atomic::AtomicBool>,
) {
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (clock, stop) = (h.clock.clone(), done.clone());
    let task = tokio::spawn(async move {
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            clock.advance(TimeDelta::milliseconds(20));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    (task, done)
}

async fn a_campaign_mails_each_opted_in_recipient_once_and_honours_unsubscribes(h: Harness) {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&h, dir.path(), AiConfig::default());
    seed(&h, 2).await;
    let tenant = 1 + demo::max_id(&h.db, "tenants").await.unwrap() - 2;
    // Ten more customers for the first tenant: seven consent, three do not.
    let base = demo::max_id(&h.db, "customers").await.unwrap();
    let rows: Vec<Vec<demo::Cell>> = (1..=10)
        .map(|i| {
            vec![
                demo::Cell::Int(base + i),
                demo::Cell::Int(tenant),
                demo::Cell::Text(format!("Extra {i}")),
                demo::Cell::Text(format!("extra{i}@example.test")),
                demo::Cell::Int(i64::from(i <= 7)),
                demo::Cell::Int(h.now().timestamp()),
            ]
        })
        .collect();
    demo::insert_rows(&h.db, &demo::CUSTOMERS, &rows)
        .await
        .unwrap();
    let opted_in = campaigns::count_recipients(&h.db, tenant).await.unwrap();
    assert!(opted_in >= 7);
    let campaign = campaigns::create(
        &h.db,
        tenant,
        "Our November news",
        "Hola {{name}},\nnew products!\nLeave: {{unsubscribe_url}}\n",
        h.now(),
    )
    .await
    .unwrap();
    let (ticker, done) = tick(&h);
    run(
        &rt,
        "campaigns:send",
        json!({"campaign": campaign, "rate": "100/s", "chunk": 3}),
    )
    .await
    .unwrap();
    let c = campaigns::find(&h.db, campaign).await.unwrap().unwrap();
    assert_eq!((c.status.as_str(), c.recipients), ("sending", opted_in));
    // Sends over the rate are postponed to a later slot; a draining worker stops when nothing is
    // due yet, so drain until the batch's last step has marked the campaign sent.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        support::drain_with(&rt).await;
        let c = campaigns::find(&h.db, campaign).await.unwrap().unwrap();
        if c.status == "sent" || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sent = mails(dir.path());
    assert_eq!(
        sent.len() as i64,
        opted_in,
        "[{}] one mail per opted-in recipient",
        h.name
    );
    let c = campaigns::find(&h.db, campaign).await.unwrap().unwrap();
    assert_eq!(
        (c.status.as_str(), c.sent_count, c.failed_count),
        ("sent", opted_in, 0),
        "[{}]",
        h.name
    );
    assert!(
        sent.iter()
            .all(|m| m.contains("Subject: Our November news"))
    );
    assert!(
        !sent
            .iter()
            .any(|m| m.contains("extra8@") || m.contains("extra10@"))
    );

    // A second run sends nothing twice.
    run(&rt, "campaigns:send", json!({"campaign": campaign}))
        .await
        .unwrap();
    support::drain_with(&rt).await;
    support::drain_with(&rt).await;
    assert_eq!(mails(dir.path()).len() as i64, opted_in);
    assert_eq!(
        scalar(
            &h.db,
            &format!("SELECT COUNT(*) FROM campaign_deliveries WHERE campaign_id = {campaign}")
        )
        .await,
        opted_in
    );

    // The unsubscribe link of a mail opts its recipient out through the HTTP edge.
    let mail = sent.iter().find(|m| m.contains("extra1@")).unwrap();
    let link = mail
        .split_whitespace()
        .find(|w| w.starts_with("https://app.test/unsubscribe/"))
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http = conecta::config::HttpConfig {
        addr,
        app_key: Some(KEY.to_vec()),
        webhook_secret: None,
        webhook_tolerance: 300,
        api_token: None,
        ui_password: None,
        app_url: "https://app.test".into(),
    };
    let stop = conecta::stop::StopHandle::default();
    let state = Arc::new(conecta::http::AppState::new(rt.clone(), http, None));
    tokio::spawn(conecta::http::serve(listener, state, stop.clone()));
    let local = link.replace("https://app.test", &format!("http://{addr}"));
    let client = reqwest::Client::new();
    let forged = local.replace("signature=", "signature=00");
    assert_eq!(client.get(&forged).send().await.unwrap().status(), 403);
    let extra1 = base + 1;
    assert!(
        campaigns::customer(&h.db, extra1)
            .await
            .unwrap()
            .unwrap()
            .opted_in
    );
    assert_eq!(client.get(&local).send().await.unwrap().status(), 200);
    assert_eq!(client.post(&local).send().await.unwrap().status(), 200);
    assert!(
        !campaigns::customer(&h.db, extra1)
            .await
            .unwrap()
            .unwrap()
            .opted_in
    );
    assert_eq!(
        campaigns::count_recipients(&h.db, tenant).await.unwrap(),
        opted_in - 1
    );
    stop.stop(conecta::stop::StopReason::Signal);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    ticker.await.unwrap();
    h.finish().await;
}
on_databases!(a_campaign_mails_each_opted_in_recipient_once_and_honours_unsubscribes);

async fn the_send_rate_is_shared_by_every_sender(h: Harness) {
    // Forty slots at 10/s from four concurrent takers: 100 ms apart, never two in one slot.
    let now_us = h.now().timestamp_micros();
    let takers = (0..4).map(|_| {
        let db = h.db.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..10 {
                got.push(
                    campaigns::take_slot(&db, "t", 100_000, now_us)
                        .await
                        .unwrap(),
                );
            }
            got
        })
    });
    let mut slots: Vec<i64> = Vec::new();
    for t in takers {
        slots.extend(t.await.unwrap());
    }
    slots.sort_unstable();
    let expected: Vec<i64> = (0..40).map(|i| now_us + i * 100_000).collect();
    assert_eq!(slots, expected);
    h.finish().await;
}
on_databases!(the_send_rate_is_shared_by_every_sender);

async fn offline_profiles_are_written_from_the_tenants_data(h: Harness) {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&h, dir.path(), AiConfig::default());
    seed(&h, 2).await;
    let tenant = demo::max_id(&h.db, "tenants").await.unwrap();
    run(&rt, "GenerateBusinessProfile", json!({"tenant": tenant}))
        .await
        .unwrap();
    let p = tenants::profile(&h.db, tenant).await.unwrap().unwrap();
    let description = p.description.clone().unwrap();
    assert!(description.starts_with(&p.name), "{description}");
    assert!(p.tags.as_deref().unwrap().contains("local-business"));
    assert_eq!(p.profile_source.as_deref(), Some("offline"));
    // First profile: left alone the second time. Enhance rewrites it, the same way.
    tenants::set_profile(&h.db, tenant, "Hand-written.", "mine", "person", h.now())
        .await
        .unwrap();
    run(&rt, "GenerateBusinessProfile", json!({"tenant": tenant}))
        .await
        .unwrap();
    let kept = tenants::profile(&h.db, tenant).await.unwrap().unwrap();
    assert_eq!(kept.description.as_deref(), Some("Hand-written."));
    run(&rt, "EnhanceTenantProfileJob", json!({"tenant": tenant}))
        .await
        .unwrap();
    let enhanced = tenants::profile(&h.db, tenant).await.unwrap().unwrap();
    assert_eq!(enhanced.description.as_deref(), Some(description.as_str()));
    let e = run(&rt, "EnhanceTenantProfileJob", json!({"tenant": 424_242})).await;
    assert!(
        matches!(&e, Err(JobError::Fail(m)) if m.contains("424242")),
        "{e:?}"
    );
    h.finish().await;
}
on_databases!(offline_profiles_are_written_from_the_tenants_data);

/// A chat-completions server that answers each request with the next of `script`
/// (status, extra header, body, delay), and counts requests and dropped connections.
struct FakeAi {
    base: String,
    requests: Arc<std::sync::atomic::AtomicUsize>,
}

/// One scripted answer: status, an extra header, the body, a delay in milliseconds.
type Answer = (u16, Option<(&'static str, &'static str)>, String, u64);

async fn fake_ai(script: Vec<Answer>) -> FakeAi {
    use axum::response::IntoResponse;
    let script = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(
        script,
    )));
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = requests.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |body: axum::Json<Value>| {
            let script = script.clone();
            let counted = counted.clone();
            async move {
                assert_eq!(body["response_format"]["type"], "json_object");
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (status, header, text, delay) = script.lock().unwrap().pop_front().unwrap_or((
                    500,
                    None,
                    "script ran out".into(),
                    0,
                ));
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let mut resp =
                    (axum::http::StatusCode::from_u16(status).unwrap(), text).into_response();
                if let Some((k, v)) = header {
                    resp.headers_mut().insert(k, v.parse().unwrap());
                }
                resp
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeAi { base, requests }
}

fn answer(content: &str) -> String {
    json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_provider_retries_bad_answers_postpones_on_429_and_times_out() {
    use conecta::queue::NewJob;
    use conecta::queue::worker::{self, WorkerOptions};
    let h = support::harness("sqlite").await.unwrap();
    seed(&h, 1).await;
    let tenant = demo::max_id(&h.db, "tenants").await.unwrap();
    let good = answer(
        r#"{"description": "A corner shop with fresh bread.", "tags": ["bakery", "Fresh Bread"]}"#,
    );
    let ai = fake_ai(vec![
        (429, Some(("retry-after", "120")), "slow down".into(), 0),
        (500, None, "upstream exploded".into(), 0),
        (200, None, answer("I think this shop is lovely"), 0),
        (200, None, good.clone(), 0),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = AiConfig {
        provider: AiProviderKind::OpenAi,
        base_url: ai.base.clone(),
        api_key: Some("sk-test".into()),
        model: "test-model".into(),
    };
    let rt = runtime(&h, dir.path(), config.clone());
    rt.dispatch(tasks::profiles::enhance_job(tenant))
        .await
        .unwrap();
    // A second dispatch within the hour is a duplicate.
    assert!(
        rt.dispatch(tasks::profiles::enhance_job(tenant))
            .await
            .unwrap()
            .is_duplicate()
    );
    let opts = || WorkerOptions {
        queues: vec!["default".into()],
        stop_when_empty: true,
        ..WorkerOptions::default()
    };
    // 429: postponed two minutes, and it cost no try.
    worker::run(rt.clone(), opts(), Default::default())
        .await
        .unwrap();
    assert_eq!(ai.requests.load(std::sync::atomic::Ordering::SeqCst), 1);
    h.clock.advance(TimeDelta::seconds(119));
    worker::run(rt.clone(), opts(), Default::default())
        .await
        .unwrap();
    assert_eq!(
        ai.requests.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "not before Retry-After"
    );
    // Then 500, then garbage, then a good answer: three tries, the job's limit.
    for _ in 0..3 {
        h.clock.advance(TimeDelta::seconds(400));
        worker::run(rt.clone(), opts(), Default::default())
            .await
            .unwrap();
    }
    assert_eq!(ai.requests.load(std::sync::atomic::Ordering::SeqCst), 4);
    let p = tenants::profile(&h.db, tenant).await.unwrap().unwrap();
    assert_eq!(
        p.description.as_deref(),
        Some("A corner shop with fresh bread.")
    );
    assert_eq!(p.tags.as_deref(), Some("bakery,fresh-bread"));
    assert_eq!(p.profile_source.as_deref(), Some("test-model"));
    assert_eq!(h.pending().await, 0);

    // Garbage three times: failed, with the provider's text in the exception.
    let ai = fake_ai(vec![
        (200, None, answer("nope one"), 0),
        (200, None, answer("nope two"), 0),
        (200, None, "<html>nope three</html>".into(), 0),
    ])
    .await;
    let rt = runtime(
        &h,
        dir.path(),
        AiConfig {
            base_url: ai.base.clone(),
            ..config.clone()
        },
    );
    let mut job = NewJob::new("GenerateBusinessProfile", json!({"tenant": tenant}));
    job.tries = Some(3);
    tenants::set_profile(&h.db, tenant, "", "", "x", h.now())
        .await
        .unwrap();
    rt.dispatch(job).await.unwrap();
    for _ in 0..3 {
        worker::run(rt.clone(), opts(), Default::default())
            .await
            .unwrap();
        h.clock.advance(TimeDelta::seconds(400));
    }
    let failed = conecta::store::failed_jobs::list(&h.db).await.unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].exception.contains("nope three"),
        "{}",
        failed[0].exception
    );

    // A provider slower than the job's timeout: the call is cancelled.
    let ai = fake_ai(vec![(200, None, good, 30_000)]).await;
    let rt = runtime(
        &h,
        dir.path(),
        AiConfig {
            base_url: ai.base.clone(),
            ..config
        },
    );
    let handler = rt.registry.get("EnhanceTenantProfileJob").unwrap().clone();
    let ctx = rt.context("slow".into(), 1, "default");
    let clock = h.clock.clone();
    let advance = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        clock.advance(TimeDelta::seconds(181));
    });
    let started = std::time::Instant::now();
    let outcome = rt
        .run_handler(
            &handler,
            ctx,
            json!({"tenant": tenant}),
            Some(Duration::from_secs(180)),
        )
        .await;
    advance.await.unwrap();
    assert!(outcome.is_none(), "timed out: {outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let _ = rt.queue.purge().await;
    h.finish().await;
}

#[test]
fn every_catalog_name_has_a_body_and_laravel_names_resolve() {
    let registry = tasks::registry();
    for def in tasks::CATALOG {
        assert!(registry.get(def.name).is_some(), "{} has no body", def.name);
    }
    for (alias, name) in tasks::ALIASES {
        assert_eq!(tasks::find(alias).unwrap().name, *name);
        assert!(registry.get(alias).is_some(), "{alias}");
    }
    assert_eq!(
        tasks::find("AuditTenantLimits").unwrap().name,
        "AuditTenantLimits"
    );
}
