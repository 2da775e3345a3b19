//! The scheduler loop (`conecta scheduler`): sleeps on the injected clock until the next
//! occurrence the planner gives, claims it in `schedule_runs` (exactly one of any number of
//! schedulers wins), and runs the task inline or enqueues it.
//!
//! It uses the same `occurrences` as `schedule simulate`, so a simulation shows what this loop
//! does. Runs are spawned, so a long task never delays the next occurrence; a stop lets the
//! runs in hand finish (each bounded by its timeout) before `run` returns.
//!
//! On start it catches up on what it missed while down (`catch_up.rs` decides); it registers
//! itself in `schedulers` with a heartbeat. `overlap = "skip"` is a lease in `schedule_leases`
//! renewed while the run lives, so it holds across processes and a dead process frees its
//! entry within one lease period; `buffer-one` adds a second lease, the one waiting seat, so
//! at most one run waits for the running one and starts when it ends.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::planner::merged;
use super::{Entry, Mode, Overlap, Schedule};
use crate::clock::{MAX_CLOCK_SKEW, Stopwatch};
use crate::outage::{Backoff, Classify, Dependency, ErrorKind, Write};
use crate::queue::{NewJob, Runtime};
use crate::stop::StopHandle;
use crate::store::schedule_leases::{self, Acquired};
use crate::store::schedule_runs::{self, Claim, Outcome};

/// How far ahead the loop looks for the next occurrence.
const HORIZON: TimeDelta = TimeDelta::days(400);

/// Runs `task` once with `args`: inline through its handler, bounded by `timeout` on the
/// runtime's clock, or enqueued on `queue` in queue mode, retrying the enqueue while Redis is
/// away until `give_up()` says stop (the scheduler waits; `run-task` tries once). The same
/// path serves the scheduler and `run-task`.
pub async fn execute(
    rt: &Runtime,
    task: &str,
    args: &Map<String, Value>,
    mode: Mode,
    queue: &str,
    timeout: Option<Duration>,
    give_up: &(dyn Fn() -> bool + Sync),
) -> (Outcome, Option<String>) {
    if mode == Mode::Queue {
        let job = NewJob::new(task, Value::Object(args.clone())).on(queue);
        let enqueued = rt
            .outages
            .retry("enqueue a scheduled job", give_up, || {
                rt.dispatch(job.clone())
            })
            .await;
        return match enqueued {
            Ok(_) => (Outcome::Succeeded, None),
            Err(e) => (Outcome::Failed, Some(format!("cannot enqueue {task}: {e}"))),
        };
    }
    let Some(handler) = rt.registry.get(task) else {
        return (
            Outcome::Failed,
            Some(format!(
                "task \"{task}\" has no handler in this process's registry"
            )),
        );
    };
    let ctx = rt.context(uuid::Uuid::now_v7().to_string(), 1, "inline");
    let result = rt
        .run_handler(handler, ctx, Value::Object(args.clone()), timeout)
        .await;
    match result {
        Some(Ok(())) => (Outcome::Succeeded, None),
        Some(Err(e)) => (Outcome::Failed, Some(e.to_string())),
        None => (
            Outcome::TimedOut,
            Some(format!(
                "cancelled after its timeout of {}s",
                timeout.unwrap_or_default().as_secs()
            )),
        ),
    }
}

/// `host:pid` of this process, as recorded in `schedule_runs.runner`.
pub fn runner_name() -> String {
    format!(
        "{}:{}",
        gethostname::gethostname().to_string_lossy(),
        std::process::id()
    )
}

/// Where the loop stands, for tests and status: the due instant it waits for next (every
/// occurrence before it has been claimed or lost to another process) and how many runs it
/// started have not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The next occurrence the loop waits for.
    pub next_due: DateTime<Utc>,
    /// Runs started and not yet recorded as ended.
    pub in_flight: usize,
}

/// Runs the scheduler on a fixed schedule until `stop`, publishing its [`Progress`] on
/// `progress` if given.
pub async fn run(
    schedule: Arc<Schedule>,
    rt: Runtime,
    stop: StopHandle,
    progress: Option<watch::Sender<Progress>>,
) -> Result<(), crate::store::StoreError> {
    let (_keep, schedules) = watch::channel(schedule);
    let from = rt.clock.now();
    run_reloadable(schedules, rt, stop, progress, DEFAULT_LEASE, from).await
}

