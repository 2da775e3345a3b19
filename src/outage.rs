//! Dependencies going away and coming back.
//!
//! Redis and the database restart; that is normal operation, not a reason to exit. Every
//! daemon (worker, scheduler, `start`) sorts each error it meets into one of three kinds:
//!
//! - a **dependency** error (connection refused or reset, pool timeout, a server shutting
//!   down or still starting): wait with a capped, jittered exponential [`Backoff`] and try
//!   again, for as long as it takes;
//! - a **configuration** error (wrong password, unknown database): nothing will change by
//!   waiting, so the process exits 2 naming the key to fix;
//! - anything else is the operation's own failure and goes back to the caller.
//!
//! [`Outages`] remembers which dependency is down since when, logs once when one goes away
//! and once when it comes back (with the outage's length), and gives the text heartbeats
//! carry ("waiting for Redis since …") so `queue status` and `schedule health` show it.

use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::{SharedClock, Stopwatch};

/// A service conecta depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dependency {
    /// Redis (the `redis` queue connection, the outbox stream).
    Redis,
    /// The configured database.
    Database,
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dependency::Redis => "Redis",
            Dependency::Database => "the database",
        })
    }
}

/// What an error means for a process that meets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The dependency is unreachable or restarting: wait and try again.
    Unavailable(Dependency),
    /// Waiting will not help; the text says which configuration key to fix.
    Configuration(String),
    /// The operation itself failed.
    Other,
}

/// Errors that can say whether they come from a dependency being away.
pub trait Classify {
    /// Sorts this error (see [`ErrorKind`]).
    fn kind(&self) -> ErrorKind;
}

impl Classify for sqlx::Error {
    fn kind(&self) -> ErrorKind {
        use sqlx::Error as E;
        match self {
            E::Io(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Tls(_) => {
                ErrorKind::Unavailable(Dependency::Database)
            }
            E::Protocol(_) => ErrorKind::Unavailable(Dependency::Database),
            E::Configuration(e) => ErrorKind::Configuration(format!(
                "the database URL is invalid ({e}): fix DATABASE_URL or DB_*"
            )),
            E::Database(db) => classify_database_code(db.code().as_deref(), db.message()),
            _ => ErrorKind::Other,
        }
    }
}

/// Database error codes that mean "the server is going away or not ready" and those that mean
/// "the configuration is wrong".
fn classify_database_code(code: Option<&str>, message: &str) -> ErrorKind {
    let Some(code) = code else {
        return ErrorKind::Other;
    };
    // MySQL files an unknown database under the generic SQLSTATE 42000; its text says it.
    if message.starts_with("Unknown database") {
        return ErrorKind::Configuration(format!(
            "{message}: fix DB_DATABASE or DATABASE_URL (or create the database)"
        ));
    }
    match code {
        // PostgreSQL: authentication failed, no such role; MySQL: access denied (28000).
        "28P01" | "28000" => ErrorKind::Configuration(format!(
            "the database refused the credentials ({message}): fix DB_USERNAME/DB_PASSWORD or DATABASE_URL"
        )),
        // PostgreSQL: no such database.
        "3D000" => ErrorKind::Configuration(format!(
            "{message}: fix DB_DATABASE or DATABASE_URL (or create the database)"
        )),
        // Connection exceptions (SQLSTATE 08xxx, also MySQL's server shutdown); PostgreSQL
        // shutting down or starting (57P01-57P03) and out of connections (53300); MySQL's
        // too many connections (08004 is in the first group) and its connection killed (70100).
        c if c.starts_with("08") => ErrorKind::Unavailable(Dependency::Database),
        "57P01" | "57P02" | "57P03" | "53300" | "70100" => {
            ErrorKind::Unavailable(Dependency::Database)
        }
        _ => ErrorKind::Other,
    }
}

impl Classify for redis::RedisError {
    fn kind(&self) -> ErrorKind {
        use redis::ErrorKind as K;
        let text = self.to_string();
        if self.kind() == K::AuthenticationFailed
            || text.contains("WRONGPASS")
            || text.contains("NOAUTH")
        {
            return ErrorKind::Configuration(format!(
                "Redis refused the credentials ({text}): fix REDIS_PASSWORD or REDIS_URL"
            ));
        }
        if self.kind() == K::InvalidClientConfig || text.contains("DB index is out of range") {
            return ErrorKind::Configuration(format!(
                "the Redis connection is misconfigured ({text}): fix REDIS_URL or REDIS_HOST/REDIS_PORT/REDIS_DB"
            ));
        }
        // Everything else Redis says (connection lost, LOADING after a restart, a key of the
        // wrong type someone wrote by hand) is Redis not serving us right now: wait, log, retry.
        ErrorKind::Unavailable(Dependency::Redis)
    }
}

impl Classify for crate::store::StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            crate::store::StoreError::Sql(e) => Classify::kind(e),
            crate::store::StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => {
                Classify::kind(e)
            }
            crate::store::StoreError::Url(u) => ErrorKind::Configuration(format!(
                "unsupported database URL {u:?}: fix DATABASE_URL or DB_CONNECTION"
            )),
            _ => ErrorKind::Other,
        }
    }
}

