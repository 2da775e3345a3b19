//! The planner: the occurrences of an entry in `[from, to)`, exactly as docs/schedule.md says.
//!
//! This is the single code path both `schedule simulate` and the scheduler daemon use, so what
//! the simulator shows is what production does. It is pure: no clock, no I/O.
//!
//! How it works: the planner walks local calendar days in the entry's zone. For each day the
//! cron fields allow, it turns each matching local time into real instants with the zone's
//! rules:
//! - a local time that exists once gives one instant;
//! - a local time repeated by a fall-back gives both instants for an every-hour entry
//!   (elapsed time: every real instant whose local reading matches), and the first, last or
//!   both for a fixed-hour entry (`dst_repeated`);
//! - a local time skipped by a spring-forward gives nothing for an every-hour entry, and for a
//!   fixed-hour entry the first instant after the gap (`dst_skipped = "shift"`), where several
//!   skipped times of the entry merge into one run, or nothing (`"skip"`).
//!
//! Instants are buffered and released in order once no later day can produce an earlier one,
//! and equal instants are merged, so occurrences strictly increase.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::{CronSpec, DstRepeated, DstSkipped, Entry};

/// One due instant of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Occurrence {
    /// The due instant: the identity of the occurrence (`schedule_runs.due_at`).
    pub due: DateTime<Utc>,
    /// The zone's UTC offset at `due`, in seconds, for showing local time.
    pub offset_seconds: i32,
}

impl Occurrence {
    /// `due` plus the entry's deterministic jitter: when the run actually starts.
    pub fn fire_at(&self, entry: &Entry) -> DateTime<Utc> {
        self.due + jitter(entry, self.due)
    }
}

/// The rules the planner applies to one entry.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// A skipped local time: shift to after the gap, or drop.
    pub skipped: DstSkipped,
    /// A repeated local time: first, last or both instants.
    pub repeated: DstRepeated,
}

impl Rules {
    /// The rules docs/schedule.md gives `entry`: elapsed time for every-hour entries, its own
    /// `dst_skipped`/`dst_repeated` for fixed-hour ones.
    pub fn for_entry(entry: &Entry) -> Self {
        if entry.cron.every_hour() {
            Rules {
                skipped: DstSkipped::Skip,
                repeated: DstRepeated::Both,
            }
        } else {
            Rules {
                skipped: entry.dst_skipped,
                repeated: entry.dst_repeated,
            }
        }
    }
}

/// The occurrences of `entry` in `[from, to)`, in strictly increasing order.
pub fn occurrences(entry: &Entry, from: DateTime<Utc>, to: DateTime<Utc>) -> Occurrences<'_> {
    Occurrences::new(
        &entry.cron,
        entry.timezone,
        Rules::for_entry(entry),
        from,
        to,
    )
}

/// No zone's offset has ever been this far from UTC; used to bound when a later local day can
/// no longer produce an earlier instant.
const MAX_OFFSET: TimeDelta = TimeDelta::hours(16);

/// The iterator behind [`occurrences`].
#[derive(Debug, Clone)]
pub struct Occurrences<'a> {
    cron: &'a CronSpec,
    tz: Tz,
    rules: Rules,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    next_day: NaiveDate,
    generated_all: bool,
    /// Instants of days already walked that are safe to release when below `release_below`.
    pending: VecDeque<Occurrence>,
    release_below: DateTime<Utc>,
    last: Option<DateTime<Utc>>,
    day_buf: Vec<Occurrence>,
}

