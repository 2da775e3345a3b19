//! `/ui`: the dashboard, server-rendered with askama (templates in `templates/ui/`), no
//! JavaScript. Pages: overview (queues, jobs per minute over the last hour, live workers and
//! schedulers), failed jobs (retry, forget), schedule, batches, outbox, locks; each refreshes
//! itself.
//!
//! Login: `CONECTA_UI_PASSWORD`, else the API token; without either `/ui` answers 503 and
//! says which key to set. A session is a signed cookie (expiry and a random nonce, HMAC'd
//! with a key derived from the password, so changing the password ends every session),
//! `HttpOnly` and `SameSite=Strict`. Every form carries a CSRF token derived from the
//! session; a post without the right one is refused with 403.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Form, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::AppState;
use crate::rfc3339;
use crate::schedule::health::{self, State as Health};
use crate::store::{batches, failed_jobs, heartbeats, outbox, queue_minutes, schedule_runs};

/// The session cookie's name.
const COOKIE: &str = "conecta_ui";
/// How long a login lasts.
const SESSION_HOURS: i64 = 12;
/// Seconds between a page's refreshes.
const REFRESH_SECONDS: u32 = 10;

/// The dashboard's routes, under `/ui`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(overview))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/failed", get(failed))
        .route("/ui/failed/{id}", get(failed_one))
        .route("/ui/failed/{id}/{action}", post(act_on_failed))
        .route("/ui/schedule", get(schedule))
        .route("/ui/batches", get(batches_page))
        .route("/ui/outbox", get(outbox_page))
        .route("/ui/locks", get(locks))
}

// --- Sessions ---------------------------------------------------------------------------

/// The secret that opens the dashboard.
fn secret(state: &AppState) -> Option<&str> {
    state
        .http
        .ui_password
        .as_deref()
        .or(state.http.api_token.as_deref())
}

fn mac(key: &[u8], parts: &[&str]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            mac.update(b".");
        }
        mac.update(p.as_bytes());
    }
    mac
}

/// The signing key of sessions: derived from the password, so a new password ends them all.
fn session_key(secret: &str) -> Vec<u8> {
    mac(b"conecta ui session", &[secret])
        .finalize()
        .into_bytes()
        .to_vec()
}

/// A logged-in session: its nonce, from which the CSRF token is derived.
struct Session {
    csrf: String,
}

fn csrf_token(key: &[u8], nonce: &str) -> String {
    hex::encode(mac(key, &["csrf", nonce]).finalize().into_bytes())
}

fn new_session(secret: &str, now: DateTime<Utc>) -> String {
    let key = session_key(secret);
    let expires = (now + TimeDelta::hours(SESSION_HOURS))
        .timestamp()
        .to_string();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let sig = hex::encode(mac(&key, &[&expires, &nonce]).finalize().into_bytes());
    format!("{expires}.{nonce}.{sig}")
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The session in `headers`, when its signature holds and it has not expired.
fn session(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    let secret = secret(state)?;
    let value = cookie(headers)?;
    let mut parts = value.split('.');
    let (expires, nonce, sig) = (parts.next()?, parts.next()?, parts.next()?);
    let key = session_key(secret);
    let sig = hex::decode(sig).ok()?;
    mac(&key, &[expires, nonce]).verify_slice(&sig).ok()?;
    let expires: i64 = expires.parse().ok()?;
    if state.rt.clock.now().timestamp() >= expires {
        return None;
    }
    Some(Session {
        csrf: csrf_token(&key, nonce),
    })
}

/// A request of a logged-in user. Without a password configured the dashboard answers 503;
/// without a valid session it sends the browser to the login page.
impl FromRequestParts<Arc<AppState>> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        if secret(state).is_none() {
            return Err(disabled());
        }
        session(state, &parts.headers).ok_or_else(|| Redirect::to("/ui/login").into_response())
    }
}

impl Session {
    /// Whether a form's `given` token is this session's.
    fn csrf_ok(&self, given: &str) -> bool {
        super::same_secret(given, &self.csrf)
    }

    /// 403 for a form whose CSRF token is missing or wrong.
    fn csrf_refused(self) -> Response {
        tracing::warn!("/ui: a form post without this session's CSRF token was refused");
        page(
            StatusCode::FORBIDDEN,
            &Message {
                title: "Refused",
                nav: "",
                csrf: self.csrf,
                text: "This form's security token is missing or stale. Go back, reload the page and try again.",
            },
        )
    }
}

