//! The `redis` driver: per queue, a ready list, a reserved sorted set (scored by when the
//! reservation expires) and a delayed sorted set, each holding jobs as one string,
//! `ATTEMPTS|PAYLOAD`, so enqueueing a job is one list element and acknowledging it one
//! `ZREM`. A chunk without unique keys is enqueued with plain `RPUSH`/`ZADD`; every other
//! atomic step is a Lua file beside this one, loaded with `include_str!`. Jobs stored by an
//! older conecta (bare uuids in the list, payloads and attempts in hashes) are moved to this
//! form as they are reserved.
//!
//! Keys are `{REDIS_PREFIX}queues:{NAME}…` with the queue name as hash tag, so one queue's keys
//! live in one Redis Cluster slot and each script touches one slot. Unique locks live in the
//! same slot (`…{NAME}:lock:KEY`) so the lock is taken in the same script as the enqueue; a
//! unique key is therefore scoped to its queue on this driver. Every instant the scripts
//! compare comes from conecta's clock as an argument; server-side expiry is only garbage
//! collection. Workers block on their own connection, never on the shared one.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncCommands, Script};

use super::{Enqueued, LockInfo, NewJob, Queue, QueueDepth, Reserved, Result, decode};

/// Bytes reserved for one stored job before its payload is written: most envelopes fit.
const MEMBER_CAPACITY: usize = 384;

/// How long one connection attempt may take before it counts as Redis being away.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a command may wait for its answer (a hung Redis is an outage too).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Jobs in Redis.
pub struct RedisQueue {
    client: redis::Client,
    /// Reconnects by itself after Redis restarts: a command during the outage fails (and the
    /// caller backs off), the next one after it finds a fresh connection.
    conn: ConnectionManager,
    /// The connection workers block on, apart from the shared one.
    blocking: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    prefix: String,
    retry_after_ms: i64,
    known_queues: Mutex<HashSet<String>>,
    scripts: Scripts,
}

struct Scripts {
    enqueue: Script,
    reserve: Script,
    delete: Script,
    release: Script,
    unlock: Script,
}

/// The keys of one queue.
struct Keys {
    ready: String,
    reserved: String,
    delayed: String,
    payloads: String,
    attempts: String,
    notify: String,
    lock_prefix: String,
}

impl RedisQueue {
    /// Makes a reserved job ready again after `delay`, taking back this delivery's attempt
    /// when `refund`.
    async fn put_back(
        &self,
        job: &Reserved,
        delay: Duration,
        now: DateTime<Utc>,
        refund: bool,
    ) -> Result<()> {
        let k = self.keys(&job.queue);
        let mut c = self.conn.clone();
        let _: i64 = self
            .scripts
            .release
            .key(&k.ready)
            .key(&k.reserved)
            .key(&k.delayed)
            .key(&k.notify)
            .arg(member(job))
            .arg(now.timestamp_millis())
            .arg(delay.as_millis() as i64)
            .arg(i64::from(refund))
            .invoke_async(&mut c)
            .await?;
        Ok(())
    }