/// One pass over the occurrences in `[from, to)`, as Laravel's `schedule:run` makes for the
/// current minute: each is claimed through the same exactly-once row as the daemon's, run by
/// whichever process wins it, and waited for; one due later than now waits until it is due
/// (and its jitter). Entries run side by side, each entry's occurrences one after another
/// in time order, as the daemon would have run them. Returns every occurrence with the run
/// this process claimed, or `None` when another process (or an earlier pass) had it.
pub async fn run_window(
    schedule: &Schedule,
    rt: &Runtime,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    lease: Duration,
    stop: StopHandle,
) -> Vec<(String, DateTime<Utc>, Option<i64>)> {
    let firing = Firing::new(rt, lease, stop);
    let mut runs = JoinSet::new();
    for entry in schedule.enabled() {
        let dues: Vec<_> = super::occurrences(entry, from, to)
            .map(|o| (o.due, o.fire_at(entry)))
            .collect();
        let (rt, entry, firing) = (rt.clone(), entry.clone(), firing.clone());
        runs.spawn(async move {
            let mut ran = Vec::new();
            for (due, fire_at) in dues {
                if fire_at > rt.clock.now() {
                    tokio::select! {
                        _ = rt.clock.sleep_until(fire_at) => {}
                        _ = firing.stop.stopped() => {
                            ran.push((entry.name.clone(), due, None));
                            continue;
                        }
                    }
                }
                let id = fire(rt.clone(), entry.clone(), due, 1, firing.clone()).await;
                ran.push((entry.name.clone(), due, id));
            }
            ran
        });
    }
    let mut ran = Vec::new();
    while let Some(done) = runs.join_next().await {
        match done {
            Ok(r) => ran.extend(r),
            Err(e) => tracing::error!(error = %e, "a scheduled run panicked"),
        }
    }
    ran.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    ran
}

/// Occurrences this process could not claim because the database was away, per entry. When
/// the database answers again they are claimed or recorded `missed` under the entry's
/// catch-up policy, exactly as after a restart: none is lost without a row.
#[derive(Default)]
struct Backlog {
    by_entry: Mutex<BTreeMap<String, Unclaimed>>,
    added: Notify,
}

impl Backlog {
    fn push(&self, entry: &Entry, due: DateTime<Utc>) {
        self.put(entry, vec![due]);
    }

    fn put(&self, entry: &Entry, dues: Vec<DateTime<Utc>>) {
        let mut map = self.by_entry.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(entry.name.clone())
            .or_insert_with(|| (entry.clone(), Vec::new()))
            .1
            .extend(dues);
        self.added.notify_one();
    }

    fn take(&self) -> Vec<Unclaimed> {
        let mut map = self.by_entry.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *map).into_values().collect()
    }
}

/// One entry's occurrences that wait in the backlog.
type Unclaimed = (Entry, Vec<DateTime<Utc>>);

/// What every run this process fires shares: who it is, how long its leases last, its stop,
/// the backlog of unclaimed occurrences and the runs it holds a lease for.
#[derive(Clone)]
struct Firing {
    runner: String,
    lease: Duration,
    stop: StopHandle,
    backlog: Arc<Backlog>,
    /// Runs of this process that hold (or wait for) a lease: never reaped as abandoned by
    /// this process, even when an outage let their lease run out.
    live: Arc<Mutex<HashSet<i64>>>,
}

impl Firing {
    /// This process's firing state, with running-locks of `lease`. A lease lasts at least
    /// MIN_REAL_LEASE of real time: on a clock running thousands of times faster, renewals
    /// (real round trips) could not keep a simulated minute's lease alive, and a live run
    /// would be taken for abandoned.
    fn new(rt: &Runtime, lease: Duration, stop: StopHandle) -> Self {
        Self {
            runner: runner_name(),
            lease: lease.max(rt.clock.simulated_span(MIN_REAL_LEASE)),
            stop,
            backlog: Arc::new(Backlog::default()),
            live: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    fn live(&self) -> Vec<i64> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect()
    }

    fn set_live(&self, id: i64, alive: bool) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if alive {
            live.insert(id);
        } else {
            live.remove(&id);
        }
    }
}

