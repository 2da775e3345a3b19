//! The queue: the job envelope, the [`Queue`] trait every driver implements, and the runtime
//! that turns a handler's outcome into ack, release or failure.
//!
//! Semantics are docs/queue.md and identical on every driver: at least once, atomic reservation,
//! redelivery after `retry_after`, delays, strict queue priority, per-job tries, timeout and
//! backoff, unique keys taken atomically with the enqueue. A driver never decides a job's
//! fate; the runtime does, so the drivers stay small and the same for all.
//!
//! Drivers: `redis.rs` (lists and sorted sets, atomic steps as Lua files), `database.rs` (the
//! `jobs` table), `memory.rs` (in-process, behind the `sync` connection).

pub mod database;
pub mod memory;
pub mod redis;
pub mod registry;
pub mod runtime;
pub mod worker;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use registry::{JobContext, JobError, Registry};
pub use runtime::Runtime;

/// When a unique job's lock is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UniqueUntil {
    /// When the job succeeds or fails for good (the default).
    #[default]
    Processed,
    /// When a worker starts it.
    Processing,
    /// Only when `unique_for` runs out.
    Ttl,
}

impl std::str::FromStr for UniqueUntil {
    type Err = BadPayload;
    fn from_str(s: &str) -> std::result::Result<Self, BadPayload> {
        match s {
            "processed" => Ok(UniqueUntil::Processed),
            "processing" => Ok(UniqueUntil::Processing),
            "ttl" => Ok(UniqueUntil::Ttl),
            other => Err(BadPayload(format!(
                "expected processed, processing or ttl, got: {other:?}"
            ))),
        }
    }
}

/// A unique job's lock: its key, how long it lives at most, and when it is released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unique {
    /// The lock key; a second job with a held key is a duplicate.
    pub key: String,
    /// Seconds the lock lives at most (it expires even if the job never finishes).
    pub ttl: u64,
    /// When the lock is released.
    #[serde(default)]
    pub until: UniqueUntil,
}

/// What the queue stores for a job (the `payload` column / Redis list element): Laravel's
/// field names where Laravel has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Stable identity of the job across retries and `failed_jobs`.
    pub uuid: String,
    /// The handler name (Laravel's `displayName`).
    #[serde(rename = "displayName")]
    pub display_name: String,
    /// The registered job name.
    pub job: String,
    /// The typed payload, decoded by the handler.
    pub data: Value,
    /// Attempts allowed; `None` means the worker's `--tries`.
    #[serde(rename = "maxTries", default)]
    pub max_tries: Option<u32>,
    /// Seconds a run may take; `None` means the worker's `--timeout`.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Seconds to wait before each retry; the last value repeats.
    #[serde(default)]
    pub backoff: Option<Vec<u64>>,
    /// Laravel's field, kept at 0: the drivers count attempts beside the payload (the `jobs`
    /// column, a Redis hash) so the stored payload never changes across deliveries.
    #[serde(default)]
    pub attempts: u32,
    /// The unique lock, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<Unique>,
    /// The batch the job belongs to, if any.
    #[serde(rename = "batchId", default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// When it was enqueued, in milliseconds since the epoch (for latency figures).
    #[serde(rename = "pushedAt", default)]
    pub pushed_at: i64,
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// The registered job name.
    pub job: String,
    /// Its payload.
    pub data: Value,
    /// The queue (default `default`).
    pub queue: String,
    /// Seconds before it may run.
    #[serde(default)]
    pub delay: u64,
    /// Attempts allowed, overriding the worker's.
    #[serde(default)]
    pub tries: Option<u32>,
    /// Seconds a run may take, overriding the worker's.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Backoff list in seconds.
    #[serde(default)]
    pub backoff: Option<Vec<u64>>,
    /// Unique lock.
    #[serde(default)]
    pub unique: Option<Unique>,
    /// Batch membership.
    #[serde(default)]
    pub batch_id: Option<String>,
}

impl NewJob {
    /// A job on the `default` queue with no options.
    pub fn new(job: impl Into<String>, data: Value) -> Self {
        Self {
            job: job.into(),
            data,
            queue: "default".into(),
            delay: 0,
            tries: None,
            timeout: None,
            backoff: None,
            unique: None,
            batch_id: None,
        }
    }

