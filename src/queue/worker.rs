//! The worker loop (`conecta worker`): `--concurrency` slots, each reserving from the queues in
//! priority order and handing jobs to the runtime, until a stop condition.
//!
//! Stopping is always graceful: a stop (signal, `queue restart`, `--max-time`, `--max-jobs`,
//! `--memory`, `--stop-when-empty`) stops reservations; every job in hand is finished and
//! settled before `run` returns. A worker must never abandon a reserved job on purpose.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::Instrument;

use super::runtime::{Defaults, Outcome};
use super::{QueueError, Runtime};
use crate::outage::{Backoff, Classify, Dependency, ErrorKind, Write};
use crate::stop::{StopHandle, StopReason};
use crate::store::heartbeats::{self, Heartbeat};
use crate::store::queue_minutes;

/// `conecta worker` flags (Laravel's meanings).
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Queues in priority order (`--queue high,default`).
    pub queues: Vec<String>,
    /// How long to wait when there is no job (`--sleep`).
    pub sleep: Duration,
    /// Tries, timeout and backoff when the job does not say.
    pub defaults: Defaults,
    /// Exit after this long (`--max-time`).
    pub max_time: Option<Duration>,
    /// Exit after this many jobs (`--max-jobs`).
    pub max_jobs: Option<u64>,
    /// Exit when resident memory exceeds this many MB (`--memory`).
    pub memory_mb: Option<u64>,
    /// Jobs run at once (`--concurrency`).
    pub concurrency: usize,
    /// Exit when the queues are empty (`--stop-when-empty`).
    pub stop_when_empty: bool,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            queues: vec!["default".into()],
            sleep: Duration::from_secs(3),
            defaults: Defaults {
                tries: 1,
                timeout: 60,
                backoff: 0,
            },
            max_time: None,
            max_jobs: None,
            memory_mb: None,
            concurrency: 1,
            stop_when_empty: false,
        }
    }
}

/// Resident memory of this process in MB (Linux; 0 where unknown).
pub fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096 / (1024 * 1024))
        .unwrap_or(0)
}

/// Peak resident memory of this process in KB (Linux `VmHWM`; 0 where unknown).
pub fn peak_rss_kb() -> u64 {
    proc_status_kb("self", "VmHWM:")
}

/// Resident memory of process `pid` in KB (Linux `VmRSS`; 0 where unknown).
pub fn rss_kb_of(pid: u32) -> u64 {
    proc_status_kb(&pid.to_string(), "VmRSS:")
}

fn proc_status_kb(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// What a finished worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Why it stopped.
    pub reason: StopReason,
    /// Jobs it settled (succeeded, released, failed or skipped).
    pub processed: u64,
}