impl<'a> Occurrences<'a> {
    /// Occurrences of `cron` read in `tz` under `rules`, in `[from, to)`.
    pub fn new(
        cron: &'a CronSpec,
        tz: Tz,
        rules: Rules,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Self {
        // Start a day early: an occurrence shifted out of a gap, or an earlier day seen from a
        // zone far from UTC, can still land after `from`.
        let first_day = from
            .with_timezone(&tz)
            .date_naive()
            .pred_opt()
            .unwrap_or(NaiveDate::MIN);
        Self {
            cron,
            tz,
            rules,
            from,
            to,
            next_day: first_day,
            generated_all: from >= to,
            pending: VecDeque::new(),
            release_below: DateTime::<Utc>::MIN_UTC,
            last: None,
            day_buf: Vec::new(),
        }
    }

    /// The next multiple of an `every` entry's interval since its anchor, in `[from, to)`.
    fn next_multiple(&mut self, every: super::cron::Every) -> Option<Occurrence> {
        if self.generated_all {
            return None;
        }
        let ms = match self.last {
            Some(last) => last.timestamp_millis().checked_add(every.period_ms),
            None => {
                // The first multiple at or after `from`, to the nanosecond: a `from` a fraction
                // of a millisecond past a multiple is past it.
                let from_ms = self.from.timestamp_millis()
                    + i64::from(!self.from.timestamp_subsec_nanos().is_multiple_of(1_000_000));
                let since = from_ms - every.anchor_ms;
                let k = since.div_euclid(every.period_ms)
                    + i64::from(since.rem_euclid(every.period_ms) != 0);
                k.checked_mul(every.period_ms)
                    .and_then(|v| v.checked_add(every.anchor_ms))
            }
        };
        let due = ms.and_then(DateTime::<Utc>::from_timestamp_millis);
        let Some(due) = due.filter(|d| *d < self.to) else {
            self.generated_all = true;
            return None;
        };
        self.last = Some(due);
        Some(Occurrence {
            due,
            offset_seconds: self
                .tz
                .offset_from_utc_datetime(&due.naive_utc())
                .fix()
                .local_minus_utc(),
        })
    }

    /// Walks one more local day, adding its instants to `pending`.
    fn walk_day(&mut self) {
        let day = self.next_day;
        self.next_day = day.succ_opt().unwrap_or(NaiveDate::MAX);
        let next_midnight = self.next_day.and_hms_opt(0, 0, 0).expect("midnight exists");
        // Every instant of a later day is at or after this.
        self.release_below = next_midnight.and_utc() - MAX_OFFSET;
        if self.release_below >= self.to || self.next_day == NaiveDate::MAX {
            self.generated_all = true;
        }
        if !self.cron.matches_day(day) {
            return;
        }
        self.day_buf.clear();
        for hour in self.cron.hours() {
            for minute in self.cron.minutes() {
                let local = day.and_hms_opt(hour, minute, 0).expect("valid time");
                self.resolve(local);
            }
        }
        self.day_buf.sort_unstable();
        match self.pending.back() {
            Some(back) if self.day_buf.first().is_some_and(|first| first < back) => {
                self.pending.extend(self.day_buf.drain(..));
                self.pending.make_contiguous().sort_unstable();
            }
            _ => self.pending.extend(self.day_buf.drain(..)),
        }
    }

    /// Turns one matching local time into zero, one or two instants.
    fn resolve(&mut self, local: NaiveDateTime) {
        match self.tz.offset_from_local_datetime(&local) {
            LocalResult::Single(offset) => self.push(local, offset.fix().local_minus_utc()),
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.fix().local_minus_utc(), b.fix().local_minus_utc());
                // The larger offset reads that local time first.
                let (first, last) = if a > b { (a, b) } else { (b, a) };
                match self.rules.repeated {
                    DstRepeated::First => self.push(local, first),
                    DstRepeated::Last => self.push(local, last),
                    DstRepeated::Both => {
                        self.push(local, first);
                        self.push(local, last);
                    }
                }
            }
            LocalResult::None => {
                if self.rules.skipped == DstSkipped::Shift {
                    let due = first_instant_after(self.tz, local);
                    let offset = self.tz.offset_from_utc_datetime(&due.naive_utc()).fix();
                    self.day_buf.push(Occurrence {
                        due,
                        offset_seconds: offset.local_minus_utc(),
                    });
                }
            }
        }
    }

    fn push(&mut self, local: NaiveDateTime, offset_seconds: i32) {
        let due = (local - TimeDelta::seconds(i64::from(offset_seconds))).and_utc();
        self.day_buf.push(Occurrence {
            due,
            offset_seconds,
        });
    }
}