/// Runs the scheduler until `stop`, switching to each schedule sent on `schedules` (SIGHUP
/// reload). A switch re-plans from where the loop stands; an occurrence already claimed is
/// not fired again, since its claim exists. Occurrences from `from` on are fired: a process
/// passes the instant it started, so one falling due while it connects is not lost.
///
/// The database going away stops nothing: occurrences that cannot be claimed wait in a
/// backlog, outcome and lease writes are retried until they land, and the heartbeat and the
/// reaper of abandoned runs carry on.
pub async fn run_reloadable(
    mut schedules: watch::Receiver<Arc<Schedule>>,
    rt: Runtime,
    stop: StopHandle,
    progress: Option<watch::Sender<Progress>>,
    lease: Duration,
    from: DateTime<Utc>,
) -> Result<(), crate::store::StoreError> {
    let progress = Arc::new(progress);
    let schedule = schedules.borrow_and_update().clone();
    let mut reloadable = true;
    let firing = Firing::new(&rt, lease, stop.clone());
    let mut runs = JoinSet::new();
    let mut cursor = from.min(rt.clock.now());
    tracing::info!(entries = schedule.enabled().count(), hash = %schedule.hash, "scheduler started");
    let heartbeat = tokio::spawn(heartbeat(rt.clone(), schedules.clone(), stop.clone()));
    let recovery = tokio::spawn(recover_backlog(
        rt.clone(),
        firing.clone(),
        progress.clone(),
    ));
    let reaper = tokio::spawn(reap_abandoned(
        rt.clone(),
        schedules.clone(),
        firing.clone(),
        progress.clone(),
    ));
    // Catch up on what was missed while no scheduler ran; if the database is away, wait for it.
    let caught_up = rt
        .outages
        .retry(
            "catch up after downtime",
            || stop.is_stopped(),
            || catch_up(&schedule, &rt, &firing, &progress, cursor),
        )
        .await;
    if let Err(e) = caught_up
        && !stop.is_stopped()
    {
        tracing::error!(error = %e, "cannot catch up on missed occurrences; they stay unrecorded until the next start");
    }
    'outer: while !stop.is_stopped() {
        // One plan per schedule version: the planner's iterators are kept across occurrences
        // (building them costs a day of every-minute occurrences) and rebuilt on a reload, or
        // when the horizon runs out.
        let schedule = schedules.borrow_and_update().clone();
        let entries: Vec<&Entry> = schedule.enabled().collect();
        let mut upcoming = merged(&entries, cursor, cursor + HORIZON).peekable();
        let mut fired_any = false;
        while !stop.is_stopped() {
            let Some((first_i, first)) = upcoming.next() else {
                if fired_any {
                    continue 'outer;
                }
                tracing::warn!(
                    "no enabled entry is ever due; waiting for a reload (SIGHUP) or a stop"
                );
                tokio::select! {
                    _ = stop.stopped() => break 'outer,
                    changed = schedules.changed(), if reloadable => match changed {
                        Ok(()) => {
                            tracing::info!("schedule reloaded: planning again");
                            continue 'outer;
                        }
                        Err(_) => {
                            stop.stopped().await;
                            break 'outer;
                        }
                    },
                }
            };
            fired_any = true;
            // A rehearsal ends at its --until instant: what is due then is past the window.
            if stop.deadline().is_some_and(|end| first.due >= end) {
                stop.stopped().await;
                break 'outer;
            }
            // Every entry due at this instant; each waits for its own (jittered) fire instant
            // in a run of its own, so one entry's jitter never holds another entry.
            let mut batch: Vec<(&Entry, DateTime<Utc>)> =
                vec![(entries[first_i], first.fire_at(entries[first_i]))];
            while let Some((i, o)) = upcoming.next_if(|(_, o)| o.due == first.due) {
                batch.push((entries[i], o.fire_at(entries[i])));
            }
            if let Some(p) = progress.as_ref() {
                p.send_modify(|p| p.next_due = first.due);
            }
            loop {
                tokio::select! {
                    _ = rt.clock.sleep_until(first.due) => break,
                    _ = stop.stopped() => break 'outer,
                    changed = schedules.changed(), if reloadable => match changed {
                        Ok(()) => {
                            tracing::info!("schedule reloaded: planning again");
                            continue 'outer;
                        }
                        // Nobody can send a new schedule any more: just wait.
                        Err(_) => reloadable = false,
                    },
                }
            }
            for (entry, fire_at) in batch {
                let (rt, entry, due, firing) =
                    (rt.clone(), entry.clone(), first.due, firing.clone());
                spawn_counted(&mut runs, &progress, async move {
                    if fire_at > due {
                        tokio::select! {
                            _ = rt.clock.sleep_until(fire_at) => {}
                            // Not claimed: the next start catches it up like any missed one.
                            _ = firing.stop.stopped() => return,
                        }
                    }
                    // Lag: how late this fired against the instant it was meant to (its due
                    // instant plus its jitter), on the process's clock.
                    let late = (rt.clock.now() - fire_at).num_microseconds().unwrap_or(0);
                    rt.metrics.scheduler_lag.observe(late.max(0) as f64 / 1e6);
                    let _ = fire(rt, entry, due, 1, firing).await;
                });
            }
            cursor = first.due + TimeDelta::milliseconds(1);
            // Reap finished runs so the set does not grow without bound.
            while let Some(done) = runs.try_join_next() {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a scheduled run panicked");
                }
            }
        }
    }
    tracing::info!(
        in_hand = runs.len(),
        "scheduler stopping: letting runs in hand finish"
    );
    while runs.join_next().await.is_some() {}
    stop.stop(crate::stop::StopReason::Signal);
    for (name, task) in [
        ("backlog recovery", recovery),
        ("reaper", reaper),
        ("heartbeat", heartbeat),
    ] {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "the scheduler's {name} task panicked");
        }
    }
    Ok(())
}

