//! Stopping a long-running loop (worker, scheduler) gracefully: a [`StopHandle`] that signal
//! listeners, stop conditions and callers share, and the [`StopReason`] the first of them gave.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Why a worker stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGTERM/SIGINT or the caller's stop handle.
    Signal,
    /// `conecta queue restart`.
    Restart,
    /// `--max-time` reached.
    MaxTime,
    /// `--max-jobs` reached.
    MaxJobs,
    /// `--memory` exceeded.
    Memory,
    /// `--stop-when-empty` and nothing left.
    Empty,
    /// `--until` reached on the clock.
    Until,
}

impl StopReason {
    /// A phrase for the log.
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::Signal => "stop signal",
            StopReason::Restart => "queue restart",
            StopReason::MaxTime => "--max-time reached",
            StopReason::MaxJobs => "--max-jobs reached",
            StopReason::Memory => "--memory exceeded",
            StopReason::Empty => "queues empty (--stop-when-empty)",
            StopReason::Until => "--until reached",
        }
    }
}

/// Asks a running worker to stop after the jobs in hand.
#[derive(Clone, Default)]
pub struct StopHandle {
    inner: Arc<StopState>,
}

#[derive(Default)]
struct StopState {
    stopped: AtomicBool,
    reason: std::sync::Mutex<Option<StopReason>>,
    notify: Notify,
    deadline: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
}

impl StopHandle {
    /// Stops with `reason` (the first reason given wins).
    pub fn stop(&self, reason: StopReason) {
        let mut r = self.inner.reason.lock().expect("stop reason");
        if r.is_none() {
            *r = Some(reason);
        }
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Announces that a stop comes when the clock reaches `at` (`--until`): work due at `at`
    /// or later is not started, even when the clock gets there before the stop does.
    pub fn stop_at(&self, at: chrono::DateTime<chrono::Utc>) {
        *self.inner.deadline.lock().expect("stop deadline") = Some(at);
    }

    /// The instant given to [`StopHandle::stop_at`], if any.
    pub fn deadline(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        *self.inner.deadline.lock().expect("stop deadline")
    }

    /// True once stopped.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    /// Why it stopped (the signal, if it has not).
    pub fn reason(&self) -> StopReason {
        self.inner
            .reason
            .lock()
            .expect("stop reason")
            .unwrap_or(StopReason::Signal)
    }

    /// Completes once stopped.
    pub async fn stopped(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }
}
