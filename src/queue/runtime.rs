//! The runtime: one job's life from reservation to a terminal state, the same on every driver.
//!
//! Order matters for "no job ever lost": a final failure is written to `failed_jobs` *before*
//! the job leaves the queue, so a crash in between leaves a duplicate to clean up, never a
//! hole. Unique locks are released on every terminal path as the job's `unique_until` says.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use futures::FutureExt;
use serde_json::Value;

use super::registry::Handler;
use super::{
    Enqueued, Envelope, JobContext, JobError, NewJob, Queue, QueueError, Registry, Reserved,
    UniqueUntil,
};
use crate::clock::SharedClock;
use crate::outage::Write;
use crate::settings::Settings;
use crate::store::{Db, batches, failed_jobs};

/// What a worker applies when the job does not say.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// Attempts allowed (`--tries`); 0 means unlimited.
    pub tries: u32,
    /// Seconds a run may take (`--timeout`).
    pub timeout: u64,
    /// Seconds before a retry when the job has no backoff list (`--backoff`).
    pub backoff: u64,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            tries: 1,
            timeout: 60,
            backoff: 0,
        }
    }
}

/// How one processed job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its handler succeeded; it left the queue.
    Succeeded,
    /// It goes back to the queue, runnable again after this delay.
    Released(Duration),
    /// It is in `failed_jobs` with this exception.
    Failed(String),
    /// Its batch was cancelled; it left the queue without running.
    Skipped,
}

/// A queue, the database, the handlers and the clock, wired together.
#[derive(Clone)]
pub struct Runtime {
    /// The queue driver.
    pub queue: Arc<dyn Queue>,
    /// The database (failed jobs, batches, heartbeats).
    pub db: Db,
    /// The handlers.
    pub registry: Arc<Registry>,
    /// The clock.
    pub clock: SharedClock,
    /// What tasks need from the configuration (mailer, zone, progress display).
    pub settings: Arc<Settings>,
    /// Which dependencies are away, shared by every loop of the process.
    pub outages: Arc<crate::outage::Outages>,
    /// What `/metrics` exports, shared by every loop of the process.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// How long settling a finished job (ack, release, failure record, batch counters) keeps
    /// retrying while Redis or the database is away: `QUEUE_RETRY_AFTER`, after which the job
    /// is redelivered anyway.
    pub settle_within: Duration,
    /// Where a worker collects succeeded jobs to acknowledge many per round trip (see
    /// [`Runtime::acknowledge_batched`]); `None` acknowledges each one before `process`
    /// returns.
    pub acks: Option<tokio::sync::mpsc::Sender<Ack>>,
}

/// What a worker's slots send its acknowledgement task.
#[derive(Debug)]
pub enum Ack {
    /// A job that succeeded.
    Job(Box<Reserved>),
    /// Answer once everything sent before is settled (a `--stop-when-empty` worker asks before
    /// it concludes the queues are empty: a batch's `then` job may be on its way).
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The most succeeded jobs one acknowledgement takes.
const ACK_GROUP: usize = 500;

/// How long the acknowledgement task gathers finished jobs before it removes them.
const ACK_LINGER: Duration = Duration::from_millis(2);

/// Runtime errors: the queue or the database failed.
pub type Result<T> = std::result::Result<T, QueueError>;

impl Runtime {
    /// A runtime with default [`Settings`] (log mailer, UTC, no progress bars).
    pub fn new(queue: Arc<dyn Queue>, db: Db, registry: Arc<Registry>, clock: SharedClock) -> Self {
        Self {
            queue,
            db,
            registry,
            outages: Arc::new(crate::outage::Outages::new(clock.clone())),
            metrics: Arc::new(crate::metrics::Metrics::new()),
            clock,
            settings: Arc::new(Settings::default()),
            settle_within: Duration::from_secs(90),
            acks: None,
        }
    }

    /// Runs one step of settling a job (`what`), retrying while its dependency is away, for
    /// at most [`Runtime::settle_within`]: a job that ran is acknowledged when Redis or the
    /// database comes back, or redelivered after `QUEUE_RETRY_AFTER`; never lost, never failed
    /// for the outage.
    pub async fn settle<T, F, Fut>(&self, about: (Write, &str), what: &str, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let watch = crate::clock::Stopwatch::start();
        let limit = self.settle_within;
        self.outages
            .retry_write(about, what, || watch.elapsed() >= limit, op)
            .await
    }