/// Capped exponential backoff with jitter: 100 ms, 200 ms, 400 ms … up to 10 s, each delay
/// drawn between half and all of its step so that many processes do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    step: u32,
    first: Duration,
    cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(10))
    }
}

impl Backoff {
    /// Delays from `first`, doubling, never above `cap`.
    pub fn new(first: Duration, cap: Duration) -> Self {
        Self {
            step: 0,
            first,
            cap,
        }
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let full = self
            .first
            .saturating_mul(1u32 << self.step.min(16))
            .min(self.cap);
        self.step = self.step.saturating_add(1);
        let half = full / 2;
        half + full.mul_f64(rand::random::<f64>() * 0.5)
    }

    /// Sleeps the next delay (real time: a dependency recovers in real time, whatever the
    /// simulated clock says).
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.step = 0;
    }
}

#[derive(Debug)]
struct Down {
    /// On the process's clock, for status lines.
    since: DateTime<Utc>,
    /// Real time, for the outage's length.
    watch: Stopwatch,
}

/// The kinds of state daemons write, by which failed writes are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A schedule run's row (claim, start, outcome, abandonment).
    Run,
    /// A running-lock or waiting seat (`schedule_leases`).
    Lease,
    /// A worker's or scheduler's heartbeat.
    Heartbeat,
    /// A job's unique lock.
    Lock,
    /// A batch's counters.
    Batch,
    /// A job's own state (acknowledge, release, failure record).
    Job,
}

impl Write {
    /// Every kind, in a fixed order.
    pub const ALL: [Write; 6] = [
        Write::Run,
        Write::Lease,
        Write::Heartbeat,
        Write::Lock,
        Write::Batch,
        Write::Job,
    ];

    /// Its name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Write::Run => "run",
            Write::Lease => "lease",
            Write::Heartbeat => "heartbeat",
            Write::Lock => "lock",
            Write::Batch => "batch",
            Write::Job => "job",
        }
    }
}

/// Which dependencies are away, since when, and how many writes failed. One per process,
/// shared by all its loops.
pub struct Outages {
    clock: SharedClock,
    /// Failed writes so far, by [`Write`], for `/metrics`.
    failed_writes: [AtomicU64; Write::ALL.len()],
    down: Mutex<Vec<(Dependency, Down)>>,
    /// True while `down` is not empty: the hot paths (every reserve, every claim) report
    /// success through [`Outages::came_back`] and must not take the lock when all is well.
    any_down: AtomicBool,
}

impl fmt::Debug for Outages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outages")
            .field("down", &self.down.lock().map(|d| d.len()).unwrap_or(0))
            .finish()
    }
}