    /// Connects to `url`; keys start with `prefix`; reserved jobs come back after
    /// `retry_after`. Fails when Redis cannot be reached now; the daemons retry.
    pub async fn connect(url: &str, prefix: &str, retry_after: Duration) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_max_delay(500)
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT);
        let conn = ConnectionManager::new_with_config(client.clone(), config).await?;
        Ok(Self {
            client,
            conn,
            blocking: tokio::sync::Mutex::new(None),
            prefix: prefix.to_string(),
            retry_after_ms: retry_after.as_millis() as i64,
            known_queues: Mutex::new(HashSet::new()),
            scripts: Scripts {
                enqueue: Script::new(include_str!("redis/enqueue.lua")),
                reserve: Script::new(include_str!("redis/reserve.lua")),
                delete: Script::new(include_str!("redis/delete.lua")),
                release: Script::new(include_str!("redis/release.lua")),
                unlock: Script::new(include_str!("redis/unlock.lua")),
            },
        })
    }

    fn keys(&self, queue: &str) -> Keys {
        let base = format!("{}queues:{{{queue}}}", self.prefix);
        Keys {
            ready: base.clone(),
            reserved: format!("{base}:reserved"),
            delayed: format!("{base}:delayed"),
            payloads: format!("{base}:payloads"),
            attempts: format!("{base}:attempts"),
            notify: format!("{base}:notify"),
            lock_prefix: format!("{base}:lock:"),
        }
    }

    fn queues_set(&self) -> String {
        format!("{}queues", self.prefix)
    }

    async fn remember_queue(&self, queue: &str) -> Result<()> {
        let new = self
            .known_queues
            .lock()
            .expect("known queues")
            .insert(queue.to_string());
        if new {
            let mut c = self.conn.clone();
            let _: () = c.sadd(self.queues_set(), queue).await?;
        }
        Ok(())
    }

    async fn all_queues(&self) -> Result<Vec<String>> {
        let mut c = self.conn.clone();
        let mut q: Vec<String> = c.smembers(self.queues_set()).await?;
        q.sort();
        Ok(q)
    }

    async fn lock_keys(&self) -> Result<Vec<String>> {
        let pattern = format!("{}queues:{{*}}:lock:*", glob_escape(&self.prefix));
        let mut c = self.conn.clone();
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut c)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        Ok(keys)
    }

    /// The lock key a full Redis key stands for.
    fn lock_name(&self, full: &str) -> Option<String> {
        full.split_once("}:lock:").map(|(_, k)| k.to_string())
    }

    /// Deletes every key of `queue` but its locks.
    async fn delete_queue_keys(&self, queue: &str) -> Result<()> {
        let k = self.keys(queue);
        let mut c = self.conn.clone();
        let _: () = redis::pipe()
            .del(&k.ready)
            .del(&k.reserved)
            .del(&k.delayed)
            .del(&k.payloads)
            .del(&k.attempts)
            .del(&k.notify)
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// Deletes the locks whose name `doomed` picks.
    async fn delete_locks(&self, doomed: impl Fn(&str) -> bool) -> Result<()> {
        let mut c = self.conn.clone();
        for full in self.lock_keys().await? {
            if self.lock_name(&full).is_some_and(|n| doomed(&n)) {
                let _: i64 = c.del(&full).await?;
            }
        }
        Ok(())
    }
}

impl RedisQueue {
    /// The jobs of `jobs` (indices) whose unique lock is held and unexpired at `t` (ms), one
    /// `MGET` per queue in one round trip; they are taken out of `groups`.
    async fn held_locks(
        &self,
        order: &[String],
        groups: &mut std::collections::HashMap<String, Vec<usize>>,
        jobs: &[NewJob],
        t: i64,
        c: &mut ConnectionManager,
    ) -> Result<HashSet<usize>> {
        let mut asked: Vec<Vec<usize>> = Vec::new();
        let mut pipe = redis::pipe();
        for queue in order {
            let keyed: Vec<usize> = groups[queue]
                .iter()
                .copied()
                .filter(|&i| jobs[i].unique.is_some())
                .collect();
            if keyed.is_empty() {
                continue;
            }
            let prefix = self.keys(queue).lock_prefix;
            let names: Vec<String> = keyed
                .iter()
                .filter_map(|&i| jobs[i].unique.as_ref())
                .map(|u| format!("{prefix}{}", u.key))
                .collect();
            pipe.cmd("MGET").arg(names);
            asked.push(keyed);
        }
        if asked.is_empty() {
            return Ok(HashSet::new());
        }
        let values: Vec<Vec<Option<String>>> = pipe.query_async(c).await?;
        let mut held = HashSet::new();
        for (keyed, values) in asked.iter().zip(values) {
            for (&i, value) in keyed.iter().zip(values) {
                if value.is_some_and(|v| lock_live(&v, t)) {
                    held.insert(i);
                }
            }
        }
        for group in groups.values_mut() {
            group.retain(|i| !held.contains(i));
        }
        Ok(held)
    }

