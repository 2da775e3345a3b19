//! The one place that reads the system clock.
//!
//! Every piece of logic in conecta asks a [`Clock`] for "now" and sleeps through it, so that
//! tests and `--now T --speed N` can travel in time deterministically. Nothing outside this
//! module may call `Utc::now()`, `SystemTime::now()` or `Instant::now()`; a test in
//! `tests/clock_discipline.rs` enforces it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

/// The largest difference between two processes' clocks that leases and claims tolerate: a
/// claim or lease is taken over only once its age exceeds its timeout plus this. Processes
/// compare their clock with the database's at start and every few minutes and warn above 1 s
/// (see [`wall_now`]).
pub const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::seconds(10);

/// The system's wall clock, for one purpose only: comparing this host's clock with the
/// database server's to warn about skew. Logic reads a [`Clock`].
pub fn wall_now() -> DateTime<Utc> {
    Utc::now()
}

/// A boxed future returned by [`Clock::sleep_until`].
pub type SleepFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A source of the current instant and of sleeps measured on that same time line.
pub trait Clock: Send + Sync + 'static {
    /// The current instant on this clock's time line.
    fn now(&self) -> DateTime<Utc>;

    /// Completes once [`Clock::now`] has reached `deadline` (at once if it already has).
    fn sleep_until(&self, deadline: DateTime<Utc>) -> SleepFuture<'_>;

    /// The real time in which `span` passes on this clock (shorter at `--speed` above 1), for
    /// waits that only real time can bound, such as blocking on Redis or `LISTEN`.
    fn real_span(&self, span: std::time::Duration) -> std::time::Duration {
        span
    }

    /// The span that passes on this clock in `real` real time (longer at `--speed` above 1),
    /// for bounds that must hold in real time, such as how long a lease lasts unrenewed.
    fn simulated_span(&self, real: std::time::Duration) -> std::time::Duration {
        real
    }
}

/// A shared clock, as handed to every service.
pub type SharedClock = Arc<dyn Clock>;

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> SleepFuture<'_> {
        Box::pin(async move {
            // Re-check after waking: the wall clock may have been adjusted meanwhile.
            loop {
                let left = deadline - Utc::now();
                if left <= TimeDelta::zero() {
                    return;
                }
                tokio::time::sleep(left.to_std().unwrap_or_default()).await;
            }
        })
    }
}

/// A clock that starts at a chosen instant and runs `speed` times faster than real time
/// (`--now T [--speed N]`). With speed 1 it is the real clock shifted to `T`.
#[derive(Debug, Clone)]
pub struct SimulatedClock {
    start: DateTime<Utc>,
    real_start: Instant,
    speed: f64,
}

impl SimulatedClock {
    /// A clock reading `start` now and advancing `speed` simulated seconds per real second.
    pub fn new(start: DateTime<Utc>, speed: f64) -> Self {
        Self {
            start,
            real_start: Instant::now(),
            speed,
        }
    }

    /// How many simulated seconds pass per real second.
    pub fn speed(&self) -> f64 {
        self.speed
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        let real = self.real_start.elapsed().as_secs_f64();
        let simulated_micros = (real * self.speed * 1e6) as i64;
        self.start + TimeDelta::microseconds(simulated_micros)
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> SleepFuture<'_> {
        Box::pin(async move {
            loop {
                let left = deadline - self.now();
                if left <= TimeDelta::zero() {
                    return;
                }
                let real = left.to_std().unwrap_or_default().as_secs_f64() / self.speed;
                tokio::time::sleep(std::time::Duration::from_secs_f64(real)).await;
            }
        })
    }

    fn real_span(&self, span: std::time::Duration) -> std::time::Duration {
        std::time::Duration::try_from_secs_f64(span.as_secs_f64() / self.speed).unwrap_or(span)
    }

    fn simulated_span(&self, real: std::time::Duration) -> std::time::Duration {
        std::time::Duration::try_from_secs_f64(real.as_secs_f64() * self.speed).unwrap_or(real)
    }
}

/// A clock that stands still until a test moves it with [`ManualClock::set`] or
/// [`ManualClock::advance`]; sleepers wake as soon as their deadline is reached. It makes a
/// simulated day take exactly as long as the work done in it.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        let (tx, _rx) = watch::channel(start);
        Self { now: Arc::new(tx) }
    }

    /// Moves the clock to `instant` (never backwards) and wakes every sleeper it reaches.
    pub fn set(&self, instant: DateTime<Utc>) {
        self.now.send_if_modified(|now| {
            if instant > *now {
                *now = instant;
                true
            } else {
                false
            }
        });
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: TimeDelta) {
        let target = *self.now.borrow() + by;
        self.set(target);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> SleepFuture<'_> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as `self`, so `wait_for` only ends when the deadline is met.
            let _ = rx.wait_for(|now| *now >= deadline).await;
        })
    }
}

/// Builds the clock the global flags ask for: `--now T` starts a simulated clock at `T`
/// running at `--speed` (default 1); without `--now` the system clock.
pub fn from_flags(now: Option<DateTime<Utc>>, speed: Option<f64>) -> SharedClock {
    match now {
        Some(start) => Arc::new(SimulatedClock::new(start, speed.unwrap_or(1.0))),
        None => Arc::new(SystemClock),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_moved_past_their_deadline() {
        let clock = ManualClock::new(at("2026-01-01T00:00:00Z"));
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move {
                clock.sleep_until(at("2026-01-01T01:00:00Z")).await;
                clock.now()
            })
        };
        clock.advance(TimeDelta::minutes(30));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(TimeDelta::minutes(45));
        assert_eq!(sleeper.await.unwrap(), at("2026-01-01T01:15:00Z"));
    }

    #[test]
    fn manual_clock_never_goes_backwards() {
        let clock = ManualClock::new(at("2026-01-01T00:00:00Z"));
        clock.set(at("2025-01-01T00:00:00Z"));
        assert_eq!(clock.now(), at("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn simulated_clock_starts_at_its_instant_and_runs_faster() {
        let clock = SimulatedClock::new(at("2026-03-08T06:00:00Z"), 3600.0);
        let first = clock.now();
        assert!(first >= at("2026-03-08T06:00:00Z"));
        std::thread::sleep(std::time::Duration::from_millis(20));
        // 20 ms of real time is at least 72 simulated seconds.
        assert!(clock.now() - first >= TimeDelta::seconds(70));
    }

    #[tokio::test]
    async fn simulated_sleep_is_shortened_by_the_speed() {
        let clock = SimulatedClock::new(at("2026-03-08T06:00:00Z"), 36_000.0);
        // One simulated hour at 36,000x is 100 ms of real time.
        clock.sleep_until(at("2026-03-08T07:00:00Z")).await;
        assert!(clock.now() >= at("2026-03-08T07:00:00Z"));
    }
}

/// Measures real elapsed time, for benchmarks and progress reports only: logic that decides
/// anything reads a [`Clock`] instead.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Starts measuring now.
    pub fn start() -> Self {
        Self(Instant::now())
    }

    /// Real time since the start.
    pub fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}