    /// Every job still in `queue`, whatever its state (pending, reserved or delayed).
    pub async fn jobs_in(&self, queue: &str) -> Result<u64> {
        Ok(self
            .queue
            .depths(self.clock.now())
            .await?
            .iter()
            .filter(|d| d.queue == queue)
            .map(|d| d.pending + d.reserved + d.delayed)
            .sum())
    }

    /// This runtime drawing task progress as `progress` says (bars for work run by hand).
    pub fn with_progress(mut self, progress: crate::progress::Progress) -> Self {
        let mut settings = (*self.settings).clone();
        settings.progress = progress;
        self.settings = Arc::new(settings);
        self
    }

    /// The context a handler runs with.
    pub fn context(&self, uuid: String, attempts: u32, queue: &str) -> JobContext {
        JobContext {
            clock: self.clock.clone(),
            db: self.db.clone(),
            uuid,
            attempts,
            queue: queue.to_string(),
            rt: Runtime {
                acks: None,
                ..self.clone()
            },
        }
    }

    /// Enqueues one job. On the `sync` connection it also runs it right away.
    pub async fn dispatch(&self, job: NewJob) -> Result<Enqueued> {
        let queue = job.queue.clone();
        let answer = self.queue.enqueue(job, self.clock.now()).await?;
        if self.queue.connection() == "sync" && !answer.is_duplicate() {
            self.drain_inline(&queue).await?;
        }
        Ok(answer)
    }

    /// Enqueues a chunk in one round trip.
    pub async fn dispatch_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        let queues: Vec<String> = jobs.iter().map(|j| j.queue.clone()).collect();
        let answers = self.queue.enqueue_bulk(jobs, self.clock.now()).await?;
        if self.queue.connection() == "sync" {
            let mut seen = std::collections::HashSet::new();
            for q in queues {
                if seen.insert(q.clone()) {
                    self.drain_inline(&q).await?;
                }
            }
        }
        Ok(answers)
    }

    /// The `sync` connection: each job runs once, inline; a failure goes straight to
    /// `failed_jobs`, since nothing would keep a retry alive past this process.
    async fn drain_inline(&self, queue: &str) -> Result<()> {
        let queues = [queue.to_string()];
        let defaults = Defaults {
            tries: 1,
            ..Defaults::default()
        };
        while let Some(job) = self.queue.reserve(&queues, self.clock.now()).await? {
            self.process(job, &defaults).await?;
        }
        Ok(())
    }

    /// Enqueues `jobs` as one batch, chunk by chunk, counting each chunk in before it is
    /// enqueued and its duplicates out after; `then` is enqueued once when the batch finishes.
    /// Returns the batch id and how many jobs were enqueued and how many were duplicates.
    pub async fn dispatch_batch(
        &self,
        name: &str,
        jobs: Vec<NewJob>,
        chunk: usize,
        then: Option<NewJob>,
        mut progress: impl FnMut(usize),
    ) -> Result<(String, usize, usize)> {
        let id = self.batch_begin(name, then).await?;
        let (mut enqueued, mut duplicates) = (0, 0);
        for part in jobs.chunks(chunk.max(1)) {
            let (e, d) = self.batch_add(&id, part.to_vec()).await?;
            enqueued += e;
            duplicates += d;
            progress(enqueued + duplicates);
        }
        self.batch_seal(&id).await?;
        Ok((id, enqueued, duplicates))
    }

    /// Opens a batch that is still being filled: it cannot finish before [`Self::batch_seal`].
    /// Fan-outs that stream their jobs chunk by chunk use this with [`Self::batch_add`].
    pub async fn batch_begin(&self, name: &str, then: Option<NewJob>) -> Result<String> {
        let then = then.map(serde_json::to_value).transpose()?;
        Ok(batches::create(&self.db, name, then, self.clock.now()).await?)
    }