fn disabled() -> Response {
    tracing::warn!(
        "/ui was called but neither CONECTA_UI_PASSWORD nor CONECTA_API_TOKEN is set: answering 503"
    );
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        &Message {
            title: "Dashboard off",
            nav: "",
            csrf: String::new(),
            text: "The dashboard is off: set CONECTA_UI_PASSWORD (or CONECTA_API_TOKEN) on the conecta server and restart it.",
        },
    )
}

fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a dashboard page");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot render the page").into_response()
        }
    }
}

fn ok(template: &impl Template) -> Response {
    page(StatusCode::OK, template)
}

/// A store or queue error as a page that says what failed; the dashboard keeps working.
fn unavailable(csrf: String, e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "/ui: cannot read the figures");
    let text = format!("Cannot read the figures: {e}. conecta retries on the next refresh.");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        &Message {
            title: "Unavailable",
            nav: "",
            csrf,
            text: &text,
        },
    )
}

// --- Templates ----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "ui/message.html")]
struct Message<'a> {
    title: &'a str,
    nav: &'a str,
    csrf: String,
    text: &'a str,
}

#[derive(Template)]
#[template(path = "ui/login.html")]
struct Login<'a> {
    title: &'a str,
    nav: &'a str,
    csrf: String,
    error: Option<&'a str>,
}

/// One queue's row on the overview.
struct QueueRow {
    queue: String,
    pending: u64,
    reserved: u64,
    delayed: u64,
}

/// One minute of the chart: bar heights in pixels and the figures.
struct Bar {
    x: u32,
    processed_h: u32,
    failed_h: u32,
    label: String,
}

#[derive(Template)]
#[template(path = "ui/overview.html")]
struct Overview {
    title: &'static str,
    nav: &'static str,
    csrf: String,
    refresh: u32,
    now: String,
    queues: Vec<QueueRow>,
    bars: Vec<Bar>,
    chart_max: i64,
    processed_hour: i64,
    failed_hour: i64,
    workers: Vec<heartbeats::Heartbeat>,
    schedulers: Vec<heartbeats::SchedulerBeat>,
    hash_mismatch: bool,
}

#[derive(Template)]
#[template(path = "ui/failed.html")]
struct Failed {
    title: &'static str,
    nav: &'static str,
    csrf: String,
    refresh: u32,
    notice: Option<String>,
    jobs: Vec<FailedRow>,
}

struct FailedRow {
    id: i64,
    queue: String,
    job: String,
    failed_at: String,
    exception: String,
}

#[derive(Template)]
#[template(path = "ui/failed_one.html")]
struct FailedOne {
    title: &'static str,
    nav: &'static str,
    csrf: String,
    job: failed_jobs::FailedJob,
    job_name: String,
    failed_at: String,
    payload: String,
}

struct EntryRow {
    name: String,
    task: String,
    cron: String,
    timezone: String,
    next_utc: String,
    next_local: String,
    last: String,
    last_at: String,
    health: &'static str,
    dst: Vec<String>,
}

#[derive(Template)]
#[template(path = "ui/schedule.html")]
struct SchedulePage {
    title: &'static str,
    nav: &'static str,
    csrf: String,
    refresh: u32,
    loaded: bool,
    entries: Vec<EntryRow>,
}

struct BatchRow {
    id: String,
    name: String,
    total: i64,
    processed: i64,
    failed: i64,
    progress: u32,
    state: &'static str,
    created: String,
}

#[derive(Template)]
#[template(path = "ui/batches.html")]
struct BatchesPage {
    title: &'static str,
    nav: &'static str,
    csrf: String,
    refresh: u32,
    batches: Vec<BatchRow>,
}

struct StuckRow {
    id: i64,
    event_type: String,
    aggregate: String,
    attempts: i64,
    created: String,
    error: String,
}

#[derive(Template)]
#[template(path = "ui/outbox.html")]
struct OutboxPage {
    title: &'static str,
    nav: &'static str,
    csrf: String,
    refresh: u32,
    backlog: i64,
    oldest_age: String,
    stuck: Vec<StuckRow>,
}

struct LockRow {
    key: String,
    owner: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "ui/locks.html")]