/// Runs a worker until a stop condition; every job in hand is settled before it returns.
pub async fn run(
    rt: Runtime,
    opts: WorkerOptions,
    stop: StopHandle,
) -> Result<Summary, QueueError> {
    let started = rt.clock.now();
    let id = uuid::Uuid::now_v7().to_string();
    // A worker started while the database is away waits for it (a stop ends the wait).
    let restart_at_start = match rt
        .outages
        .retry(
            "read the restart signal",
            || stop.is_stopped(),
            || heartbeats::read_signal(&rt.db, "restart"),
        )
        .await
    {
        Ok(v) => v,
        Err(_) if stop.is_stopped() => {
            return Ok(Summary {
                reason: stop.reason(),
                processed: 0,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let processed = Arc::new(AtomicU64::new(0));
    let claimed = Arc::new(AtomicU64::new(0));
    let template = Heartbeat {
        id: id.clone(),
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        pid: std::process::id() as i64,
        connection: rt.queue.connection().to_string(),
        queues: opts.queues.join(","),
        started_at: started,
        last_seen_at: started,
        jobs_processed: 0,
        status: String::new(),
    };
    let beat = move |status: &str, now: DateTime<Utc>, done: u64| Heartbeat {
        last_seen_at: now,
        jobs_processed: done as i64,
        status: status.to_string(),
        ..template.clone()
    };
    if let Err(e) = heartbeats::beat(&rt.db, &beat("running", started, 0)).await {
        rt.outages
            .write_failed(Write::Heartbeat, &id, "write the worker heartbeat", &e);
        rt.outages
            .observe::<(), _>(Dependency::Database, "write the worker heartbeat", &Err(e));
    }
    tracing::info!(worker = %id, queues = %opts.queues.join(","), concurrency = opts.concurrency, connection = rt.queue.connection(), "worker started");

    // Succeeded jobs are acknowledged in groups by one task; the slots do not wait for it.
    let (acks, acks_in) = tokio::sync::mpsc::channel(ACK_BUFFER);
    let acker = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.acknowledge_batched(acks_in).await })
    };
    let slot_rt = Runtime {
        acks: Some(acks),
        ..rt.clone()
    };
    let feed = Arc::new(Feed::default());
    let mut slots = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let rt = slot_rt.clone();
        let opts = opts.clone();
        let stop = stop.clone();
        let processed = processed.clone();
        let claimed = claimed.clone();
        let feed = feed.clone();
        slots.push(tokio::spawn(async move {
            slot(rt, opts, stop, processed, claimed, feed).await
        }));
    }
    drop(slot_rt);

    // Housekeeping on real time: heartbeats, restart signal, max-time and memory.
    let housekeeping = {
        let rt = rt.clone();
        let stop = stop.clone();
        let opts = opts.clone();
        let processed = processed.clone();
        let beat = beat.clone();
        let id = id.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            let mut n: u64 = 0;
            let mut minutes = queue_minutes::Minutes::new();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.stopped() => return minutes,
                }
                n += 1;
                let now = rt.clock.now();
                if let Some(max) = opts.max_time
                    && now - started >= TimeDelta::from_std(max).unwrap_or(TimeDelta::MAX)
                {
                    stop.stop(StopReason::MaxTime);
                }
                if let Some(mb) = opts.memory_mb
                    && rss_mb() > mb
                {
                    stop.stop(StopReason::Memory);
                }
                let signal = heartbeats::read_signal(&rt.db, "restart").await;
                rt.outages
                    .observe(Dependency::Database, "read the restart signal", &signal);
                if let Ok(v) = signal
                    && v != restart_at_start
                {
                    stop.stop(StopReason::Restart);
                }
                if n.is_multiple_of(4) {
                    // While a dependency is away the heartbeat says so: `queue status` shows
                    // "waiting for Redis since …".
                    let status = rt.outages.waiting().unwrap_or_else(|| "running".into());
                    let wrote = heartbeats::beat(
                        &rt.db,
                        &beat(&status, now, processed.load(Ordering::SeqCst)),
                    )
                    .await;
                    if let Err(e) = &wrote {
                        rt.outages.write_failed(
                            Write::Heartbeat,
                            &id,
                            "write the worker heartbeat",
                            e,
                        );
                    }
                    rt.outages
                        .observe(Dependency::Database, "write the worker heartbeat", &wrote);
                    count_minutes(&rt, &mut minutes, &id).await;
                    if n % 600 == 4 {
                        crate::store::skew::check(&rt.db, n == 4).await;
                    }
                }
            }
        }
    };
    let housekeeping = tokio::spawn(housekeeping);

    let mut first_error = None;
    for s in slots {
        match s.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                stop.stop(StopReason::Signal);
                first_error.get_or_insert(e);
            }
            Err(join) => {
                stop.stop(StopReason::Signal);
                tracing::error!(error = %join, "worker slot panicked");
            }
        }
    }
    stop.stop(StopReason::Signal);
    // Jobs reserved ahead that no slot started go back, runnable at once, their attempt
    // not counted.
    feed.hand_back(&rt).await;
    if let Err(e) = acker.await {
        tracing::error!(error = %e, "the worker's acknowledgement task panicked");
    }
    let mut minutes = match housekeeping.await {
        Ok(minutes) => minutes,
        Err(e) => {
            tracing::error!(error = %e, "the worker's heartbeat task panicked");
            queue_minutes::Minutes::new()
        }
    };
    count_minutes(&rt, &mut minutes, &id).await;
    let done = processed.load(Ordering::SeqCst);
    if let Err(e) = heartbeats::beat(&rt.db, &beat("stopped", rt.clock.now(), done)).await {
        rt.outages.write_failed(
            Write::Heartbeat,
            &id,
            "record the worker's stop; its heartbeat ages out",
            &e,
        );
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let reason = stop.reason();
    tracing::info!(worker = %id, processed = done, "worker stopped: {}", reason.describe());
    Ok(Summary {
        reason,
        processed: done,
    })
}

/// The dependency the worker's queue lives in.
fn queue_dependency(rt: &Runtime) -> Dependency {
    if rt.queue.connection() == "redis" {
        Dependency::Redis
    } else {
        Dependency::Database
    }
}