    /// Enqueues one chunk into batch `id` in one round trip, counting the jobs in before and
    /// the duplicates out after. Returns how many were enqueued and how many were duplicates.
    pub async fn batch_add(&self, id: &str, jobs: Vec<NewJob>) -> Result<(usize, usize)> {
        self.batch_expect(id, jobs.len() as i64).await?;
        self.batch_add_expected(id, jobs).await
    }

    /// Counts `n` jobs into batch `id` ahead of enqueueing them (negative to take back an
    /// overestimate). A large fan-out counts its whole size once instead of once per chunk.
    pub async fn batch_expect(&self, id: &str, n: i64) -> Result<()> {
        if n != 0 {
            batches::add_jobs(&self.db, id, n).await?;
        }
        Ok(())
    }

    /// Enqueues a chunk already counted in with [`Self::batch_expect`]; duplicates are counted
    /// out. Returns how many were enqueued and how many were duplicates.
    pub async fn batch_add_expected(
        &self,
        id: &str,
        mut jobs: Vec<NewJob>,
    ) -> Result<(usize, usize)> {
        for j in &mut jobs {
            j.batch_id = Some(id.to_string());
        }
        let answers = self.dispatch_bulk(jobs).await?;
        let dup = answers.iter().filter(|a| a.is_duplicate()).count();
        if dup > 0 {
            batches::add_jobs(&self.db, id, -(dup as i64)).await?;
        }
        Ok((answers.len() - dup, dup))
    }

    /// Marks batch `id` complete; if every job already ended, it finishes now.
    pub async fn batch_seal(&self, id: &str) -> Result<()> {
        if batches::seal(&self.db, id, self.clock.now()).await? {
            self.batch_finished(id).await?;
        }
        Ok(())
    }

    pub(crate) async fn batch_finished(&self, id: &str) -> Result<()> {
        if let Some(batch) = batches::find(&self.db, id).await?
            && let Some(then) = batch.options.get("then").filter(|v| !v.is_null())
        {
            match serde_json::from_value::<NewJob>(then.clone()) {
                Ok(job) => {
                    Box::pin(self.dispatch(job)).await?;
                }
                Err(e) => tracing::error!(batch = id, error = %e, "batch `then` job is unreadable"),
            }
        }
        Ok(())
    }

    /// Runs one reserved job and settles it: ack, release for a retry, or fail for good;
    /// counted in [`Runtime::metrics`] by queue, job and outcome.
    pub async fn process(&self, job: Reserved, defaults: &Defaults) -> Result<Outcome> {
        let watch = crate::clock::Stopwatch::start();
        let queue = job.queue.clone();
        let name = match &job.envelope {
            Ok(e) => e.job.clone(),
            Err(_) => "(undecodable)".to_string(),
        };
        let outcome = self.process_inner(job, defaults).await;
        let label = match &outcome {
            Ok(Outcome::Succeeded) => Some("succeeded"),
            Ok(Outcome::Released(_)) => Some("released"),
            Ok(Outcome::Failed(_)) => Some("failed"),
            Ok(Outcome::Skipped) => Some("skipped"),
            Err(_) => None,
        };
        if let Some(label) = label {
            self.metrics
                .job_finished(&queue, &name, label, watch.elapsed().as_secs_f64());
        }
        outcome
    }

