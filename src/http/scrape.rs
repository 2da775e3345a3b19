//! `GET /metrics`: the counters as they stand, and the figures that need a query, refreshed
//! at most every few seconds however often Prometheus scrapes.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::TimeDelta;

use super::AppState;
use crate::clock::Stopwatch;
use crate::outage::Write;
use crate::schedule::health::{self, State as Health};
use crate::store::{failed_jobs, heartbeats, outbox, queue_minutes, schedule_runs};

/// How long queried figures are reused.
const FRESH_FOR: Duration = Duration::from_secs(5);

/// When the queried figures were last refreshed, and the failed-write counts last exported.
#[derive(Default)]
pub(super) struct Cache {
    refreshed: Mutex<Option<Stopwatch>>,
    exported_writes: Mutex<Vec<(Write, u64)>>,
}

pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let m = &state.rt.metrics;
    let _one_scrape_at_a_time = m.scrape.lock().await;
    let stale = state
        .scrape
        .refreshed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .is_none_or(|w| w.elapsed() >= FRESH_FOR);
    if stale {
        if let Err(e) = refresh(&state).await {
            tracing::warn!(error = %e, "/metrics: some figures could not be read; they keep their last values");
        }
        *state
            .scrape
            .refreshed
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Stopwatch::start());
    }
    export_failed_writes(&state);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.render(),
    )
        .into_response()
}

/// Moves the failed-write counters up to the process's counts.
fn export_failed_writes(state: &AppState) {
    let now = state.rt.outages.failed_writes();
    let mut exported = state
        .scrape
        .exported_writes
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    for (write, count) in &now {
        let before = exported
            .iter()
            .find(|(w, _)| w == write)
            .map_or(0, |(_, c)| *c);
        state
            .rt
            .metrics
            .failed_writes
            .get_or_create(&vec![("state", write.name().to_string())])
            .inc_by(count.saturating_sub(before));
    }
    *exported = now;
}

/// Sets the gauges that need a query.
async fn refresh(state: &AppState) -> crate::queue::Result<()> {
    let m = &state.rt.metrics;
    let (rt, now) = (&state.rt, state.rt.clock.now());
    m.queue_jobs.clear();
    for d in rt.queue.depths(now).await? {
        for (kind, n) in [
            ("pending", d.pending),
            ("reserved", d.reserved),
            ("delayed", d.delayed),
        ] {
            m.queue_jobs
                .get_or_create(&vec![
                    ("queue", d.queue.clone()),
                    ("state", kind.to_string()),
                ])
                .set(n as i64);
        }
    }
    let since = now - TimeDelta::hours(1);
    m.failed_jobs_last_hour
        .set(failed_jobs::count_since(&rt.db, since).await? as i64);
    m.outbox_backlog.set(outbox::backlog(&rt.db).await?);
    let oldest = outbox::oldest_unprocessed(&rt.db).await?;
    m.outbox_oldest_age_seconds
        .set(oldest.map_or(0, |t| (now - t).num_seconds().max(0)));
    m.live_workers
        .set(heartbeats::alive(&rt.db, now).await?.len() as i64);
    let schedulers = heartbeats::alive_schedulers(&rt.db, now).await?;
    m.live_schedulers.set(schedulers.len() as i64);
    m.schedule_hashes
        .set(heartbeats::schedule_hashes(&schedulers).len() as i64);
    let last_minute = queue_minutes::minute_of(now) - 1;
    m.jobs_per_minute.clear();
    for ((minute, queue), c) in queue_minutes::since(&rt.db, last_minute).await? {
        if minute != last_minute {
            continue;
        }
        for (outcome, n) in [("processed", c.processed), ("failed", c.failed)] {
            m.jobs_per_minute
                .get_or_create(&vec![
                    ("queue", queue.clone()),
                    ("outcome", outcome.to_string()),
                ])
                .set(n);
        }
    }
    if let Some(schedule) = state.schedule() {
        let mut overdue = 0;
        for entry in schedule.enabled() {
            let (last, first) = schedule_runs::last_success_and_first(&rt.db, &entry.name).await?;
            if let Some(t) = last {
                m.last_success
                    .get_or_create(&vec![("entry", entry.name.clone())])
                    .set(t.timestamp() as f64);
            }
            if health::judge(entry, last, first, now) == Health::Overdue {
                overdue += 1;
            }
        }
        m.overdue_entries.set(overdue);
    }
    Ok(())
}