impl Outages {
    /// Nothing is down yet.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            down: Mutex::new(Vec::new()),
            any_down: AtomicBool::new(false),
            failed_writes: Default::default(),
        }
    }

    /// Counts and logs one failed write of `write` state about `subject` (an entry, a job, a
    /// worker): nothing a daemon fails to write vanishes without a line and a count.
    pub fn write_failed(&self, write: Write, subject: &str, what: &str, error: &dyn fmt::Display) {
        self.failed_writes[write as usize].fetch_add(1, Ordering::Relaxed);
        tracing::warn!(write = write.name(), subject, error = %error, "cannot {what}");
    }

    /// How many writes failed so far, by kind of state, in [`Write::ALL`] order.
    pub fn failed_writes(&self) -> Vec<(Write, u64)> {
        Write::ALL
            .iter()
            .map(|w| (*w, self.failed_writes[*w as usize].load(Ordering::Relaxed)))
            .collect()
    }

    /// [`Outages::retry`] for a write of `write` state about `subject`: every failed attempt
    /// is counted and logged ([`Outages::write_failed`]).
    pub async fn retry_write<T, E, F, Fut>(
        &self,
        (write, subject): (Write, &str),
        what: &str,
        give_up: impl Fn() -> bool,
        mut op: F,
    ) -> Result<T, E>
    where
        E: Classify + fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.retry(what, give_up, || {
            let attempt = op();
            async move {
                let result = attempt.await;
                if let Err(e) = &result {
                    self.write_failed(write, subject, what, e);
                }
                result
            }
        })
        .await
    }

    fn with_down<T>(&self, f: impl FnOnce(&mut Vec<(Dependency, Down)>) -> T) -> T {
        let mut guard = self.down.lock().unwrap_or_else(|p| p.into_inner());
        let out = f(&mut guard);
        self.any_down.store(!guard.is_empty(), Ordering::SeqCst);
        out
    }

    /// Records that `dep` failed while doing `what`; logs only when it was up until now.
    pub fn went_away(&self, dep: Dependency, what: &str, error: &dyn fmt::Display) {
        let now = self.clock.now();
        let first = self.with_down(|down| {
            if down.iter().any(|(d, _)| *d == dep) {
                return false;
            }
            down.push((
                dep,
                Down {
                    since: now,
                    watch: Stopwatch::start(),
                },
            ));
            true
        });
        if first {
            tracing::warn!(dependency = %dep, while_doing = what, error = %error, "{dep} is unavailable: waiting for it and retrying with backoff (up to 10 s apart); nothing is lost meanwhile");
        } else {
            tracing::debug!(dependency = %dep, while_doing = what, error = %error, "still waiting");
        }
    }

    /// Records that `dep` answered; logs the outage's length if it was away.
    pub fn came_back(&self, dep: Dependency) {
        if !self.any_down.load(Ordering::SeqCst) {
            return;
        }
        let was = self.with_down(|down| {
            let i = down.iter().position(|(d, _)| *d == dep)?;
            Some(down.remove(i).1)
        });
        if let Some(was) = was {
            let secs = was.watch.elapsed().as_secs_f64();
            tracing::info!(dependency = %dep, outage_seconds = format!("{secs:.1}"), "{dep} is back after {secs:.1} s: carrying on");
        }
    }

    /// True while `dep` is known to be away.
    pub fn is_down(&self, dep: Dependency) -> bool {
        self.any_down.load(Ordering::SeqCst)
            && self.with_down(|down| down.iter().any(|(d, _)| *d == dep))
    }

    /// "waiting for Redis since 2026-…Z", one clause per dependency away; `None` when all are up.
    pub fn waiting(&self) -> Option<String> {
        let parts = self.with_down(|down| {
            down.iter()
                .map(|(d, w)| format!("waiting for {d} since {}", crate::rfc3339::utc(w.since)))
                .collect::<Vec<_>>()
        });
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Runs `op` until it succeeds, with backoff while its dependency is away. A configuration
    /// error or the operation's own failure is returned at once; so is a dependency error once
    /// `give_up()` says so (checked after each failure), so a stopping process does not wait
    /// forever.
    pub async fn retry<T, E, F, Fut>(
        &self,
        what: &str,
        give_up: impl Fn() -> bool,
        mut op: F,
    ) -> Result<T, E>
    where
        E: Classify + fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut backoff = Backoff::default();
        let mut failed: Option<Dependency> = None;
        loop {
            match op().await {
                Ok(v) => {
                    if let Some(dep) = failed {
                        self.came_back(dep);
                    }
                    return Ok(v);
                }
                Err(e) => match e.kind() {
                    ErrorKind::Unavailable(dep) => {
                        self.went_away(dep, what, &e);
                        failed = Some(dep);
                        if give_up() {
                            return Err(e);
                        }
                        backoff.wait().await;
                    }
                    _ => return Err(e),
                },
            }
        }
    }

    /// Notes the outcome of one attempt of a loop that retries by itself (a worker's reserve):
    /// a dependency error is recorded and `true` returned (back off and go on); success marks
    /// `dep` back.
    pub fn observe<T, E: Classify + fmt::Display>(
        &self,
        dep: Dependency,
        what: &str,
        result: &Result<T, E>,
    ) -> bool {
        match result {
            Ok(_) => {
                self.came_back(dep);
                false
            }
            Err(e) => match e.kind() {
                ErrorKind::Unavailable(d) => {
                    self.went_away(d, what, e);
                    true
                }
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap() {
        let mut b = Backoff::default();
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let delays: Vec<Duration> = (0..20).map(|_| b.next_delay()).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(10)));
        assert!(delays.last().unwrap() >= &Duration::from_secs(5));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn database_codes_split_into_waiting_and_configuration() {
        assert_eq!(
            classify_database_code(Some("57P01"), "terminating connection"),
            ErrorKind::Unavailable(Dependency::Database)
        );
        assert!(matches!(
            classify_database_code(Some("28P01"), "password authentication failed"),
            ErrorKind::Configuration(m) if m.contains("DB_PASSWORD")
        ));
        assert!(matches!(
            classify_database_code(Some("3D000"), "database \"x\" does not exist"),
            ErrorKind::Configuration(m) if m.contains("DB_DATABASE")
        ));
        assert_eq!(
            classify_database_code(Some("23505"), "duplicate key"),
            ErrorKind::Other
        );
        assert_eq!(
            sqlx::Error::PoolTimedOut.kind(),
            ErrorKind::Unavailable(Dependency::Database)
        );
    }

    #[test]
    fn outages_are_reported_once_and_shown_while_waiting() {
        let clock: SharedClock = std::sync::Arc::new(crate::clock::ManualClock::new(
            "2026-11-27T10:00:00Z".parse().unwrap(),
        ));
        let o = Outages::new(clock);
        assert_eq!(o.waiting(), None);
        o.went_away(Dependency::Redis, "reserve", &"connection refused");
        o.went_away(Dependency::Redis, "reserve", &"connection refused");
        assert_eq!(
            o.waiting().as_deref(),
            Some("waiting for Redis since 2026-11-27T10:00:00Z")
        );
        assert!(o.is_down(Dependency::Redis));
        o.came_back(Dependency::Redis);
        assert_eq!(o.waiting(), None);
    }
}