/// How long a stopping scheduler keeps trying to write a run's state while the database is
/// away before leaving it (the row is then reaped as abandoned by the next scheduler).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Writes run state (`what`) until it lands, backing off while the database is away; after a
/// stop, gives up after [`STOP_GRACE`]. `None` when it could not be written (logged).
async fn persist<T, F, Fut>(
    rt: &Runtime,
    stop: &StopHandle,
    about: (Write, &str),
    what: &str,
    op: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::store::Result<T>>,
{
    let stopped_since = OnceLock::new();
    let give_up =
        || stop.is_stopped() && stopped_since.get_or_init(Stopwatch::start).elapsed() >= STOP_GRACE;
    // Each failed attempt is counted and logged by `retry_write`.
    rt.outages.retry_write(about, what, give_up, op).await.ok()
}

/// Registers this process in `schedulers` and refreshes it every few seconds (real time,
/// recording the clock's instants) until stopped; warns when a live scheduler runs another
/// schedule, since the two would disagree on what is due. Errors never end it: while the
/// database is away it keeps trying, and its status says what it waits for.
async fn heartbeat(rt: Runtime, schedules: watch::Receiver<Arc<Schedule>>, stop: StopHandle) {
    use crate::store::heartbeats::{self, SchedulerBeat};
    let started = rt.clock.now();
    let mut row = SchedulerBeat {
        id: uuid::Uuid::now_v7().to_string(),
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        pid: std::process::id() as i64,
        schedule_hash: schedules.borrow().hash.clone(),
        started_at: started,
        last_seen_at: started,
        status: "running".into(),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.stopped() => break,
        }
        row.last_seen_at = rt.clock.now();
        row.schedule_hash = schedules.borrow().hash.clone();
        row.status = rt.outages.waiting().unwrap_or_else(|| "running".into());
        let beat = heartbeats::beat_scheduler(&rt.db, &row).await;
        if let Err(e) = &beat {
            rt.outages.write_failed(
                Write::Heartbeat,
                &row.id,
                "write the scheduler heartbeat",
                e,
            );
        }
        if rt
            .outages
            .observe(Dependency::Database, "write the scheduler heartbeat", &beat)
        {
            continue;
        }
        if n.is_multiple_of(60) {
            crate::store::skew::check(&rt.db, n == 0).await;
        }
        n += 1;
        let others = match heartbeats::alive_schedulers(&rt.db, row.last_seen_at).await {
            Ok(others) => others,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the other schedulers' heartbeats");
                Vec::new()
            }
        };
        for other in others {
            if other.schedule_hash != row.schedule_hash {
                tracing::warn!(
                    other = %format!("{}:{}", other.host, other.pid),
                    their_hash = %other.schedule_hash,
                    our_hash = %row.schedule_hash,
                    "a live scheduler runs a different schedule: the two disagree on what is due"
                );
            }
        }
    }
    row.status = "stopped".into();
    row.last_seen_at = rt.clock.now();
    if let Err(e) = heartbeats::beat_scheduler(&rt.db, &row).await {
        rt.outages.write_failed(
            Write::Heartbeat,
            &row.id,
            "record the scheduler's stop; its heartbeat ages out",
            &e,
        );
    }
}

/// Spawns a run, counted in [`Progress::in_flight`] until it ends.
fn spawn_counted(
    runs: &mut JoinSet<()>,
    progress: &Arc<Option<watch::Sender<Progress>>>,
    run: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let progress = progress.clone();
    if let Some(p) = progress.as_ref() {
        p.send_modify(|p| p.in_flight += 1);
    }
    runs.spawn(counted(progress, run));
}

/// `run`, counted in [`Progress::in_flight`] (already counted in) until it ends.
async fn counted(
    progress: Arc<Option<watch::Sender<Progress>>>,
    run: impl std::future::Future<Output = ()>,
) {
    run.await;
    if let Some(p) = progress.as_ref() {
        p.send_modify(|p| p.in_flight -= 1);
    }
}