impl Iterator for Occurrences<'_> {
    type Item = Occurrence;

    fn next(&mut self) -> Option<Occurrence> {
        if let Some(every) = self.cron.interval() {
            return self.next_multiple(every);
        }
        loop {
            if let Some(front) = self.pending.front().copied()
                && (self.generated_all || front.due < self.release_below)
            {
                self.pending.pop_front();
                if front.due >= self.to {
                    // Everything after is later still.
                    self.pending.clear();
                    self.generated_all = true;
                    return None;
                }
                if front.due < self.from || self.last.is_some_and(|last| front.due <= last) {
                    continue;
                }
                self.last = Some(front.due);
                return Some(front);
            }
            if self.generated_all {
                return None;
            }
            self.walk_day();
        }
    }
}

/// The first real instant whose local reading is later than `local`, a local time inside a
/// spring-forward gap: the instant the clocks jump.
fn first_instant_after(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let reading = |t: i64| {
        let utc = DateTime::<Utc>::from_timestamp(t, 0).expect("in range");
        tz.offset_from_utc_datetime(&utc.naive_utc())
            .fix()
            .local_minus_utc() as i64
            + t
    };
    let target = local.and_utc().timestamp();
    // The local reading is monotonic around a gap, below `target` at `lo`, above it at `hi`.
    let mut lo = target - MAX_OFFSET.num_seconds();
    let mut hi = target + MAX_OFFSET.num_seconds();
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if reading(mid) > target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::<Utc>::from_timestamp(hi, 0).expect("in range")
}

/// The deterministic jitter of one occurrence: a hash of the entry name and the due instant,
/// so the simulator and every replica compute the same delay.
pub fn jitter(entry: &Entry, due: DateTime<Utc>) -> TimeDelta {
    let Some(max) = entry.jitter else {
        return TimeDelta::zero();
    };
    let max_ms = max.as_millis() as u64;
    if max_ms == 0 {
        return TimeDelta::zero();
    }
    let mut key = entry.name.as_bytes().to_vec();
    key.extend_from_slice(&due.timestamp().to_le_bytes());
    let hash = super::stable_hash(&key);
    TimeDelta::milliseconds((hash % max_ms) as i64)
}

/// The occurrences of several entries in `[from, to)`, merged in order of due instant (ties in
/// entry order). Yields the index of the entry with each occurrence.
pub fn merged<'a>(entries: &[&'a Entry], from: DateTime<Utc>, to: DateTime<Utc>) -> Merged<'a> {
    let mut iters: Vec<Occurrences<'a>> =
        entries.iter().map(|e| occurrences(e, from, to)).collect();
    let mut heap = BinaryHeap::with_capacity(iters.len());
    for (i, it) in iters.iter_mut().enumerate() {
        if let Some(o) = it.next() {
            heap.push(Reverse((o.due, i, o)));
        }
    }
    Merged { iters, heap }
}

/// The iterator behind [`merged`].
pub struct Merged<'a> {
    iters: Vec<Occurrences<'a>>,
    heap: BinaryHeap<Reverse<(DateTime<Utc>, usize, Occurrence)>>,
}

impl Iterator for Merged<'_> {
    type Item = (usize, Occurrence);

    fn next(&mut self) -> Option<(usize, Occurrence)> {
        let Reverse((_, i, occurrence)) = self.heap.pop()?;
        if let Some(next) = self.iters[i].next() {
            self.heap.push(Reverse((next.due, i, next)));
        }
        Some((i, occurrence))
    }
}