/// After a failed queue operation: a configuration error ends the worker (exit 2); anything
/// else is logged once per outage and waited out with backoff. False when a stop came first.
async fn pause(
    rt: &Runtime,
    stop: &StopHandle,
    backoff: &mut Backoff,
    what: &str,
    error: &QueueError,
) -> Result<bool, QueueError> {
    match error.kind() {
        ErrorKind::Configuration(m) => return Err(QueueError::Config(m)),
        ErrorKind::Unavailable(dep) => rt.outages.went_away(dep, what, error),
        // Not an outage, but no reason to die either (a corrupt key, a bug): say so, retry.
        ErrorKind::Other => tracing::error!(error = %error, "cannot {what}; retrying"),
    }
    tokio::select! {
        _ = backoff.wait() => Ok(!stop.is_stopped()),
        _ = stop.stopped() => Ok(false),
    }
}

async fn slot(
    rt: Runtime,
    opts: WorkerOptions,
    stop: StopHandle,
    processed: Arc<AtomicU64>,
    claimed: Arc<AtomicU64>,
    feed: Arc<Feed>,
) -> Result<(), QueueError> {
    let mut backoff = Backoff::default();
    // Whether the acknowledgements were flushed since this slot last found a job.
    let mut flushed = false;
    while !stop.is_stopped() {
        if let Some(max) = opts.max_jobs
            && claimed.fetch_add(1, Ordering::SeqCst) >= max
        {
            stop.stop(StopReason::MaxJobs);
            break;
        }
        let reserved = feed.next(&rt, &opts, &claimed).await;
        if let Err(e) = &reserved {
            if opts.max_jobs.is_some() {
                claimed.fetch_sub(1, Ordering::SeqCst);
            }
            if !pause(&rt, &stop, &mut backoff, "reserve a job", e).await? {
                break;
            }
            continue;
        }
        rt.outages.came_back(queue_dependency(&rt));
        backoff.reset();
        let Some(job) = reserved? else {
            if opts.max_jobs.is_some() {
                claimed.fetch_sub(1, Ordering::SeqCst);
            }
            if opts.stop_when_empty {
                // As Laravel's: the queues were empty when looked at, after the jobs already
                // finished are settled (a batch's `then` job is enqueued then). Other slots
                // finish the jobs they hold before the worker returns.
                if !flushed && flush_acks(&rt).await {
                    flushed = true;
                    continue;
                }
                stop.stop(StopReason::Empty);
                break;
            }
            let waited = tokio::select! {
                r = rt.queue.wait_for_work(&opts.queues, rt.clock.real_span(opts.sleep)) => match r {
                    Ok(w) => w,
                    Err(e) => {
                        if !pause(&rt, &stop, &mut backoff, "wait for work", &e).await? {
                            break;
                        }
                        continue;
                    }
                },
                _ = stop.stopped() => break,
            };
            if !waited {
                let until = rt.clock.now()
                    + TimeDelta::from_std(opts.sleep).unwrap_or(TimeDelta::seconds(3));
                tokio::select! {
                    _ = rt.clock.sleep_until(until) => {}
                    _ = stop.stopped() => break,
                }
            }
            continue;
        };
        flushed = false;
        let uuid = job.uuid();
        let watch = crate::clock::Stopwatch::start();
        tracing::debug!(uuid = %uuid, attempt = job.attempts, started_at_us = rt.clock.now().timestamp_micros(), "job started");
        let span =
            tracing::info_span!("job", queue = %job.queue, uuid = %uuid, attempt = job.attempts);
        let outcome = match rt
            .process(job, &opts.defaults)
            .instrument(span.clone())
            .await
        {
            Ok(o) => o,
            Err(e) => {
                // Settling gave up (the dependency stayed away past QUEUE_RETRY_AFTER) or a
                // step before the handler failed: the job stays reserved and is redelivered.
                tracing::warn!(parent: &span, error = %e, "job not settled: it will be redelivered after QUEUE_RETRY_AFTER");
                if !pause(&rt, &stop, &mut backoff, "settle a job", &e).await? {
                    break;
                }
                continue;
            }
        };
        let _guard = span.enter();
        match &outcome {
            Outcome::Failed(_) => {}
            Outcome::Released(d) => tracing::info!(retry_in = ?d, "released for retry"),
            Outcome::Succeeded | Outcome::Skipped => tracing::debug!(?outcome, "done"),
        }
        feed.took(watch.elapsed());
        processed.fetch_add(1, Ordering::SeqCst);
        if let Some(mb) = opts.memory_mb
            && rss_mb() > mb
        {
            stop.stop(StopReason::Memory);
        }
    }
    Ok(())
}