/// Spawns a run outside the loop's set (catch-up, backlog and reaper runs), counted in
/// [`Progress::in_flight`]; the stop lets it finish like any other run in hand.
fn spawn_detached(
    progress: &Arc<Option<watch::Sender<Progress>>>,
    run: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let progress = progress.clone();
    if let Some(p) = progress.as_ref() {
        p.send_modify(|p| p.in_flight += 1);
    }
    tokio::spawn(counted(progress, run));
}

/// The most missed occurrences of one entry considered after downtime; older ones are not
/// recorded (a month of an every-minute entry would otherwise be 43,200 rows).
const CATCH_UP_SCAN_LIMIT: usize = 10_000;

/// Before the loop starts: for each entry with a recorded occurrence, the occurrences since it
/// and before `now` are run or recorded as `missed`, as its catch-up policy says.
async fn catch_up(
    schedule: &Schedule,
    rt: &Runtime,
    firing: &Firing,
    progress: &Arc<Option<watch::Sender<Progress>>>,
    now: DateTime<Utc>,
) -> Result<(), crate::store::StoreError> {
    for entry in schedule.enabled() {
        let Some(last) = schedule_runs::last_due(&rt.db, &entry.name).await? else {
            continue;
        };
        let mut missed: Vec<DateTime<Utc>> =
            super::occurrences(entry, last + TimeDelta::milliseconds(1), now)
                .map(|o| o.due)
                .collect();
        if missed.len() > CATCH_UP_SCAN_LIMIT {
            missed.drain(..missed.len() - CATCH_UP_SCAN_LIMIT);
        }
        settle_missed(rt, firing, progress, entry, missed, now).await?;
    }
    Ok(())
}

/// Applies `entry`'s catch-up policy to occurrences that were not claimed when due (`missed`,
/// ascending): the ones it drops are recorded `missed`, the ones it keeps run in order, one
/// after the other. Shared by the start-up catch-up, the outage backlog and the reaper.
async fn settle_missed(
    rt: &Runtime,
    firing: &Firing,
    progress: &Arc<Option<watch::Sender<Progress>>>,
    entry: &Entry,
    missed: Vec<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), crate::store::StoreError> {
    if missed.is_empty() {
        return Ok(());
    }
    let plan = super::catch_up::plan(entry, &missed, now);
    tracing::info!(entry = %entry.name, missed = plan.missed.len(), running = plan.run.len(), policy = ?entry.catch_up, "catching up");
    for due in &plan.missed {
        let claim = Claim {
            entry: &entry.name,
            task: &entry.task,
            due: *due,
            manual: false,
            runner: &firing.runner,
        };
        schedule_runs::record_missed(&rt.db, &claim, now).await?;
    }
    if !plan.run.is_empty() {
        let (rt, entry, firing) = (rt.clone(), entry.clone(), firing.clone());
        spawn_detached(progress, async move {
            for due in plan.run {
                let _ = fire(rt.clone(), entry.clone(), due, 1, firing.clone()).await;
            }
        });
    }
    Ok(())
}

/// Waits for occurrences to land in the backlog (claims that failed while the database was
/// away), then, once the database answers, settles them per each entry's catch-up policy.
async fn recover_backlog(
    rt: Runtime,
    firing: Firing,
    progress: Arc<Option<watch::Sender<Progress>>>,
) {
    let stop = firing.stop.clone();
    loop {
        tokio::select! {
            _ = firing.backlog.added.notified() => {}
            _ = stop.stopped() => return,
        }
        let mut backoff = Backoff::default();
        loop {
            let ping = rt.db.ping().await;
            rt.outages
                .observe(Dependency::Database, "claim due occurrences", &ping);
            if ping.is_ok() {
                let now = rt.clock.now();
                let mut failed = false;
                for (entry, mut dues) in firing.backlog.take() {
                    dues.sort();
                    dues.dedup();
                    if failed {
                        firing.backlog.put(&entry, dues);
                        continue;
                    }
                    if let Err(e) =
                        settle_missed(&rt, &firing, &progress, &entry, dues.clone(), now).await
                    {
                        rt.outages
                            .went_away(Dependency::Database, "record missed occurrences", &e);
                        // Recording missed rows is idempotent: settle them all again later.
                        firing.backlog.put(&entry, dues);
                        failed = true;
                    }
                }
                if !failed {
                    break;
                }
            }
            tokio::select! {
                _ = backoff.wait() => {}
                _ = stop.stopped() => return,
            }
        }
    }
}