    /// On `queue`.
    pub fn on(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Unique under `key` for `ttl` seconds, released per `until`.
    pub fn unique(mut self, key: impl Into<String>, ttl: u64, until: UniqueUntil) -> Self {
        self.unique = Some(Unique {
            key: key.into(),
            ttl,
            until,
        });
        self
    }

    /// The envelope stored for this job, with a fresh uuid.
    pub fn envelope(&self, now: DateTime<Utc>) -> Envelope {
        self.clone().into_envelope(now)
    }

    /// [`NewJob::envelope`], moving the job's parts instead of copying them (a bulk enqueue
    /// builds one per job).
    pub fn into_envelope(self, now: DateTime<Utc>) -> Envelope {
        let mut uuid = [0u8; uuid::fmt::Hyphenated::LENGTH];
        Envelope {
            uuid: uuid::Uuid::now_v7()
                .hyphenated()
                .encode_lower(&mut uuid)
                .to_string(),
            display_name: self.job.clone(),
            job: self.job,
            data: self.data,
            max_tries: self.tries,
            timeout: self.timeout,
            backoff: self.backoff,
            attempts: 0,
            unique: self.unique,
            batch_id: self.batch_id,
            pushed_at: now.timestamp_millis(),
        }
    }
}

/// The answer to an enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored; the job's uuid.
    Job(String),
    /// Its unique key is held: nothing was stored.
    Duplicate,
}

impl Enqueued {
    /// True for [`Enqueued::Duplicate`].
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Enqueued::Duplicate)
    }
}

/// A job a worker holds.
#[derive(Debug, Clone)]
pub struct Reserved {
    /// The driver's handle (the row id, or on Redis the attempts part of the reserved
    /// `ATTEMPTS|PAYLOAD` member).
    pub handle: String,
    /// The queue it came from.
    pub queue: String,
    /// The payload as stored.
    pub raw: String,
    /// This is attempt number `attempts` (1 on first delivery).
    pub attempts: u32,
    /// The decoded envelope, or why it could not be decoded.
    pub envelope: std::result::Result<Envelope, BadPayload>,
}

impl Reserved {
    /// The unique lock, even from a payload whose envelope is otherwise broken.
    pub fn unique(&self) -> Option<Unique> {
        match &self.envelope {
            Ok(e) => e.unique.clone(),
            Err(_) => serde_json::from_str::<Value>(&self.raw)
                .ok()
                .and_then(|v| serde_json::from_value(v.get("unique")?.clone()).ok()),
        }
    }

    /// The job's uuid, or the handle when the payload is unreadable.
    pub fn uuid(&self) -> String {
        match &self.envelope {
            Ok(e) => e.uuid.clone(),
            Err(_) => serde_json::from_str::<Value>(&self.raw)
                .ok()
                .and_then(|v| v.get("uuid")?.as_str().map(String::from))
                .unwrap_or_else(|| {
                    // Stable across deliveries of the same payload, distinct between payloads.
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    (&self.queue, &self.raw).hash(&mut h);
                    format!("unreadable-{}-{:016x}", self.handle, h.finish())
                }),
        }
    }
}

/// A held unique lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockInfo {
    /// The key.
    pub key: String,
    /// The uuid of the job holding it.
    pub owner: String,
    /// When it expires at the latest.
    pub expires_at: DateTime<Utc>,
}

/// Depth of one queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// Queue name.
    pub queue: String,
    /// Ready to run now.
    pub pending: u64,
    /// Held by a worker.
    pub reserved: u64,
    /// Waiting for their `available_at`.
    pub delayed: u64,
}

/// Errors from a queue driver.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Redis failed.
    #[error("redis error: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// A payload could not be encoded.
    #[error("cannot encode job payload: {0}")]
    Encode(#[from] serde_json::Error),
    /// The request cannot be carried out as asked.
    #[error("{0}")]
    Invalid(String),
    /// A dependency refused the configuration (wrong password, unknown database): waiting
    /// will not help, the process exits 2.
    #[error("{0}")]
    Config(String),
}

impl From<sqlx::Error> for QueueError {
    fn from(e: sqlx::Error) -> Self {
        QueueError::Store(e.into())
    }
}

impl crate::outage::Classify for QueueError {
    fn kind(&self) -> crate::outage::ErrorKind {
        use crate::outage::{Classify, ErrorKind};
        match self {
            QueueError::Store(e) => e.kind(),
            QueueError::Redis(e) => Classify::kind(e),
            QueueError::Config(m) => ErrorKind::Configuration(m.clone()),
            QueueError::Encode(_) | QueueError::Invalid(_) => ErrorKind::Other,
        }
    }
}

/// Queue result.
pub type Result<T> = std::result::Result<T, QueueError>;

/// The transport every driver implements: flat verbs on plain structs. Every instant comes in
/// as `now` from the caller's clock.
#[async_trait]
pub trait Queue: Send + Sync {
    /// `redis`, `database` or `sync`, as written in `failed_jobs.connection`.
    fn connection(&self) -> &'static str;