/// Adds the jobs this process finished since the last call to the fleet's per-minute counts
/// (`queue_minutes`), in the current minute. Counts that cannot be written stay in `minutes`
/// for the next heartbeat.
async fn count_minutes(rt: &Runtime, minutes: &mut queue_minutes::Minutes, worker: &str) {
    let minute = queue_minutes::minute_of(rt.clock.now());
    for (queue, processed, failed) in rt.metrics.unflushed() {
        let c = minutes.entry((minute, queue)).or_default();
        c.processed += processed as i64;
        c.failed += failed as i64;
    }
    if minutes.is_empty() {
        return;
    }
    match queue_minutes::add(&rt.db, minutes).await {
        Ok(()) => minutes.clear(),
        Err(e) => rt.outages.write_failed(
            Write::Heartbeat,
            worker,
            "add the per-minute job counts; they are kept for the next heartbeat",
            &e,
        ),
    }
}

/// How many succeeded jobs may wait for the acknowledgement task before slots wait for it.
const ACK_BUFFER: usize = 512;

/// Reservations a worker runs at once: one round trip overlaps the next.
const RESERVERS: usize = 2;

/// The most jobs one reservation takes for the local buffer.
const MAX_PREFETCH: usize = 256;

/// How much work, in time, a reservation takes ahead per slot: enough that fast jobs cost one
/// round trip per hundreds, little enough that slow jobs are never taken ahead of a free slot.
const PREFETCH_WINDOW_US: u64 = 50_000;

/// The worker's local buffer: jobs reserved in one round trip and started by whichever slot
/// is free next (graphile-worker's "local queue"). It holds at most what the slots would
/// finish within [`PREFETCH_WINDOW_US`] at the mean job time seen so far; a job that waited in
/// it for half of `QUEUE_RETRY_AFTER` goes back instead of running, since its reservation is
/// about to expire and another worker may take it.
struct Feed {
    jobs: std::sync::Mutex<std::collections::VecDeque<(super::Reserved, DateTime<Utc>)>>,
    /// One reservation at a time; slots with an empty buffer wait for it, then take from the
    /// buffer.
    refill: Arc<tokio::sync::Semaphore>,
    /// The reservation running in the background while the buffer is still half full.
    ahead: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set when the worker stops: nothing more is reserved ahead.
    closed: std::sync::atomic::AtomicBool,
    /// Mean microseconds a job took (an exponential moving average); 0 before the first.
    mean_us: AtomicU64,
}

/// What a slot that found the buffer empty gets.
enum Refill {
    /// The first job of the reservation it made.
    Fresh(super::Reserved),
    /// A job another reservation buffered meanwhile, with when it was reserved.
    Buffered((super::Reserved, DateTime<Utc>)),
    /// Nothing: the queues are empty.
    Empty,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            jobs: Default::default(),
            refill: Arc::new(tokio::sync::Semaphore::new(RESERVERS)),
            ahead: Default::default(),
            closed: Default::default(),
            mean_us: Default::default(),
        }
    }
}

impl Feed {
    fn pop(&self) -> Option<(super::Reserved, DateTime<Utc>)> {
        self.jobs.lock().expect("feed").pop_front()
    }

    /// Adds jobs reserved at `at` to the buffer.
    fn push(&self, jobs: impl IntoIterator<Item = super::Reserved>, at: DateTime<Utc>) {
        self.jobs
            .lock()
            .expect("feed")
            .extend(jobs.into_iter().map(|j| (j, at)));
    }

    /// The next job for a slot: from the buffer, else from one reservation of as many jobs as
    /// the buffer should hold. `None` when the queues have nothing ready.
    async fn next(
        self: &Arc<Self>,
        rt: &Runtime,
        opts: &WorkerOptions,
        claimed: &AtomicU64,
    ) -> Result<Option<super::Reserved>, QueueError> {
        let stale = TimeDelta::from_std(rt.settle_within / 2).unwrap_or(TimeDelta::MAX);
        loop {
            let (job, at) = match self.pop() {
                Some(j) => j,
                None => match self.reserve(rt, opts, claimed).await? {
                    Refill::Fresh(job) => return Ok(Some(job)),
                    Refill::Buffered(j) => j,
                    Refill::Empty => return Ok(None),
                },
            };
            if rt.clock.now() - at < stale {
                self.top_up(rt, opts, claimed);
                return Ok(Some(job));
            }
            hand_back_one(rt, &job).await;
        }
    }