    async fn process_inner(&self, job: Reserved, defaults: &Defaults) -> Result<Outcome> {
        let envelope = match &job.envelope {
            Ok(e) => e.clone(),
            Err(why) => {
                let exception = format!("undecodable job payload: {why}");
                return self.fail(&job, None, exception).await;
            }
        };
        if let Some(u) = &envelope.unique
            && u.until == UniqueUntil::Processing
        {
            self.queue
                .unlock(&job.queue, &u.key, &envelope.uuid)
                .await?;
        }
        if let Some(batch_id) = &envelope.batch_id
            && batches::find(&self.db, batch_id)
                .await?
                .is_some_and(|b| b.cancelled_at.is_some())
        {
            self.queue.delete(&job).await?;
            self.release_lock(&job.queue, &envelope).await?;
            if batches::jobs_succeeded(&self.db, batch_id, 1, self.clock.now()).await? {
                self.batch_finished(batch_id).await?;
            }
            return Ok(Outcome::Skipped);
        }
        let Some(handler) = self.registry.get(&envelope.job) else {
            let exception = format!(
                "unknown job \"{}\": no handler is registered under that name",
                envelope.job
            );
            return self.fail(&job, Some(&envelope), exception).await;
        };
        let ctx = self.context(envelope.uuid.clone(), job.attempts, &job.queue);
        let timeout = envelope.timeout.unwrap_or(defaults.timeout);
        let result = self
            .run_handler(
                handler,
                ctx,
                envelope.data.clone(),
                Some(Duration::from_secs(timeout)),
            )
            .await
            .unwrap_or_else(|| Err(JobError::Retry(format!("timed out after {timeout}s"))));
        match result {
            Ok(()) => {
                // A job whose lock is released after it leaves the queue is settled here, in
                // order; any other goes to the worker's batched acknowledgement.
                let lock_after = envelope
                    .unique
                    .as_ref()
                    .is_some_and(|u| u.until == UniqueUntil::Processed);
                let job = match &self.acks {
                    Some(acks) if !lock_after => match acks.send(Ack::Job(Box::new(job))).await {
                        Ok(()) => return Ok(Outcome::Succeeded),
                        Err(closed) => match closed.0 {
                            Ack::Job(job) => *job,
                            Ack::Flush(_) => unreachable!("a job was sent"),
                        },
                    },
                    _ => job,
                };
                let uuid = envelope.uuid.as_str();
                self.settle((Write::Job, uuid), "acknowledge a finished job", || {
                    self.queue.delete(&job)
                })
                .await?;
                self.settle((Write::Lock, uuid), "release a unique lock", || {
                    self.release_lock(&job.queue, &envelope)
                })
                .await?;
                if let Some(batch_id) = &envelope.batch_id
                    && self
                        .settle(
                            (Write::Batch, uuid),
                            "count a job into its batch",
                            || async {
                                Ok(
                                    batches::jobs_succeeded(
                                        &self.db,
                                        batch_id,
                                        1,
                                        self.clock.now(),
                                    )
                                    .await?,
                                )
                            },
                        )
                        .await?
                {
                    self.batch_finished(batch_id).await?;
                }
                Ok(Outcome::Succeeded)
            }
            Err(JobError::Fail(m)) | Err(JobError::Undecodable(m)) => {
                self.fail(&job, Some(&envelope), m).await
            }
            Err(JobError::Retry(m)) => {
                let delay = backoff(&envelope, job.attempts, defaults);
                self.retry_or_fail(&job, &envelope, defaults, delay, m)
                    .await
            }
            Err(JobError::RetryAfter(delay, m)) => {
                self.retry_or_fail(&job, &envelope, defaults, delay, m)
                    .await
            }
            Err(JobError::Postpone(delay, m)) => {
                tracing::info!(job = %envelope.job, uuid = %envelope.uuid, delay_s = delay.as_secs(), reason = %m, "job postponed");
                self.settle((Write::Job, &envelope.uuid), "postpone a job", || {
                    self.queue.postpone(&job, delay, self.clock.now())
                })
                .await?;
                Ok(Outcome::Released(delay))
            }
        }
    }