    /// Runs `pipe`, whose scripts are all `script`; if Redis lost its script cache (a restart,
    /// `SCRIPT FLUSH`), loads it and runs the pipeline once more.
    async fn run_scripts<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
        script: &Script,
        c: &mut ConnectionManager,
    ) -> Result<T> {
        match pipe.query_async(c).await {
            Ok(r) => Ok(r),
            Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                script.prepare_invoke().load_async(c).await?;
                Ok(pipe.query_async(c).await?)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether a lock's value, `OWNER|EXPIRES_MS` as `enqueue.lua` writes it, is unexpired at
/// `now` (ms), as the script itself judges it.
fn lock_live(value: &str, now: i64) -> bool {
    value
        .split_once('|')
        .and_then(|(_, exp)| exp.parse::<f64>().ok())
        .is_some_and(|exp| exp > now as f64)
}

/// The attempts of a reserved member, `ATTEMPTS|PAYLOAD`, and where its `|` stands.
fn split_member(member: &str) -> Result<(u32, usize)> {
    member
        .split_once('|')
        .and_then(|(a, _)| Some((a.parse().ok()?, a.len())))
        .ok_or_else(|| {
            super::QueueError::Invalid(format!(
                "a reserved Redis job is not ATTEMPTS|PAYLOAD: {:.80}",
                member
            ))
        })
}

/// The reserved member a job stands for: its handle (the attempts) and its payload.
fn member(job: &Reserved) -> String {
    format!("{}|{}", job.handle, job.raw)
}

fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[async_trait]
impl Queue for RedisQueue {
    async fn ping(&self) -> Result<()> {
        let mut c = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut c).await?;
        Ok(())
    }

    fn connection(&self) -> &'static str {
        "redis"
    }

    fn wakes_idle_workers(&self) -> bool {
        true
    }

    async fn enqueue_bulk(&self, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Result<Vec<Enqueued>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let t = now.timestamp_millis();
        let mut answers: Vec<Option<Enqueued>> = vec![None; jobs.len()];
        // Group by queue, keeping order within each group: one script call per queue.
        let mut order: Vec<String> = Vec::new();
        let mut groups: std::collections::HashMap<String, Vec<usize>> = Default::default();
        for (i, j) in jobs.iter().enumerate() {
            groups
                .entry(j.queue.clone())
                .or_insert_with(|| {
                    order.push(j.queue.clone());
                    Vec::new()
                })
                .push(i);
        }
        let mut c = self.conn.clone();
        // A job whose lock is held and unexpired now is a duplicate now: it needs no envelope
        // and no trip through the script, which would only find the same (a second pass of
        // unique jobs is one MGET per chunk). The script still decides every other job.
        let held = self
            .held_locks(&order, &mut groups, &jobs, t, &mut c)
            .await?;
        for &i in &held {
            answers[i] = Some(Enqueued::Duplicate);
        }
        let mut jobs: Vec<Option<NewJob>> = jobs.into_iter().map(Some).collect();
        let mut pipe = redis::pipe();
        let mut uuids: Vec<String> = vec![String::new(); jobs.len()];
        // Per queue: a script when some job takes a unique lock, else plain commands, whose
        // answers are skipped.
        let mut scripted = Vec::with_capacity(order.len());
        for queue in &order {
            self.remember_queue(queue).await?;
            let k = self.keys(queue);
            let group = &groups[queue];
            if group.is_empty() {
                scripted.push(false);
                continue;
            }
            let keyed = group
                .iter()
                .any(|&i| jobs[i].as_ref().is_some_and(|j| j.unique.is_some()));
            scripted.push(keyed);
            let mut inv = self.scripts.enqueue.prepare_invoke();
            let (mut ready, mut delayed) = (Vec::new(), Vec::new());
            if keyed {
                inv.key(&k.ready).key(&k.delayed).key(&k.notify);
                inv.arg(t).arg(&k.lock_prefix);
            }
            for &i in group {
                let job = jobs[i].take().expect("each job is in one group once");
                let available = t + job.delay as i64 * 1000;
                let envelope = job.into_envelope(now);
                let mut member = Vec::with_capacity(MEMBER_CAPACITY);
                member.extend_from_slice(b"0|");
                serde_json::to_writer(&mut member, &envelope)?;
                if keyed {
                    let unique = envelope.unique.as_ref();
                    inv.arg(&envelope.uuid)
                        .arg(member)
                        .arg(available)
                        .arg(unique.map(|u| u.key.as_str()).unwrap_or(""))
                        .arg(t + unique.map(|u| u.ttl as i64 * 1000).unwrap_or(0));
                } else if available > t {
                    delayed.push((available, member));
                } else {
                    ready.push(member);
                }
                uuids[i] = envelope.uuid;
            }
            if keyed {
                pipe.invoke_script(&inv);
                continue;
            }
            if !delayed.is_empty() {
                pipe.zadd_multiple(&k.delayed, &delayed).ignore();
            }
            if !ready.is_empty() {
                pipe.rpush(&k.ready, &ready)
                    .ignore()
                    .rpush(&k.notify, "1")
                    .ignore()
                    .ltrim(&k.notify, 0, 63)
                    .ignore();
            }
        }
        let results: Vec<Vec<i64>> = self
            .run_scripts(&pipe, &self.scripts.enqueue, &mut c)
            .await?;
        let mut results = results.into_iter();
        for (queue, keyed) in order.iter().zip(scripted) {
            let stored = if keyed {
                results.next().unwrap_or_default()
            } else {
                vec![1; groups[queue].len()]
            };
            for (&i, s) in groups[queue].iter().zip(stored) {
                answers[i] = Some(if s == 1 {
                    Enqueued::Job(std::mem::take(&mut uuids[i]))
                } else {
                    Enqueued::Duplicate
                });
            }
        }
        Ok(answers.into_iter().map(|a| a.expect("answered")).collect())
    }

    /// One script call per queue tried.
    async fn reserve_many(
        &self,
        queues: &[String],
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reserved>> {
        let mut c = self.conn.clone();
        for queue in queues {
            let k = self.keys(queue);
            let members: Vec<String> = self
                .scripts
                .reserve
                .key(&k.ready)
                .key(&k.reserved)
                .key(&k.delayed)
                .key(&k.payloads)
                .key(&k.attempts)
                .arg(now.timestamp_millis())
                .arg(self.retry_after_ms)
                .arg(max.max(1))
                .invoke_async(&mut c)
                .await?;
            if members.is_empty() {
                continue;
            }
            let mut out = Vec::with_capacity(members.len());
            for mut member in members {
                let (attempts, sep) = split_member(&member)?;
                // The handle is the attempts part; with the payload it spells the member
                // again (see `member`), so the payload is held once.
                let raw = member.split_off(sep + 1);
                member.truncate(sep);
                out.push(Reserved {
                    envelope: decode(&raw),
                    raw,
                    queue: queue.clone(),
                    attempts,
                    handle: member,
                });
            }
            return Ok(out);
        }
        Ok(Vec::new())
    }

    async fn delete_many(&self, jobs: &[Reserved]) -> Result<()> {
        let mut by_queue: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for job in jobs {
            by_queue.entry(&job.queue).or_default().push(member(job));
        }
        let mut pipe = redis::pipe();
        for (queue, members) in &by_queue {
            let k = self.keys(queue);
            let mut inv = self.scripts.delete.prepare_invoke();
            inv.key(&k.reserved).key(&k.ready);
            for m in members {
                inv.arg(m);
            }
            pipe.invoke_script(&inv);
        }
        let mut c = self.conn.clone();
        let _: Vec<i64> = self
            .run_scripts(&pipe, &self.scripts.delete, &mut c)
            .await?;
        Ok(())
    }

    async fn release(&self, job: &Reserved, delay: Duration, now: DateTime<Utc>) -> Result<()> {
        self.put_back(job, delay, now, false).await
    }

    async fn postpone(&self, job: &Reserved, delay: Duration, now: DateTime<Utc>) -> Result<()> {
        self.put_back(job, delay, now, true).await
    }

    async fn unlock(&self, queue: &str, key: &str, owner: &str) -> Result<bool> {
        let k = self.keys(queue);
        let mut c = self.conn.clone();
        let n: i64 = self
            .scripts
            .unlock
            .key(format!("{}{key}", k.lock_prefix))
            .arg(owner)
            .invoke_async(&mut c)
            .await?;
        Ok(n == 1)
    }

    async fn force_unlock(&self, key: &str) -> Result<bool> {
        let mut c = self.conn.clone();
        let mut found = false;
        for full in self.lock_keys().await? {
            if self.lock_name(&full).as_deref() == Some(key) {
                let n: i64 = c.del(&full).await?;
                found |= n > 0;
            }
        }
        Ok(found)
    }

    async fn locks(&self, prefix: &str, now: DateTime<Utc>) -> Result<Vec<LockInfo>> {
        let keys = self.lock_keys().await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn.clone();
        let values: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(&mut c).await?;
        let t = now.timestamp_millis();
        let mut out: Vec<LockInfo> = keys
            .iter()
            .zip(values)
            .filter_map(|(full, v)| {
                let name = self.lock_name(full)?;
                let (owner, exp) = v?
                    .split_once('|')
                    .map(|(o, e)| (o.to_string(), e.parse::<i64>().ok()))?;
                let exp = exp?;
                (name.starts_with(prefix) && exp > t).then(|| LockInfo {
                    key: name,
                    owner,
                    expires_at: DateTime::from_timestamp_millis(exp).unwrap_or_default(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn depths(&self, now: DateTime<Utc>) -> Result<Vec<QueueDepth>> {
        let t = now.timestamp_millis();
        let mut c = self.conn.clone();
        let mut out = Vec::new();
        for queue in self.all_queues().await? {
            let k = self.keys(&queue);
            let (ready, reserved, due, delayed): (u64, u64, u64, u64) = redis::pipe()
                .llen(&k.ready)
                .zcard(&k.reserved)
                .zcount(&k.delayed, "-inf", t)
                .zcount(&k.delayed, format!("({t}"), "+inf")
                .query_async(&mut c)
                .await?;
            out.push(QueueDepth {
                queue,
                pending: ready + due,
                reserved,
                delayed,
            });
        }
        Ok(out)
    }

    async fn clear(&self, queue: &str, lock_prefix: &str) -> Result<()> {
        self.delete_queue_keys(queue).await?;
        self.delete_locks(|name| name.starts_with(lock_prefix))
            .await
    }

    async fn purge(&self) -> Result<()> {
        for queue in self.all_queues().await? {
            self.delete_queue_keys(&queue).await?;
        }
        self.delete_locks(|_| true).await
    }

    async fn wait_for_work(&self, queues: &[String], max: Duration) -> Result<bool> {
        let mut guard = self.blocking.lock().await;
        let keys: Vec<Keys> = queues.iter().map(|q| self.keys(q)).collect();
        // Someone may have left work while this caller waited for the blocking connection.
        let mut c = self.conn.clone();
        for k in &keys {
            let n: u64 = c.llen(&k.ready).await?;
            if n > 0 {
                return Ok(true);
            }
        }
        let conn = match guard.as_mut() {
            Some(conn) => conn,
            None => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(max + RESPONSE_TIMEOUT);
                guard.insert(
                    self.client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                )
            }
        };
        let notify: Vec<&str> = keys.iter().map(|k| k.notify.as_str()).collect();
        let secs = max.as_secs_f64().max(0.01);
        let answer: redis::RedisResult<Option<(String, String)>> = redis::cmd("BLPOP")
            .arg(&notify)
            .arg(secs)
            .query_async(conn)
            .await;
        if let Err(e) = answer {
            // A blocking connection that failed is not reused: the next wait opens a new one.
            *guard = None;
            return Err(e.into());
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::lock_live;

    #[test]
    fn a_lock_is_live_until_the_instant_it_names() {
        assert!(lock_live("owner-uuid|1700000000500", 1_700_000_000_499));
        assert!(!lock_live("owner-uuid|1700000000500", 1_700_000_000_500));
        // Lua may write a large number in exponent form.
        assert!(lock_live("owner|1.7e+12", 1_600_000_000_000));
        assert!(!lock_live("no separator", 0));
        assert!(!lock_live("owner|soon", 0));
    }
}
