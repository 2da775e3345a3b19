//! The schedule: what runs when.
//!
//! `file` reads and validates the TOML schedule file, `cron` holds a parsed expression,
//! `planner` turns an entry into its occurrences (the pure function the simulator and the
//! daemon share), `dst` reports what DST changes do to entries. Those are pure: no I/O but
//! reading the file, no clock; callers pass instants in. `scheduler` is the daemon loop on top
//! of them, and the one part here that touches the database and the injected clock.

pub mod catch_up;
pub mod cron;
pub mod dst;
pub mod file;
pub mod health;
pub mod planner;
pub mod scheduler;

use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;
use serde_json::{Map, Value};

pub use cron::CronSpec;
pub use planner::{Occurrence, occurrences};

/// How far ahead to look for an entry's next run (a Feb 29 entry can wait eight years).
pub const NEXT_HORIZON: chrono::TimeDelta = chrono::TimeDelta::days(366 * 9);

/// Who runs an occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The scheduler runs the task itself.
    Inline,
    /// The scheduler enqueues the task as a job on the entry's queue.
    Queue,
}

/// What to do with an occurrence while the previous run of the entry is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overlap {
    /// Record it as `skipped_overlap`.
    Skip,
    /// Run it anyway.
    Allow,
    /// Keep at most one waiting run and start it when the current one ends.
    BufferOne,
}

/// Which missed occurrences run after downtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CatchUp {
    /// None.
    Skip,
    /// The newest one inside the window.
    Latest,
    /// Each one inside the window, oldest first, at most `catch_up_max`.
    All,
}

/// A fixed-hour entry whose local time falls in a spring-forward gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DstSkipped {
    /// Run once at the first instant after the gap.
    Shift,
    /// No run that day.
    Skip,
}

/// A fixed-hour entry whose local time is repeated by a fall-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DstRepeated {
    /// Run at the first of the two instants.
    First,
    /// Run at the second.
    Last,
    /// Run at both.
    Both,
}

/// One validated `[[task]]` entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Unique label of the entry.
    pub name: String,
    /// The registered task it runs.
    pub task: String,
    /// When.
    pub cron: CronSpec,
    /// The zone its cron fields are read in.
    pub timezone: Tz,
    /// Free text for people.
    pub description: Option<String>,
    /// Disabled entries are listed but never due.
    pub enabled: bool,
    /// Arguments handed to the task, checked against its schema.
    pub args: Map<String, Value>,
    /// A run is cancelled and recorded as failed past this.
    pub timeout: Option<Duration>,
    /// Inline or queued.
    pub mode: Mode,
    /// The queue for `mode = "queue"`.
    pub queue: String,
    /// Overlap policy.
    pub overlap: Overlap,
    /// Catch-up policy.
    pub catch_up: CatchUp,
    /// How far back catch-up looks.
    pub catch_up_window: Duration,
    /// The most occurrences `catch_up = "all"` runs.
    pub catch_up_max: u32,
    /// Deterministic random delay, up to this, per occurrence.
    pub jitter: Option<Duration>,
    /// Spring-forward rule for fixed-hour entries.
    pub dst_skipped: DstSkipped,
    /// Fall-back rule for fixed-hour entries.
    pub dst_repeated: DstRepeated,
}

/// A whole validated schedule file.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Where it was read from.
    pub path: PathBuf,
    /// Hex digest of the file's bytes, so replicas can tell they disagree.
    pub hash: String,
    /// The entries, in file order.
    pub entries: Vec<Entry>,
}

impl Schedule {
    /// The enabled entries.
    pub fn enabled(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.enabled)
    }
}

/// FNV-1a over `bytes`: a hash that is the same in every build and on every platform (std's
/// hasher promises neither), for schedule digests and deterministic jitter.
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The shortest time between two consecutive occurrences of `entry` over a year of its
/// schedule (at most 2,000 occurrences looked at), or `None` when it is due at most once.
/// A `jitter` must stay below it, or a jittered run would land after the next occurrence.
pub fn shortest_period(entry: &Entry) -> Option<std::time::Duration> {
    let from = chrono::DateTime::<chrono::Utc>::from_timestamp(1_767_225_600, 0)?; // 2026-01-01
    let to = from + chrono::TimeDelta::days(400);
    let dues: Vec<_> = occurrences(entry, from, to)
        .take(2_000)
        .map(|o| o.due)
        .collect();
    dues.windows(2)
        .map(|w| w[1] - w[0])
        .min()
        .and_then(|d| d.to_std().ok())
}