/// Finds runs whose lease ran out (their process is gone) at start and every third of a lease
/// period, records them failed ("abandoned") and hands their occurrence to the entry's
/// catch-up policy (a re-run is attempt 2 of the same occurrence), instead of leaving it
/// `running` until the next occurrence takes the lease.
async fn reap_abandoned(
    rt: Runtime,
    schedules: watch::Receiver<Arc<Schedule>>,
    firing: Firing,
    progress: Arc<Option<watch::Sender<Progress>>>,
) {
    let stop = firing.stop.clone();
    loop {
        if stop.is_stopped() {
            return;
        }
        let schedule = schedules.borrow().clone();
        let reaped = reap_once(&rt, &schedule, &firing, &progress).await;
        rt.outages
            .observe(Dependency::Database, "reap abandoned runs", &reaped);
        let period = to_delta(firing.lease) / 3;
        tokio::select! {
            _ = rt.clock.sleep_until(rt.clock.now() + period) => {}
            _ = stop.stopped() => return,
        }
    }
}

async fn reap_once(
    rt: &Runtime,
    schedule: &Schedule,
    firing: &Firing,
    progress: &Arc<Option<watch::Sender<Progress>>>,
) -> Result<(), crate::store::StoreError> {
    let now = rt.clock.now();
    let cutoff = now - MAX_CLOCK_SKEW;
    let live = firing.live();
    for lease in schedule_leases::expired(&rt.db, cutoff).await? {
        if live.contains(&lease.run_id)
            || !schedule_leases::take_expired(&rt.db, &lease.entry, lease.run_id, cutoff).await?
        {
            continue;
        }
        let Some((name, due, attempt)) =
            schedule_runs::abandon(&rt.db, lease.run_id, ABANDONED, now).await?
        else {
            continue;
        };
        tracing::warn!(entry = %name, run = lease.run_id, due = %crate::rfc3339::utc(due), "abandoned: the process running it stopped renewing its lease; recorded as failed");
        let Some(entry) = schedule.enabled().find(|e| e.name == name) else {
            continue;
        };
        let plan = super::catch_up::plan(entry, &[due], now);
        if plan.run.is_empty() {
            continue;
        }
        tracing::info!(entry = %name, due = %crate::rfc3339::utc(due), attempt = attempt + 1, policy = ?entry.catch_up, "running the abandoned occurrence again");
        let (rt, entry, firing) = (rt.clone(), entry.clone(), firing.clone());
        spawn_detached(progress, async move {
            let _ = fire(rt, entry, due, attempt + 1, firing).await;
        });
    }
    Ok(())
}

/// What an abandoned run is recorded with.
pub const ABANDONED: &str = "abandoned: the process running it stopped renewing its lease";

/// On a sped-up clock, how long in real time an occurrence waits for the previous run of its
/// entry before it counts as overlapping it.
pub const OVERLAP_GRACE: Duration = Duration::from_millis(100);

/// The least real time a running-lock lasts unrenewed, whatever the clock's speed.
pub const MIN_REAL_LEASE: Duration = Duration::from_secs(10);

/// How long a running-lock lasts without renewal unless configured (`CONECTA_LEASE`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

fn to_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// How often a buffered run checks whether the running one has finished (on the clock).
const BUFFER_POLL: TimeDelta = TimeDelta::seconds(1);

/// Reports a failed lease renewal of `entry`: an outage to [`Outages`](crate::outage::Outages),
/// any failure (an error, or a lease found gone) to the failed-write count.
fn renewal_failed(rt: &Runtime, entry: &str, what: &str, renewed: &crate::store::Result<bool>) {
    rt.outages.observe(Dependency::Database, what, renewed);
    match renewed {
        Ok(true) => {}
        Ok(false) => rt.outages.write_failed(
            Write::Lease,
            entry,
            what,
            &"the lease is no longer this run's (it expired and was taken over)",
        ),
        Err(e) => rt.outages.write_failed(Write::Lease, entry, what, e),
    }
}

/// How a wait in the buffer seat ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Buffered {
    /// The running one ended; this run holds the running-lock now.
    Holds,
    /// Another run already waits in the seat: this one is skipped.
    SeatTaken,
    /// The scheduler is stopping: it starts no new run.
    Stopped,
    /// The seat could not be taken: the database did not answer (the error).
    Failed(String),
}