    /// A slot found the buffer empty: reserves for it, keeping the extras. Empty only when
    /// the queues are, which is known once no other reservation is on its way.
    async fn reserve(
        &self,
        rt: &Runtime,
        opts: &WorkerOptions,
        claimed: &AtomicU64,
    ) -> Result<Refill, QueueError> {
        let turn = self.refill.acquire().await.expect("never closed");
        // Another reservation may have filled the buffer while this slot waited its turn.
        if let Some(j) = self.pop() {
            return Ok(Refill::Buffered(j));
        }
        let now = rt.clock.now();
        let mut got = rt
            .queue
            .reserve_many(&opts.queues, self.want(opts, claimed), now)
            .await?
            .into_iter();
        if let Some(first) = got.next() {
            self.push(got, now);
            return Ok(Refill::Fresh(first));
        }
        // Another reservation may still be on its way with the last jobs.
        drop(turn);
        let _all = self
            .refill
            .acquire_many(RESERVERS as u32)
            .await
            .expect("never closed");
        Ok(self.pop().map_or(Refill::Empty, Refill::Buffered))
    }

    /// When the buffer is down to half of what it should hold, reserves the rest in the
    /// background, so the slots do not wait for the round trip.
    fn top_up(self: &Arc<Self>, rt: &Runtime, opts: &WorkerOptions, claimed: &AtomicU64) {
        if opts.max_jobs.is_some() || self.closed.load(Ordering::SeqCst) {
            return;
        }
        let want = self.want(opts, claimed);
        let held = self.jobs.lock().expect("feed").len();
        if want < 4 || held * 2 > want {
            return;
        }
        let Ok(turn) = self.refill.clone().try_acquire_owned() else {
            return;
        };
        let (feed, rt, queues) = (self.clone(), rt.clone(), opts.queues.clone());
        let task = tokio::spawn(async move {
            let now = rt.clock.now();
            match rt.queue.reserve_many(&queues, want - held, now).await {
                Ok(got) => feed.push(got, now),
                // The slots meet the same error on their next reservation and back off.
                Err(e) => tracing::debug!(error = %e, "reserving ahead failed"),
            }
            drop(turn);
        });
        *self.ahead.lock().expect("feed") = Some(task);
    }

    /// How many jobs the next reservation takes.
    fn want(&self, opts: &WorkerOptions, claimed: &AtomicU64) -> usize {
        let slots = opts.concurrency.max(1) as u64;
        let mean = self.mean_us.load(Ordering::Relaxed);
        let ahead = if mean == 0 {
            slots
        } else {
            slots.saturating_mul(PREFETCH_WINDOW_US) / mean.max(1)
        };
        let mut want = ahead.clamp(1, MAX_PREFETCH as u64);
        if let Some(max) = opts.max_jobs {
            // The slot asking has counted its own job already.
            let left = max.saturating_sub(claimed.load(Ordering::SeqCst)) + 1;
            want = want.min(left.max(1));
        }
        want as usize
    }

    /// A job took `spent`: fold it into the mean.
    fn took(&self, spent: Duration) {
        let us = (spent.as_micros() as u64).max(1);
        let old = self.mean_us.load(Ordering::Relaxed);
        let new = if old == 0 { us } else { (old * 7 + us) / 8 };
        self.mean_us.store(new.max(1), Ordering::Relaxed);
    }

    /// Puts back every job still buffered.
    async fn hand_back(&self, rt: &Runtime) {
        self.closed.store(true, Ordering::SeqCst);
        let ahead = self.ahead.lock().expect("feed").take();
        if let Some(task) = ahead {
            let _ = task.await;
        }
        while let Some((job, _)) = self.pop() {
            hand_back_one(rt, &job).await;
        }
    }
}

/// Makes a reserved job that was never started runnable again at once, its delivery not
/// counted as an attempt. If that fails the job is redelivered after `QUEUE_RETRY_AFTER`.
async fn hand_back_one(rt: &Runtime, job: &super::Reserved) {
    if let Err(e) = rt.queue.postpone(job, Duration::ZERO, rt.clock.now()).await {
        tracing::warn!(uuid = %job.uuid(), error = %e, "a job taken ahead could not be handed back: it will be redelivered after QUEUE_RETRY_AFTER");
    }
}

/// Waits until the acknowledgement task has settled everything sent before; true if there
/// was one to ask.
async fn flush_acks(rt: &Runtime) -> bool {
    let Some(acks) = &rt.acks else { return false };
    let (done, settled) = tokio::sync::oneshot::channel();
    if acks.send(super::runtime::Ack::Flush(done)).await.is_err() {
        return false;
    }
    settled.await.is_ok()
}