struct LocksPage {
    title: &'static str,
    nav: &'static str,
    csrf: String,
    refresh: u32,
    locks: Vec<LockRow>,
}

// --- Handlers -----------------------------------------------------------------------------

async fn login_page(State(state): State<Arc<AppState>>) -> Response {
    if secret(&state).is_none() {
        return disabled();
    }
    ok(&Login {
        title: "Log in",
        nav: "",
        csrf: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    password: String,
}

async fn login(State(state): State<Arc<AppState>>, Form(form): Form<LoginForm>) -> Response {
    let Some(secret) = secret(&state) else {
        return disabled();
    };
    if !super::same_secret(&form.password, secret) {
        tracing::warn!("/ui: a login with a wrong password");
        return page(
            StatusCode::UNAUTHORIZED,
            &Login {
                title: "Log in",
                nav: "",
                csrf: String::new(),
                error: Some("Wrong password."),
            },
        );
    }
    let value = new_session(secret, state.rt.clock.now());
    let cookie = format!(
        "{COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_HOURS * 3600
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/ui")).into_response()
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(s: Session, Form(form): Form<CsrfForm>) -> Response {
    if !s.csrf_ok(&form.csrf) {
        return s.csrf_refused();
    }
    let cookie = format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/ui/login")).into_response()
}

/// "12s", "5m", "3h", "2d".
fn age(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Minutes the chart covers.
const CHART_MINUTES: i64 = 60;
/// The chart's height in pixels.
const CHART_HEIGHT: i64 = 120;

async fn overview(State(state): State<Arc<AppState>>, s: Session) -> Response {
    let (rt, now) = (&state.rt, state.rt.clock.now());
    let depths = match rt.queue.depths(now).await {
        Ok(d) => d,
        Err(e) => return unavailable(s.csrf, e),
    };
    let read = async {
        let this = queue_minutes::minute_of(now);
        let minutes = queue_minutes::since(&rt.db, this - CHART_MINUTES + 1).await?;
        let workers = heartbeats::alive(&rt.db, now).await?;
        let schedulers = heartbeats::alive_schedulers(&rt.db, now).await?;
        Ok::<_, crate::store::StoreError>((this, minutes, workers, schedulers))
    };
    let (this, minutes, workers, schedulers) = match read.await {
        Ok(r) => r,
        Err(e) => return unavailable(s.csrf, e),
    };
    let mut per_minute = vec![(0i64, 0i64); CHART_MINUTES as usize];
    for ((minute, _), c) in &minutes {
        let i = (minute - (this - CHART_MINUTES + 1)) as usize;
        if let Some(slot) = per_minute.get_mut(i) {
            slot.0 += c.processed;
            slot.1 += c.failed;
        }
    }
    let chart_max = per_minute
        .iter()
        .map(|(p, f)| p + f)
        .max()
        .unwrap_or(0)
        .max(1);
    let bars = per_minute
        .iter()
        .enumerate()
        .map(|(i, (p, f))| {
            let at = DateTime::from_timestamp((this - CHART_MINUTES + 1 + i as i64) * 60, 0)
                .unwrap_or(now);
            Bar {
                x: i as u32 * 10,
                processed_h: (p * CHART_HEIGHT / chart_max) as u32,
                failed_h: (f * CHART_HEIGHT / chart_max) as u32,
                label: format!("{}: {p} processed, {f} failed", at.format("%H:%M UTC")),
            }
        })
        .collect();
    let hash_mismatch = heartbeats::schedule_hashes(&schedulers).len() > 1;
    ok(&Overview {
        title: "Overview",
        nav: "overview",
        csrf: s.csrf,
        refresh: REFRESH_SECONDS,
        now: rfc3339::utc(now),
        queues: depths
            .into_iter()
            .map(|d| QueueRow {
                queue: d.queue,
                pending: d.pending,
                reserved: d.reserved,
                delayed: d.delayed,
            })
            .collect(),
        bars,
        chart_max,
        processed_hour: per_minute.iter().map(|(p, _)| p).sum(),
        failed_hour: per_minute.iter().map(|(_, f)| f).sum(),
        hash_mismatch,
        workers,
        schedulers,
    })
}

#[derive(Deserialize)]
struct NoticeQuery {
    notice: Option<String>,
}

/// A failed job's job name, from its payload.
fn job_name(payload: &str) -> String {
    crate::queue::decode(payload)
        .map(|e| e.job)
        .unwrap_or_else(|_| "(undecodable)".into())
}

async fn failed(
    State(state): State<Arc<AppState>>,
    s: Session,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let jobs = match failed_jobs::list(&state.rt.db).await {
        Ok(j) => j,
        Err(e) => return unavailable(s.csrf, e),
    };
    ok(&Failed {
        title: "Failed jobs",
        nav: "failed",
        csrf: s.csrf,
        refresh: REFRESH_SECONDS,
        notice: q.notice,
        jobs: jobs
            .into_iter()
            .map(|j| FailedRow {
                id: j.id,
                job: job_name(&j.payload),
                queue: j.queue,
                failed_at: rfc3339::utc(j.failed_at),
                exception: j.exception.lines().next().unwrap_or("").to_string(),
            })
            .collect(),
    })
}

async fn failed_one(
    State(state): State<Arc<AppState>>,
    s: Session,
    Path(id): Path<i64>,
) -> Response {
    let job = match failed_jobs::find(&state.rt.db, &id.to_string()).await {
        Ok(Some(j)) => j,
        Ok(None) => return back_to_failed(&gone(id)),
        Err(e) => return unavailable(s.csrf, e),
    };
    let payload = serde_json::from_str::<serde_json::Value>(&job.payload)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| job.payload.clone());
    ok(&FailedOne {
        title: "Failed job",
        nav: "failed",
        csrf: s.csrf,
        job_name: job_name(&job.payload),
        failed_at: rfc3339::utc(job.failed_at),
        payload,
        job,
    })
}

/// `POST /ui/failed/{id}/retry` and `/forget`: one failed job back on its queue, or deleted;
/// then the failed list with what happened.
async fn act_on_failed(
    State(state): State<Arc<AppState>>,
    s: Session,
    Path((id, action)): Path<(i64, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !s.csrf_ok(&form.csrf) {
        return s.csrf_refused();
    }
    let notice = match action.as_str() {
        "retry" => match state.rt.retry_failed(id).await {
            Ok(Some(uuid)) => {
                tracing::info!(id, uuid = %uuid, "/ui: failed job retried");
                format!("Job {id} is back on its queue.")
            }
            Ok(None) => gone(id),
            Err(e) => format!("Job {id} was not retried: {e}"),
        },
        "forget" => match failed_jobs::delete(&state.rt.db, id).await {
            Ok(true) => {
                tracing::info!(id, "/ui: failed job forgotten");
                format!("Job {id} is forgotten.")
            }
            Ok(false) => gone(id),
            Err(e) => format!("Job {id} was not forgotten: {e}"),
        },
        _ => return (StatusCode::NOT_FOUND, "no such action").into_response(),
    };
    back_to_failed(&notice)
}

/// The notice for a failed job that is no longer there.
fn gone(id: i64) -> String {
    format!("No failed job {id}: it was retried or forgotten already.")
}

/// The failed list, with `notice` shown above it.
fn back_to_failed(notice: &str) -> Response {
    let query: String = form_urlencoded::byte_serialize(notice.as_bytes()).collect();
    Redirect::to(&format!("/ui/failed?notice={query}")).into_response()
}

async fn schedule(State(state): State<Arc<AppState>>, s: Session) -> Response {
    let Some(schedule) = state.schedule() else {
        return ok(&SchedulePage {
            title: "Schedule",
            nav: "schedule",
            csrf: s.csrf,
            refresh: REFRESH_SECONDS,
            loaded: false,
            entries: Vec::new(),
        });
    };
    let (rt, now) = (&state.rt, state.rt.clock.now());
    let names: Vec<String> = schedule.enabled().map(|e| e.name.clone()).collect();
    let latest = match schedule_runs::latest_of(&rt.db, &names).await {
        Ok(l) => l,
        Err(e) => return unavailable(s.csrf, e),
    };
    let dst = crate::schedule::dst::report(&schedule, now, now + TimeDelta::days(366));
    let mut entries = Vec::new();
    for entry in schedule.enabled() {
        let (last_success, first) =
            match schedule_runs::last_success_and_first(&rt.db, &entry.name).await {
                Ok(r) => r,
                Err(e) => return unavailable(s.csrf, e),
            };
        let next =
            crate::schedule::occurrences(entry, now, now + crate::schedule::NEXT_HORIZON).next();
        let last = latest.iter().find(|r| r.entry == entry.name);
        entries.push(EntryRow {
            name: entry.name.clone(),
            task: entry.task.clone(),
            cron: entry.cron.as_str().to_string(),
            timezone: entry.timezone.name().to_string(),
            next_utc: next.map_or("never".into(), |o| rfc3339::utc(o.due)),
            next_local: next.map_or(String::new(), |o| rfc3339::local(o.due, o.offset_seconds)),
            last: last.map_or("never run".into(), |r| r.outcome.clone()),
            last_at: last.map_or(String::new(), |r| rfc3339::utc(r.due_at)),
            health: match health::judge(entry, last_success, first, now) {
                Health::Ok => "ok",
                Health::Overdue => "overdue",
                Health::Pending => "pending",
            },
            dst: dst
                .iter()
                .filter(|d| d.entry == entry.name)
                .map(|d| format!("{} ({}): {}", d.date, d.timezone.name(), d.detail))
                .collect(),
        });
    }
    ok(&SchedulePage {
        title: "Schedule",
        nav: "schedule",
        csrf: s.csrf,
        refresh: REFRESH_SECONDS,
        loaded: true,
        entries,
    })
}

async fn batches_page(State(state): State<Arc<AppState>>, s: Session) -> Response {
    let list = match batches::list(&state.rt.db, 50).await {
        Ok(l) => l,
        Err(e) => return unavailable(s.csrf, e),
    };
    ok(&BatchesPage {
        title: "Batches",
        nav: "batches",
        csrf: s.csrf,
        refresh: REFRESH_SECONDS,
        batches: list
            .into_iter()
            .map(|b| BatchRow {
                progress: b.progress(),
                processed: b.processed(),
                state: if b.cancelled_at.is_some() {
                    "cancelled"
                } else if b.finished_at.is_some() {
                    "finished"
                } else {
                    "running"
                },
                created: rfc3339::utc(b.created_at),
                id: b.id,
                name: b.name,
                total: b.total_jobs,
                failed: b.failed_jobs,
            })
            .collect(),
    })
}

async fn outbox_page(State(state): State<Arc<AppState>>, s: Session) -> Response {
    let (db, now) = (&state.rt.db, state.rt.clock.now());
    let read = async {
        let backlog = outbox::backlog(db).await?;
        let oldest = outbox::oldest_unprocessed(db).await?;
        // As `outbox coroner` by default: claimed 10 minutes ago and unfinished, or failing 5
        // times or more.
        let stuck = outbox::stuck(db, now - TimeDelta::minutes(10), 5, 100).await?;
        Ok::<_, crate::store::StoreError>((backlog, oldest, stuck))
    };
    let (backlog, oldest, stuck) = match read.await {
        Ok(r) => r,
        Err(e) => return unavailable(s.csrf, e),
    };
    ok(&OutboxPage {
        title: "Outbox",
        nav: "outbox",
        csrf: s.csrf,
        refresh: REFRESH_SECONDS,
        backlog,
        oldest_age: oldest.map_or("none".into(), |t| age((now - t).num_seconds())),
        stuck: stuck
            .into_iter()
            .map(|m| StuckRow {
                id: m.id,
                event_type: m.event_type,
                aggregate: format!("{} {}", m.aggregate_type, m.aggregate_id),
                attempts: m.attempts,
                created: rfc3339::utc(m.created_at),
                error: m.last_error.unwrap_or_default(),
            })
            .collect(),
    })
}

async fn locks(State(state): State<Arc<AppState>>, s: Session) -> Response {
    let now = state.rt.clock.now();
    let held = match state.rt.queue.locks("", now).await {
        Ok(l) => l,
        Err(e) => return unavailable(s.csrf, e),
    };
    ok(&LocksPage {
        title: "Locks",
        nav: "locks",
        csrf: s.csrf,
        refresh: REFRESH_SECONDS,
        locks: held
            .into_iter()
            .map(|l| LockRow {
                expires: format!(
                    "{} (in {})",
                    rfc3339::utc(l.expires_at),
                    age((l.expires_at - now).num_seconds())
                ),
                key: l.key,
                owner: l.owner,
            })
            .collect(),
    })
}