/// `overlap = "buffer-one"`: the run `id` found the entry busy. It takes the entry's single
/// buffer slot (a second lease, `ENTRY#buffered`, held across processes like the first) and
/// waits there until the running one ends, then holds the running-lock itself. When the slot
/// is taken, a run is already waiting, and this one is skipped. A stop gives up the seat: a
/// stopping scheduler finishes runs in hand, it starts no new one.
async fn wait_in_buffer(rt: &Runtime, entry: &str, id: i64, firing: &Firing) -> Buffered {
    let (lease, stop) = (firing.lease, &firing.stop);
    let slot = format!("{entry}#buffered");
    let seat = persist(
        rt,
        stop,
        (Write::Lease, entry),
        "take the waiting seat",
        || {
            let now = rt.clock.now();
            schedule_leases::acquire(&rt.db, &slot, id, now, now + to_delta(lease), &[])
        },
    )
    .await;
    match seat {
        Some(Acquired::Free) | Some(Acquired::TookOver(_)) => {}
        Some(Acquired::Held) => return Buffered::SeatTaken,
        None if stop.is_stopped() => return Buffered::Stopped,
        None => {
            return Buffered::Failed(
                "cannot take the waiting seat: the database did not answer".into(),
            );
        }
    }
    tracing::info!(
        entry,
        run = id,
        "buffered: waiting for the running one to finish"
    );
    let give_up_seat = || {
        persist(
            rt,
            stop,
            (Write::Lease, entry),
            "give up the waiting seat",
            || schedule_leases::release(&rt.db, &slot, id),
        )
    };
    loop {
        tokio::select! {
            _ = rt.clock.sleep_until(rt.clock.now() + BUFFER_POLL) => {}
            _ = stop.stopped() => {}
        }
        if stop.is_stopped() {
            give_up_seat().await;
            return Buffered::Stopped;
        }
        let now = rt.clock.now();
        let renewed = schedule_leases::renew(&rt.db, &slot, id, now + to_delta(lease)).await;
        renewal_failed(rt, entry, "renew the waiting seat", &renewed);
        let live = firing.live();
        let taken =
            schedule_leases::acquire(&rt.db, entry, id, now, now + to_delta(lease), &live).await;
        match taken {
            Ok(Acquired::Held) => continue,
            Ok(Acquired::TookOver(dead)) => {
                persist(
                    rt,
                    stop,
                    (Write::Run, entry),
                    "record an abandoned run",
                    || schedule_runs::abandon(&rt.db, dead, ABANDONED, now),
                )
                .await;
            }
            Ok(Acquired::Free) => {}
            Err(e) => {
                rt.outages
                    .observe::<(), _>(Dependency::Database, "take the running-lock", &Err(e));
                continue;
            }
        }
        give_up_seat().await;
        // Its start is read after the lease was won, so it is never before the end the
        // previous run recorded (which that run read before giving the lease back).
        let started = rt.clock.now();
        persist(
            rt,
            stop,
            (Write::Run, entry),
            "record a buffered run's start",
            || schedule_runs::mark_started(&rt.db, id, started),
        )
        .await;
        return Buffered::Holds;
    }
}

/// Claims one occurrence (run number `attempt` of it) and, if this process won it, runs it
/// and records the outcome, returning the run's id. While the database is away the
/// occurrence goes to the backlog.
async fn fire(
    rt: Runtime,
    entry: Entry,
    due: DateTime<Utc>,
    attempt: i64,
    firing: Firing,
) -> Option<i64> {
    let claim = Claim {
        entry: &entry.name,
        task: &entry.task,
        due,
        manual: false,
        runner: &firing.runner,
    };
    if attempt == 1 && rt.outages.is_down(Dependency::Database) {
        firing.backlog.push(&entry, due);
        return None;
    }
    let claimed = schedule_runs::claim_attempt(&rt.db, &claim, attempt, rt.clock.now()).await;
    let id = match claimed {
        Ok(Some(id)) => {
            rt.outages.came_back(Dependency::Database);
            id
        }
        Ok(None) => return None,
        Err(e) => {
            match e.kind() {
                ErrorKind::Unavailable(dep) if attempt == 1 => {
                    rt.outages.went_away(dep, "claim an occurrence", &e);
                    firing.backlog.push(&entry, due);
                }
                _ => {
                    tracing::error!(entry = %entry.name, due = %due, error = %e, "cannot claim occurrence; it is not run")
                }
            }
            return None;
        }
    };
    run_claimed(&rt, &entry, due, id, &firing).await;
    firing.set_live(id, false);
    Some(id)
}

