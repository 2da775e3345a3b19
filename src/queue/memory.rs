//! An in-process queue behind the `sync` connection (and a fast reference implementation the
//! conformance suite checks like any other). It keeps nothing across restarts, which is why
//! the `sync` connection runs every job inline at dispatch.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Enqueued, LockInfo, NewJob, Queue, QueueDepth, Reserved, Result, decode};

struct Job {
    queue: String,
    payload: String,
    attempts: u32,
    reserved_at: Option<i64>,
    available_at: i64,
}

#[derive(Default)]
struct State {
    next_id: u64,
    jobs: BTreeMap<u64, Job>,
    locks: HashMap<String, (String, i64)>,
}

/// Jobs in memory. Times are milliseconds on the caller's clock.
pub struct MemoryQueue {
    state: Mutex<State>,
    retry_after_ms: i64,
}

impl MemoryQueue {
    /// Makes a reserved job ready again after `delay`, taking back this delivery's attempt
    /// when `refund`.
    fn put_back(&self, job: &Reserved, delay: Duration, now: DateTime<Utc>, refund: bool) {
        let id: u64 = job.handle.parse().unwrap_or(0);
        if let Some(j) = self.state.lock().expect("queue state").jobs.get_mut(&id) {
            j.reserved_at = None;
            j.available_at = now.timestamp_millis() + delay.as_millis() as i64;
            if refund {
                j.attempts = j.attempts.saturating_sub(1);
            }
        }
    }

    /// An empty queue; reserved jobs come back after `retry_after`.
    pub fn new(retry_after: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            retry_after_ms: retry_after.as_millis() as i64,
        }
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    fn connection(&self) -> &'static str {
        "sync"
    }

    async fn enqueue_bulk(&self, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Result<Vec<Enqueued>> {
        let t = now.timestamp_millis();
        let mut s = self.state.lock().expect("queue state");
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            let envelope = job.envelope(now);
            if let Some(u) = &job.unique {
                let held = s.locks.get(&u.key).is_some_and(|(_, exp)| *exp > t);
                if held {
                    out.push(Enqueued::Duplicate);
                    continue;
                }
                s.locks.insert(
                    u.key.clone(),
                    (envelope.uuid.clone(), t + u.ttl as i64 * 1000),
                );
            }
            s.next_id += 1;
            let id = s.next_id;
            s.jobs.insert(
                id,
                Job {
                    queue: job.queue.clone(),
                    payload: serde_json::to_string(&envelope)?,
                    attempts: 0,
                    reserved_at: None,
                    available_at: t + job.delay as i64 * 1000,
                },
            );
            out.push(Enqueued::Job(envelope.uuid));
        }
        Ok(out)
    }

    /// One job per call: the `sync` connection runs each job as it is enqueued.
    async fn reserve_many(
        &self,
        queues: &[String],
        _max: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reserved>> {
        let t = now.timestamp_millis();
        let mut s = self.state.lock().expect("queue state");
        for queue in queues {
            let found = s.jobs.iter_mut().find(|(_, j)| {
                &j.queue == queue
                    && match j.reserved_at {
                        None => j.available_at <= t,
                        Some(r) => r <= t - self.retry_after_ms,
                    }
            });
            if let Some((id, job)) = found {
                job.reserved_at = Some(t);
                job.attempts += 1;
                return Ok(vec![Reserved {
                    handle: id.to_string(),
                    queue: queue.clone(),
                    raw: job.payload.clone(),
                    attempts: job.attempts,
                    envelope: decode(&job.payload),
                }]);
            }
        }
        Ok(Vec::new())
    }

    async fn delete_many(&self, jobs: &[Reserved]) -> Result<()> {
        let mut s = self.state.lock().expect("queue state");
        for job in jobs {
            s.jobs.remove(&job.handle.parse().unwrap_or(0));
        }
        Ok(())
    }

    async fn release(&self, job: &Reserved, delay: Duration, now: DateTime<Utc>) -> Result<()> {
        self.put_back(job, delay, now, false);
        Ok(())
    }

    async fn postpone(&self, job: &Reserved, delay: Duration, now: DateTime<Utc>) -> Result<()> {
        self.put_back(job, delay, now, true);
        Ok(())
    }

    async fn unlock(&self, _queue: &str, key: &str, owner: &str) -> Result<bool> {
        let mut s = self.state.lock().expect("queue state");
        if s.locks.get(key).is_some_and(|(o, _)| o == owner) {
            s.locks.remove(key);
            return Ok(true);
        }
        Ok(false)
    }

    async fn force_unlock(&self, key: &str) -> Result<bool> {
        Ok(self
            .state
            .lock()
            .expect("queue state")
            .locks
            .remove(key)
            .is_some())
    }

    async fn locks(&self, prefix: &str, now: DateTime<Utc>) -> Result<Vec<LockInfo>> {
        let t = now.timestamp_millis();
        let s = self.state.lock().expect("queue state");
        let mut out: Vec<LockInfo> = s
            .locks
            .iter()
            .filter(|(k, (_, exp))| k.starts_with(prefix) && *exp > t)
            .map(|(k, (o, exp))| LockInfo {
                key: k.clone(),
                owner: o.clone(),
                expires_at: DateTime::from_timestamp_millis(*exp).unwrap_or_default(),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn depths(&self, now: DateTime<Utc>) -> Result<Vec<QueueDepth>> {
        let t = now.timestamp_millis();
        let s = self.state.lock().expect("queue state");
        let mut by: BTreeMap<&str, QueueDepth> = BTreeMap::new();
        for j in s.jobs.values() {
            let d = by.entry(&j.queue).or_insert_with(|| QueueDepth {
                queue: j.queue.clone(),
                ..Default::default()
            });
            match j.reserved_at {
                Some(_) => d.reserved += 1,
                None if j.available_at <= t => d.pending += 1,
                None => d.delayed += 1,
            }
        }
        Ok(by.into_values().collect())
    }

    async fn clear(&self, queue: &str, lock_prefix: &str) -> Result<()> {
        let mut s = self.state.lock().expect("queue state");
        s.jobs.retain(|_, j| j.queue != queue);
        s.locks.retain(|k, _| !k.starts_with(lock_prefix));
        Ok(())
    }

    async fn purge(&self) -> Result<()> {
        let mut s = self.state.lock().expect("queue state");
        s.jobs.clear();
        s.locks.clear();
        Ok(())
    }
}
