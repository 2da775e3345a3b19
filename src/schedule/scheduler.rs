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

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::planner::merged;
use super::{Entry, Mode, Overlap, Schedule};
use crate::queue::worker::StopHandle;
use crate::queue::{NewJob, Runtime};
use crate::store::schedule_leases::{self, Acquired};
use crate::store::schedule_runs::{self, Claim, Outcome};

/// How far ahead the loop looks for the next occurrence.
const HORIZON: TimeDelta = TimeDelta::days(400);

/// Runs `task` once with `args`: inline through its handler, bounded by `timeout` on the
/// runtime's clock, or enqueued on `queue` in queue mode. The same path serves the scheduler
/// and `run-task`.
pub async fn execute(
    rt: &Runtime,
    task: &str,
    args: &Map<String, Value>,
    mode: Mode,
    queue: &str,
    timeout: Option<Duration>,
) -> (Outcome, Option<String>) {
    if mode == Mode::Queue {
        let job = NewJob::new(task, Value::Object(args.clone())).on(queue);
        return match rt.dispatch(job).await {
            Ok(_) => (Outcome::Succeeded, None),
            Err(e) => (Outcome::Failed, Some(format!("cannot enqueue {task}: {e}"))),
        };
    }
    let Some(handler) = rt.registry.get(task) else {
        return (
            Outcome::Failed,
            Some(format!(
                "task \"{task}\" has no implementation in this build"
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

/// Runs the scheduler until `stop`, switching to each schedule sent on `schedules` (SIGHUP
/// reload). A switch re-plans from where the loop stands; an occurrence already claimed is
/// not fired again, since its claim exists. Occurrences from `from` on are fired: a process
/// passes the instant it started, so one falling due while it connects is not lost.
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
    let runner = runner_name();
    let firing = Firing {
        runner: runner.clone(),
        lease,
        stop: stop.clone(),
    };
    let mut runs = JoinSet::new();
    let mut cursor = from.min(rt.clock.now());
    tracing::info!(entries = schedule.enabled().count(), hash = %schedule.hash, "scheduler started");
    let heartbeat = tokio::spawn(heartbeat(rt.clone(), schedules.clone(), stop.clone()));
    catch_up(&schedule, &rt, &firing, &mut runs, &progress, cursor).await?;
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
                tracing::warn!("no enabled entry is ever due; waiting for a stop");
                stop.stopped().await;
                break 'outer;
            };
            fired_any = true;
            // Every entry due at this instant, fired in order of their (jittered) start.
            let mut batch: Vec<(&Entry, DateTime<Utc>)> =
                vec![(entries[first_i], first.fire_at(entries[first_i]))];
            while let Some((i, o)) = upcoming.next_if(|(_, o)| o.due == first.due) {
                batch.push((entries[i], o.fire_at(entries[i])));
            }
            batch.sort_by_key(|(_, fire)| *fire);
            if let Some(p) = progress.as_ref() {
                p.send_modify(|p| p.next_due = first.due);
            }
            for (entry, fire_at) in batch {
                loop {
                    tokio::select! {
                        _ = rt.clock.sleep_until(fire_at) => break,
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
                let (rt, entry, due, firing) =
                    (rt.clone(), entry.clone(), first.due, firing.clone());
                spawn_counted(&mut runs, &progress, async move {
                    fire(rt, entry, due, firing).await;
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
    stop.stop(crate::queue::worker::StopReason::Signal);
    if let Ok(Err(e)) = heartbeat.await {
        tracing::warn!(error = %e, "cannot record the scheduler's stop");
    }
    Ok(())
}

/// Registers this process in `schedulers` and refreshes it every few seconds (real time,
/// recording the clock's instants) until stopped; warns when a live scheduler runs another
/// schedule, since the two would disagree on what is due.
async fn heartbeat(
    rt: Runtime,
    schedules: watch::Receiver<Arc<Schedule>>,
    stop: StopHandle,
) -> Result<(), crate::store::StoreError> {
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
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.stopped() => break,
        }
        row.last_seen_at = rt.clock.now();
        row.schedule_hash = schedules.borrow().hash.clone();
        heartbeats::beat_scheduler(&rt.db, &row).await?;
        for other in heartbeats::alive_schedulers(&rt.db, row.last_seen_at).await? {
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
    heartbeats::beat_scheduler(&rt.db, &row).await
}

/// Spawns a run, counted in [`Progress::in_flight`] until it ends.
fn spawn_counted(
    runs: &mut JoinSet<()>,
    progress: &Arc<Option<watch::Sender<Progress>>>,
    run: impl std::future::Future<Output = ()> + Send + 'static,
) {
    if let Some(p) = progress.as_ref() {
        p.send_modify(|p| p.in_flight += 1);
    }
    let progress = progress.clone();
    runs.spawn(async move {
        run.await;
        if let Some(p) = progress.as_ref() {
            p.send_modify(|p| p.in_flight -= 1);
        }
    });
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
    runs: &mut JoinSet<()>,
    progress: &Arc<Option<watch::Sender<Progress>>>,
    now: DateTime<Utc>,
) -> Result<(), crate::store::StoreError> {
    let runner = firing.runner.as_str();
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
        if missed.is_empty() {
            continue;
        }
        let plan = super::catch_up::plan(entry, &missed, now);
        tracing::info!(entry = %entry.name, missed = plan.missed.len(), running = plan.run.len(), policy = ?entry.catch_up, "catching up");
        for due in &plan.missed {
            let claim = Claim {
                entry: &entry.name,
                task: &entry.task,
                due: *due,
                manual: false,
                runner,
            };
            schedule_runs::record_missed(&rt.db, &claim, now).await?;
        }
        if !plan.run.is_empty() {
            // In order, one after the other, as catch_up = "all" promises.
            let (rt, entry, firing) = (rt.clone(), entry.clone(), firing.clone());
            spawn_counted(runs, progress, async move {
                for due in plan.run {
                    fire(rt.clone(), entry.clone(), due, firing.clone()).await;
                }
            });
        }
    }
    Ok(())
}

/// What an abandoned run is recorded with.
pub const ABANDONED: &str = "abandoned: the process running it stopped renewing its lease";

/// How long a running-lock lasts without renewal unless configured (`CONECTA_LEASE`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

fn to_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Claims one occurrence and, if this process won it, runs it and records the outcome.
/// How often a buffered run checks whether the running one has finished (on the clock).
const BUFFER_POLL: TimeDelta = TimeDelta::seconds(1);

/// `overlap = "buffer-one"`: the run `id` found the entry busy. It takes the entry's single
/// buffer slot (a second lease, `ENTRY#buffered`, held across processes like the first) and
/// waits there until the running one ends, then holds the running-lock itself: true. When the
/// slot is taken, a run is already waiting: false, and this one is skipped. A stop gives up
/// the seat (false): a stopping scheduler finishes runs in hand, it starts no new one.
async fn wait_in_buffer(
    rt: &Runtime,
    entry: &str,
    id: i64,
    lease: Duration,
    stop: &StopHandle,
) -> bool {
    let slot = format!("{entry}#buffered");
    let now = rt.clock.now();
    match schedule_leases::acquire(&rt.db, &slot, id, now, now + to_delta(lease)).await {
        Ok(Acquired::Free) | Ok(Acquired::TookOver(_)) => {}
        Ok(Acquired::Held) | Err(_) => return false,
    }
    tracing::info!(
        entry,
        run = id,
        "buffered: waiting for the running one to finish"
    );
    loop {
        tokio::select! {
            _ = rt.clock.sleep_until(rt.clock.now() + BUFFER_POLL) => {}
            _ = stop.stopped() => {}
        }
        if stop.is_stopped() {
            let _ = schedule_leases::release(&rt.db, &slot, id).await;
            return false;
        }
        let now = rt.clock.now();
        let _ = schedule_leases::renew(&rt.db, &slot, id, now + to_delta(lease)).await;
        match schedule_leases::acquire(&rt.db, entry, id, now, now + to_delta(lease)).await {
            Ok(Acquired::Held) => continue,
            Ok(Acquired::TookOver(dead)) => {
                let _ = schedule_runs::finish(&rt.db, dead, Outcome::Failed, Some(ABANDONED), now)
                    .await;
            }
            Ok(Acquired::Free) => {}
            Err(e) => {
                tracing::warn!(entry, error = %e, "cannot take the running-lock; waiting");
                continue;
            }
        }
        let _ = schedule_leases::release(&rt.db, &slot, id).await;
        let _ = schedule_runs::mark_started(&rt.db, id, now).await;
        return true;
    }
}

/// What every run this process fires shares: who it is, how long its leases last, its stop.
#[derive(Clone)]
struct Firing {
    runner: String,
    lease: Duration,
    stop: StopHandle,
}

async fn fire(rt: Runtime, entry: Entry, due: DateTime<Utc>, firing: Firing) {
    let Firing {
        runner,
        lease,
        stop,
    } = firing;
    let claim = Claim {
        entry: &entry.name,
        task: &entry.task,
        due,
        manual: false,
        runner: &runner,
    };
    let id = match schedule_runs::claim(&rt.db, &claim, rt.clock.now()).await {
        Ok(Some(id)) => id,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(entry = %entry.name, due = %due, error = %e, "cannot claim occurrence");
            return;
        }
    };
    let leased = entry.overlap != Overlap::Allow;
    if leased {
        let now = rt.clock.now();
        match schedule_leases::acquire(&rt.db, &entry.name, id, now, now + to_delta(lease)).await {
            Ok(Acquired::Free) => {}
            Ok(Acquired::TookOver(dead)) => {
                tracing::warn!(entry = %entry.name, abandoned_run = dead, "took over an expired lease: its run is recorded as failed");
                let _ = schedule_runs::finish(&rt.db, dead, Outcome::Failed, Some(ABANDONED), now)
                    .await;
            }
            Ok(Acquired::Held) => {
                let buffered = entry.overlap == Overlap::BufferOne
                    && wait_in_buffer(&rt, &entry.name, id, lease, &stop).await;
                if !buffered {
                    let _ = schedule_runs::finish(
                        &rt.db,
                        id,
                        Outcome::SkippedOverlap,
                        Some("the previous run was still going"),
                        rt.clock.now(),
                    )
                    .await;
                    tracing::info!(entry = %entry.name, due = %due, outcome = "skipped_overlap", "skipped");
                    return;
                }
            }
            Err(e) => {
                let _ = schedule_runs::finish(
                    &rt.db,
                    id,
                    Outcome::Failed,
                    Some(&format!("cannot take the running-lock: {e}")),
                    now,
                )
                .await;
                return;
            }
        }
    }
    tracing::info!(entry = %entry.name, due = %due, "run started");
    let started = rt.clock.now();
    let work = execute(
        &rt,
        &entry.task,
        &entry.args,
        entry.mode,
        &entry.queue,
        entry.timeout,
    );
    let (outcome, error) = if leased {
        // Renew the lease at a third of its length while the run is alive.
        let renewing = async {
            loop {
                rt.clock
                    .sleep_until(rt.clock.now() + to_delta(lease) / 3)
                    .await;
                let until = rt.clock.now() + to_delta(lease);
                if let Err(e) = schedule_leases::renew(&rt.db, &entry.name, id, until).await {
                    tracing::warn!(entry = %entry.name, error = %e, "cannot renew the running-lock");
                }
            }
        };
        tokio::select! {
            r = work => r,
            _ = renewing => unreachable!("renewal never ends"),
        }
    } else {
        work.await
    };
    if leased && let Err(e) = schedule_leases::release(&rt.db, &entry.name, id).await {
        tracing::warn!(entry = %entry.name, error = %e, "cannot release the running-lock; it expires by itself");
    }
    let finished = rt.clock.now();
    if let Err(e) = schedule_runs::finish(&rt.db, id, outcome, error.as_deref(), finished).await {
        tracing::error!(entry = %entry.name, error = %e, "cannot record the outcome");
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
}