    /// Acknowledges the succeeded jobs a worker's slots send, as many per round trip as have
    /// arrived (at most 500), with each batch's counter moved once per group; returns when
    /// every sender is gone and everything received is settled. A group that cannot be
    /// acknowledged within `QUEUE_RETRY_AFTER` is redelivered, never lost.
    pub async fn acknowledge_batched(&self, mut rx: tokio::sync::mpsc::Receiver<Ack>) {
        let mut group = Vec::with_capacity(ACK_GROUP);
        let mut flushes = Vec::new();
        while let Some(first) = rx.recv().await {
            // Gather for a moment: one statement per ACK_LINGER or ACK_GROUP jobs, whichever
            // comes first, and at once when a flush is asked for.
            let linger = tokio::time::sleep(ACK_LINGER);
            tokio::pin!(linger);
            let mut next = Some(first);
            while let Some(ack) = next.take() {
                match ack {
                    Ack::Job(job) => group.push(*job),
                    Ack::Flush(done) => flushes.push(done),
                }
                if group.len() < ACK_GROUP {
                    next = match rx.try_recv() {
                        Ok(ack) => Some(ack),
                        Err(_) if flushes.is_empty() => tokio::select! {
                            ack = rx.recv() => ack,
                            _ = &mut linger => None,
                        },
                        Err(_) => None,
                    };
                }
            }
            if !group.is_empty()
                && let Err(e) = self.acknowledge_group(&group).await
            {
                tracing::warn!(error = %e, jobs = group.len(), "finished jobs not acknowledged: they will be redelivered after QUEUE_RETRY_AFTER");
            }
            group.clear();
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
    }

    async fn acknowledge_group(&self, group: &[Reserved]) -> Result<()> {
        let subject = group.first().map(Reserved::uuid).unwrap_or_default();
        self.settle((Write::Job, &subject), "acknowledge finished jobs", || {
            self.queue.delete_many(group)
        })
        .await?;
        let mut per_batch: std::collections::BTreeMap<&str, i64> = Default::default();
        for job in group {
            if let Ok(Envelope {
                batch_id: Some(id), ..
            }) = &job.envelope
            {
                *per_batch.entry(id.as_str()).or_default() += 1;
            }
        }
        for (batch_id, n) in per_batch {
            if self
                .settle(
                    (Write::Batch, &subject),
                    "count jobs into their batch",
                    || async {
                        Ok(
                            batches::jobs_succeeded(&self.db, batch_id, n, self.clock.now())
                                .await?,
                        )
                    },
                )
                .await?
            {
                self.batch_finished(batch_id).await?;
            }
        }
        Ok(())
    }

    /// Runs `handler` on `data`, cancelled at `timeout` on the clock if given (then `None`).
    /// A panic is caught and returned as a retryable error, so a broken handler never takes
    /// its caller down. Queue jobs and inline scheduled tasks both run through here.
    pub async fn run_handler(
        &self,
        handler: &Handler,
        ctx: JobContext,
        data: Value,
        timeout: Option<Duration>,
    ) -> Option<std::result::Result<(), JobError>> {
        let run = async {
            match AssertUnwindSafe(handler(ctx, data)).catch_unwind().await {
                Ok(r) => r,
                Err(panic) => Err(JobError::Retry(format!(
                    "handler panicked: {}",
                    panic_text(&panic)
                ))),
            }
        };
        let Some(limit) = timeout else {
            return Some(run.await);
        };
        let deadline = self.clock.now() + TimeDelta::from_std(limit).unwrap_or(TimeDelta::MAX);
        tokio::select! {
            r = run => Some(r),
            _ = self.clock.sleep_until(deadline) => None,
        }
    }

    async fn retry_or_fail(
        &self,
        job: &Reserved,
        envelope: &Envelope,
        defaults: &Defaults,
        delay: Duration,
        message: String,
    ) -> Result<Outcome> {
        let tries = envelope.max_tries.unwrap_or(defaults.tries);
        if tries > 0 && job.attempts >= tries {
            let exception = format!(
                "{message}\n{} failed after {} attempt{} (tries: {tries})",
                envelope.job,
                job.attempts,
                if job.attempts == 1 { "" } else { "s" }
            );
            return self.fail(job, Some(envelope), exception).await;
        }
        self.settle(
            (Write::Job, &envelope.uuid),
            "release a job for its retry",
            || self.queue.release(job, delay, self.clock.now()),
        )
        .await?;
        Ok(Outcome::Released(delay))
    }

    /// Moves a job to `failed_jobs`, then out of the queue, then frees its lock and counts
    /// the failure in its batch.
    async fn fail(
        &self,
        job: &Reserved,
        envelope: Option<&Envelope>,
        exception: String,
    ) -> Result<Outcome> {
        let uuid = job.uuid();
        let failure = failed_jobs::NewFailure {
            uuid: &uuid,
            connection: self.queue.connection(),
            queue: &job.queue,
            payload: &job.raw,
            exception: &exception,
        };
        self.settle((Write::Job, &uuid), "record a failed job", || async {
            Ok(failed_jobs::insert(&self.db, &failure, self.clock.now()).await?)
        })
        .await?;
        self.settle(
            (Write::Job, &uuid),
            "remove a failed job from its queue",
            || self.queue.delete(job),
        )
        .await?;
        if let Some(u) = job.unique()
            && u.until != UniqueUntil::Ttl
        {
            self.settle((Write::Lock, &uuid), "release a unique lock", || {
                self.queue.unlock(&job.queue, &u.key, &uuid)
            })
            .await?;
        }
        if let Some(batch_id) = envelope.and_then(|e| e.batch_id.as_deref())
            && self
                .settle(
                    (Write::Batch, &uuid),
                    "count a failed job into its batch",
                    || async {
                        Ok(
                            batches::job_failed(&self.db, batch_id, &uuid, self.clock.now())
                                .await?,
                        )
                    },
                )
                .await?
        {
            self.batch_finished(batch_id).await?;
        }
        tracing::warn!(job = %uuid, queue = %job.queue, "job failed: {}", exception.lines().next().unwrap_or(""));
        Ok(Outcome::Failed(exception))
    }

    async fn release_lock(&self, queue: &str, envelope: &Envelope) -> Result<()> {
        if let Some(u) = &envelope.unique
            && u.until == UniqueUntil::Processed
        {
            self.queue.unlock(queue, &u.key, &envelope.uuid).await?;
        }
        Ok(())
    }

    /// Puts a failed job back on its queue with its attempts reset, and removes it from
    /// `failed_jobs`. Returns the job's uuid, or `None` if there is no such failed job.
    pub async fn retry_failed(&self, id: i64) -> Result<Option<String>> {
        let Some(failed) = failed_jobs::find(&self.db, &id.to_string()).await? else {
            return Ok(None);
        };
        let job = match super::decode(&failed.payload) {
            Ok(e) => NewJob {
                job: e.job,
                data: e.data,
                queue: failed.queue.clone(),
                delay: 0,
                tries: e.max_tries,
                timeout: e.timeout,
                backoff: e.backoff,
                // The lock was released when it failed; a retry runs whatever holds it now.
                unique: None,
                batch_id: None,
            },
            Err(why) => {
                return Err(QueueError::Invalid(format!(
                    "failed job {id} cannot be retried: {why}"
                )));
            }
        };
        self.queue.enqueue(job, self.clock.now()).await?;
        failed_jobs::delete(&self.db, failed.id).await?;
        Ok(Some(failed.uuid))
    }
}

/// The delay before retry number `attempts`: the job's backoff list (the last value repeats),
/// else the worker's `--backoff`.
pub fn backoff(envelope: &Envelope, attempts: u32, defaults: &Defaults) -> Duration {
    let seconds = match &envelope.backoff {
        Some(list) if !list.is_empty() => {
            let i = (attempts.max(1) as usize - 1).min(list.len() - 1);
            list[i]
        }
        _ => defaults.backoff,
    };
    Duration::from_secs(seconds)
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// A payload given on the command line or in a schedule, parsed as JSON.
pub fn payload_arg(text: Option<&str>) -> std::result::Result<Value, super::BadPayload> {
    match text {
        None => Ok(Value::Object(Default::default())),
        Some(t) => serde_json::from_str(t)
            .map_err(|e| super::BadPayload(format!("--payload is not valid JSON: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(backoff: Option<Vec<u64>>) -> Envelope {
        let mut e = NewJob::new("x", Value::Null).envelope(chrono::DateTime::UNIX_EPOCH);
        e.backoff = backoff;
        e
    }

    #[test]
    fn backoff_walks_the_list_and_repeats_the_last() {
        let d = Defaults::default();
        let e = env_with(Some(vec![10, 60, 300]));
        let secs: Vec<u64> = (1..=5).map(|a| backoff(&e, a, &d).as_secs()).collect();
        assert_eq!(secs, [10, 60, 300, 300, 300]);
        let none = env_with(None);
        assert_eq!(
            backoff(&none, 3, &Defaults { backoff: 7, ..d }).as_secs(),
            7
        );
    }
}