async fn run_claimed(rt: &Runtime, entry: &Entry, due: DateTime<Utc>, id: i64, firing: &Firing) {
    let (lease, stop) = (firing.lease, &firing.stop);
    let leased = entry.overlap != Overlap::Allow;
    let finish_at = |outcome: Outcome, error: Option<String>, at: DateTime<Utc>| async move {
        persist(
            rt,
            stop,
            (Write::Run, &entry.name),
            "record a run's outcome",
            || schedule_runs::finish(&rt.db, id, outcome, error.as_deref(), at),
        )
        .await;
    };
    let finish =
        |outcome: Outcome, error: Option<String>| finish_at(outcome, error, rt.clock.now());
    if leased {
        firing.set_live(id, true);
        // On a sped-up clock a run that takes a few real milliseconds spans simulated
        // minutes: the previous run gets OVERLAP_GRACE of real time to finish before this one
        // counts as overlapping it, as at real speed it would have finished long before.
        let sped_up = rt.clock.simulated_span(Duration::from_secs(1)) > Duration::from_secs(1);
        let waiting = crate::clock::Stopwatch::start();
        let acquired = loop {
            let live = firing.live();
            let acquired = persist(
                rt,
                stop,
                (Write::Lease, &entry.name),
                "take the running-lock",
                || {
                    let now = rt.clock.now();
                    schedule_leases::acquire(
                        &rt.db,
                        &entry.name,
                        id,
                        now,
                        now + to_delta(lease),
                        &live,
                    )
                },
            )
            .await;
            if sped_up
                && acquired == Some(Acquired::Held)
                && waiting.elapsed() < OVERLAP_GRACE
                && !stop.is_stopped()
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            }
            break acquired;
        };
        match acquired {
            Some(Acquired::Free) => {}
            Some(Acquired::TookOver(dead)) => {
                tracing::warn!(entry = %entry.name, abandoned_run = dead, "took over an expired lease: its run is recorded as failed");
                persist(
                    rt,
                    stop,
                    (Write::Run, &entry.name),
                    "record an abandoned run",
                    || schedule_runs::abandon(&rt.db, dead, ABANDONED, rt.clock.now()),
                )
                .await;
            }
            Some(Acquired::Held) => {
                let buffered = if entry.overlap == Overlap::BufferOne {
                    wait_in_buffer(rt, &entry.name, id, firing).await
                } else {
                    Buffered::SeatTaken
                };
                match buffered {
                    Buffered::Holds => {}
                    Buffered::SeatTaken | Buffered::Stopped => {
                        finish(
                            Outcome::SkippedOverlap,
                            Some("the previous run was still going".into()),
                        )
                        .await;
                        tracing::info!(entry = %entry.name, due = %due, outcome = "skipped_overlap", "skipped");
                        return;
                    }
                    Buffered::Failed(error) => {
                        finish(Outcome::Failed, Some(error)).await;
                        return;
                    }
                }
            }
            None => {
                finish(
                    Outcome::Failed,
                    Some("cannot take the running-lock: the database is unavailable".into()),
                )
                .await;
                return;
            }
        }
    }
    tracing::info!(entry = %entry.name, due = %due, "run started");
    let started = rt.clock.now();
    let give_up = || stop.is_stopped();
    let work = execute(
        rt,
        &entry.task,
        &entry.args,
        entry.mode,
        &entry.queue,
        entry.timeout,
        &give_up,
    );
    let (outcome, error) = if leased {
        // Renew the lease at a third of its length while the run is alive.
        let renewing = async {
            loop {
                rt.clock
                    .sleep_until(rt.clock.now() + to_delta(lease) / 3)
                    .await;
                let until = rt.clock.now() + to_delta(lease);
                let renewed = schedule_leases::renew(&rt.db, &entry.name, id, until).await;
                renewal_failed(rt, &entry.name, "renew the running-lock", &renewed);
            }
        };
        tokio::select! {
            r = work => r,
            _ = renewing => unreachable!("renewal never ends"),
        }
    } else {
        work.await
    };
    // The end is read before the lease is given back: a buffered run that takes the entry
    // next starts at or after it.
    let finished = rt.clock.now();
    if leased {
        persist(
            rt,
            stop,
            (Write::Lease, &entry.name),
            "release the running-lock",
            || schedule_leases::release(&rt.db, &entry.name, id),
        )
        .await;
    }
    let ms = (finished - started).num_milliseconds();
    match &error {
        Some(e) => {
            tracing::warn!(entry = %entry.name, due = %due, outcome = outcome.as_str(), duration_ms = ms, "run ended: {e}")
        }
        None => {
            tracing::info!(entry = %entry.name, due = %due, outcome = outcome.as_str(), duration_ms = ms, "run ended")
        }
    }
    finish_at(outcome, error, finished).await;
}