    /// Stores one job, taking its unique lock atomically with it.
    async fn enqueue(&self, job: NewJob, now: DateTime<Utc>) -> Result<Enqueued> {
        Ok(self
            .enqueue_bulk(vec![job], now)
            .await?
            .pop()
            .expect("one answer per job"))
    }

    /// Stores a chunk in one round trip; one answer per job, in order. Within a chunk, a
    /// later job with the same unique key as an earlier one is a duplicate.
    async fn enqueue_bulk(&self, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Result<Vec<Enqueued>>;

    /// Atomically takes the oldest available job from the first of `queues` that has one,
    /// counting the attempt; jobs reserved before `now - retry_after` are available again.
    async fn reserve(&self, queues: &[String], now: DateTime<Utc>) -> Result<Option<Reserved>> {
        Ok(self.reserve_many(queues, 1, now).await?.pop())
    }

    /// Takes up to `max` jobs (at least one) in one round trip, all from the first of `queues`
    /// that has any, oldest first, each reserved as [`Queue::reserve`] describes. A worker
    /// keeps the extras in its local buffer for its free slots.
    async fn reserve_many(
        &self,
        queues: &[String],
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reserved>>;

    /// Removes a reserved job for good (after success or after it was moved to failed_jobs).
    async fn delete(&self, job: &Reserved) -> Result<()> {
        self.delete_many(std::slice::from_ref(job)).await
    }

    /// Removes many reserved jobs for good, in as few round trips as the driver can.
    async fn delete_many(&self, jobs: &[Reserved]) -> Result<()>;

    /// Puts a reserved job back, runnable again `delay` after `now`.
    async fn release(&self, job: &Reserved, delay: Duration, now: DateTime<Utc>) -> Result<()>;

    /// Like [`Queue::release`], and this delivery does not count as an attempt.
    async fn postpone(&self, job: &Reserved, delay: Duration, now: DateTime<Utc>) -> Result<()>;

    /// Frees `key`, taken by a job on `queue`, if `owner` still holds it; true if it did.
    async fn unlock(&self, queue: &str, key: &str, owner: &str) -> Result<bool>;

    /// Frees `key` whoever holds it; true if it was held.
    async fn force_unlock(&self, key: &str) -> Result<bool>;

    /// The unexpired locks whose key starts with `prefix`.
    async fn locks(&self, prefix: &str, now: DateTime<Utc>) -> Result<Vec<LockInfo>>;

    /// Depth per queue.
    async fn depths(&self, now: DateTime<Utc>) -> Result<Vec<QueueDepth>>;

    /// Removes every job of every queue (tests only).
    async fn purge(&self) -> Result<()>;

    /// Removes every job of `queue` and every lock whose key starts with `lock_prefix`
    /// (`bench` clears its own queue this way).
    async fn clear(&self, queue: &str, lock_prefix: &str) -> Result<()>;

    /// Waits up to `max` real time for a sign that one of `queues` may have work (Redis blocks
    /// on a notification list); drivers without one return at once and the worker sleeps.
    async fn wait_for_work(&self, queues: &[String], max: Duration) -> Result<bool> {
        let _ = (queues, max);
        Ok(false)
    }

    /// True when [`Queue::wait_for_work`] returns as soon as work arrives (Redis, and the
    /// database driver on PostgreSQL); false when idle workers poll every `--sleep`.
    fn wakes_idle_workers(&self) -> bool {
        false
    }

    /// One round trip to the queue's own server, if it has one (Redis): is it answering?
    /// The database drivers' server is the store's, checked there.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

/// Opens the queue driver the configuration names, on `db` for the database driver.
pub async fn open(
    config: &crate::config::Config,
    db: &crate::store::Db,
) -> Result<std::sync::Arc<dyn Queue>> {
    use crate::config::QueueConnection;
    let retry_after = Duration::from_secs(config.retry_after);
    Ok(match config.queue_connection {
        QueueConnection::Redis => std::sync::Arc::new(
            redis::RedisQueue::connect(&config.redis_url, &config.redis_prefix, retry_after)
                .await?,
        ),
        QueueConnection::Database => {
            std::sync::Arc::new(database::DatabaseQueue::new(db.clone(), retry_after))
        }
        QueueConnection::Sync => std::sync::Arc::new(memory::MemoryQueue::new(retry_after)),
    })
}

/// A payload, or a part of one, that cannot be read as what it should be (why, in words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadPayload(pub String);

/// Decodes a stored payload into its envelope.
pub fn decode(raw: &str) -> std::result::Result<Envelope, BadPayload> {
    serde_json::from_str(raw)
        .map_err(|e| BadPayload(format!("payload is not a conecta job envelope: {e}")))
}
