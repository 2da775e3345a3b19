//! Prometheus metrics (`GET /metrics`), through `prometheus-client`.
//!
//! Counters and histograms that change as work happens (jobs, scheduler lag, HTTP requests,
//! rejected webhooks) are updated in place by the code that does the work. Figures that need
//! a query (queue depth, outbox backlog, live workers, last successes) are gauges the HTTP
//! edge sets when it is scraped, from a short cache, never per job.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A metric's labels, as name/value pairs.
pub type Labels = Vec<(&'static str, String)>;

type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn job_buckets() -> Histogram {
    // 1 ms to about 16 minutes.
    Histogram::new(exponential_buckets(0.001, 4.0, 11))
}

/// Every metric conecta exports.
pub struct Metrics {
    registry: Registry,
    /// Jobs finished, by queue, job name and outcome (`succeeded`, `failed`, `released`).
    pub jobs: Family<Labels, Counter>,
    /// How long jobs ran, by queue and job name.
    pub job_seconds: Histograms,
    /// Fire instant minus due instant of scheduled occurrences (jitter excluded).
    pub scheduler_lag: Histogram,
    /// HTTP requests by route and status.
    pub http_requests: Family<Labels, Counter>,
    /// Payment webhooks rejected, by reason.
    pub webhooks_rejected: Family<Labels, Counter>,
    /// Writes that failed, by kind of state (see `outage::Write`).
    pub failed_writes: Family<Labels, Counter>,
    /// Jobs per queue and state (`pending`, `reserved`, `delayed`); set when scraped.
    pub queue_jobs: Family<Labels, Gauge>,
    /// Jobs that failed in the last hour; set when scraped.
    pub failed_jobs_last_hour: Gauge,
    /// Outbox messages not yet published; set when scraped.
    pub outbox_backlog: Gauge,
    /// Age in seconds of the oldest unpublished outbox message (0 when none); set when scraped.
    pub outbox_oldest_age_seconds: Gauge,
    /// Workers with a recent heartbeat; set when scraped.
    pub live_workers: Gauge,
    /// Schedulers with a recent heartbeat; set when scraped.
    pub live_schedulers: Gauge,
    /// Unix time of each entry's last successful scheduled run; set when scraped.
    pub last_success: Family<Labels, Gauge<f64, AtomicU64>>,
    /// Entries whose last success is older than two of their periods; set when scraped.
    pub overdue_entries: Gauge,
    /// Distinct schedule hashes among live schedulers; set when scraped.
    pub schedule_hashes: Gauge,
    /// Jobs the fleet finished in the last complete minute, by queue and outcome; set when
    /// scraped.
    pub jobs_per_minute: Family<Labels, Gauge>,
    /// Serialises scrapes (the gauges above are set, then read, as one).
    pub scrape: tokio::sync::Mutex<()>,
    /// Jobs finished in this process by queue, job name and outcome, for a rehearsal's
    /// summary and the worker's per-minute counts.
    tally: std::sync::Mutex<std::collections::BTreeMap<(String, String, &'static str), u64>>,
    /// The part of [`Metrics::queue_tally`] already handed out by [`Metrics::unflushed`].
    flushed: std::sync::Mutex<std::collections::BTreeMap<String, (u64, u64)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("conecta");
        let jobs = Family::<Labels, Counter>::default();
        registry.register(
            "jobs",
            "Jobs finished, by queue, job and outcome",
            jobs.clone(),
        );
        let job_seconds = Histograms::new_with_constructor(job_buckets as fn() -> Histogram);
        registry.register(
            "job_duration_seconds",
            "How long jobs ran, by queue and job",
            job_seconds.clone(),
        );
        let scheduler_lag = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "scheduler_lag_seconds",
            "Fire instant minus due instant of scheduled occurrences",
            scheduler_lag.clone(),
        );
        let http_requests = Family::<Labels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        let webhooks_rejected = Family::<Labels, Counter>::default();
        registry.register(
            "webhooks_rejected",
            "Payment webhooks rejected, by reason",
            webhooks_rejected.clone(),
        );
        let failed_writes = Family::<Labels, Counter>::default();
        registry.register(
            "failed_writes",
            "Writes of daemon state that failed, by kind of state",
            failed_writes.clone(),
        );
        let queue_jobs = Family::<Labels, Gauge>::default();
        registry.register("queue_jobs", "Jobs per queue and state", queue_jobs.clone());
        let failed_jobs_last_hour = Gauge::default();
        registry.register(
            "failed_jobs_last_hour",
            "Jobs that failed in the last hour",
            failed_jobs_last_hour.clone(),
        );
        let outbox_backlog = Gauge::default();
        registry.register(
            "outbox_backlog",
            "Outbox messages not yet published",
            outbox_backlog.clone(),
        );
        let outbox_oldest_age_seconds = Gauge::default();
        registry.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox message",
            outbox_oldest_age_seconds.clone(),
        );
        let live_workers = Gauge::default();
        registry.register(
            "live_workers",
            "Workers with a recent heartbeat",
            live_workers.clone(),
        );
        let live_schedulers = Gauge::default();
        registry.register(
            "live_schedulers",
            "Schedulers with a recent heartbeat",
            live_schedulers.clone(),
        );
        let last_success = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "schedule_last_success_timestamp_seconds",
            "Unix time of each entry's last successful scheduled run",
            last_success.clone(),
        );
        let overdue_entries = Gauge::default();
        registry.register(
            "schedule_overdue_entries",
            "Entries whose last success is older than two of their periods",
            overdue_entries.clone(),
        );
        let schedule_hashes = Gauge::default();
        registry.register(
            "schedule_hashes",
            "Distinct schedule file hashes among live schedulers (above 1: they disagree on what is due)",
            schedule_hashes.clone(),
        );
        let jobs_per_minute = Family::<Labels, Gauge>::default();
        registry.register(
            "queue_jobs_per_minute",
            "Jobs finished by the whole fleet in the last complete minute, by queue and outcome (processed, failed)",
            jobs_per_minute.clone(),
        );
        Self {
            registry,
            jobs,
            schedule_hashes,
            jobs_per_minute,
            job_seconds,
            scheduler_lag,
            http_requests,
            webhooks_rejected,
            failed_writes,
            queue_jobs,
            failed_jobs_last_hour,
            outbox_backlog,
            outbox_oldest_age_seconds,
            live_workers,
            live_schedulers,
            last_success,
            overdue_entries,
            scrape: tokio::sync::Mutex::new(()),
            tally: Default::default(),
            flushed: Default::default(),
        }
    }

    /// Jobs finished in this process: (queue, job name, outcome) and how many.
    pub fn job_tally(&self) -> Vec<((String, String, &'static str), u64)> {
        let tally = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        tally.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Jobs finished in this process per queue: (processed, failed), where processed counts
    /// jobs that left the queue done (succeeded or skipped) and failed those moved to
    /// `failed_jobs`.
    pub fn queue_tally(&self) -> std::collections::BTreeMap<String, (u64, u64)> {
        let mut out = std::collections::BTreeMap::<String, (u64, u64)>::new();
        for ((queue, _, outcome), n) in self.job_tally() {
            let row = out.entry(queue).or_default();
            match outcome {
                "succeeded" | "skipped" => row.0 += n,
                "failed" => row.1 += n,
                _ => {}
            }
        }
        out
    }

    /// Counts one finished job.
    pub fn job_finished(&self, queue: &str, job: &str, outcome: &'static str, seconds: f64) {
        *self
            .tally
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((queue.to_string(), job.to_string(), outcome))
            .or_default() += 1;
        self.jobs
            .get_or_create(&vec![
                ("queue", queue.to_string()),
                ("job", job.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
        self.job_seconds
            .get_or_create(&vec![
                ("queue", queue.to_string()),
                ("job", job.to_string()),
            ])
            .observe(seconds);
    }

    /// What [`Metrics::queue_tally`] gained since the last call, per queue: (processed,
    /// failed). Each finished job is handed out once, however many workers of this process
    /// ask.
    pub fn unflushed(&self) -> Vec<(String, u64, u64)> {
        let now = self.queue_tally();
        let mut flushed = self.flushed.lock().unwrap_or_else(|p| p.into_inner());
        let mut gained = Vec::new();
        for (queue, (p, f)) in &now {
            let (p0, f0) = flushed.get(queue).copied().unwrap_or_default();
            if *p > p0 || *f > f0 {
                gained.push((queue.clone(), p - p0, f - f0));
            }
        }
        *flushed = now;
        gained
    }

    /// Everything, in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_job_shows_in_the_text() {
        let m = Metrics::new();
        m.job_finished("default", "diagnostics:noop", "succeeded", 0.002);
        let text = m.render();
        assert!(
            text.contains(
                "conecta_jobs_total{queue=\"default\",job=\"diagnostics:noop\",outcome=\"succeeded\"} 1"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
