//! One conformance suite for every queue driver and store (docs/queue.md): each behaviour below is
//! written once, generic over the harness, and run on memory (the `sync` connection), the
//! database driver on SQLite, PostgreSQL and MariaDB, and the Redis driver.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Harness, RETRY_AFTER};
use chrono::TimeDelta;
use conecta::queue::runtime::{Defaults, Outcome};
use conecta::queue::worker::{self, WorkerOptions};
use conecta::queue::{Enqueued, NewJob, UniqueUntil};
use conecta::stop::{StopHandle, StopReason};
use conecta::store::{batches, failed_jobs, queue_minutes};
use serde_json::json;

fn q(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn record(n: u64) -> NewJob {
    NewJob::new("test:record", json!({ "n": n }))
}

fn defaults(tries: u32) -> Defaults {
    Defaults {
        tries,
        timeout: 60,
        backoff: 0,
    }
}

async fn drain(h: &Harness, concurrency: usize, queues: &[&str]) -> u64 {
    let opts = WorkerOptions {
        queues: q(queues),
        concurrency,
        stop_when_empty: true,
        defaults: defaults(1),
        ..WorkerOptions::default()
    };
    let summary = worker::run(h.rt.clone(), opts, StopHandle::default())
        .await
        .expect("worker runs");
    assert_eq!(summary.reason, StopReason::Empty);
    summary.processed
}

async fn every_job_runs_at_least_once(h: Harness) {
    let jobs: Vec<NewJob> = (0..50).map(record).collect();
    let answers = h.rt.dispatch_bulk(jobs).await.unwrap();
    assert!(answers.iter().all(|a| !a.is_duplicate()));
    if h.name != "memory" {
        drain(&h, 4, &["default"]).await;
    }
    let mut seen = h.recorder.seen();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, (0..50).collect::<Vec<_>>(), "[{}]", h.name);
    let depths = h.rt.queue.depths(h.now()).await.unwrap();
    assert!(
        depths
            .iter()
            .all(|d| d.pending + d.reserved + d.delayed == 0),
        "[{}] {depths:?}",
        h.name
    );
    h.finish().await;
}

async fn concurrent_reservers_never_share_a_job_and_lose_none(h: Harness) {
    for chunk in (0..2000u64).collect::<Vec<_>>().chunks(500) {
        let jobs = chunk.iter().map(|n| record(*n)).collect();
        h.rt.queue.enqueue_bulk(jobs, h.now()).await.unwrap();
    }
    let held: Arc<Mutex<HashSet<String>>> = Default::default();
    let done: Arc<Mutex<Vec<u64>>> = Default::default();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (rt, held, done) = (h.rt.clone(), held.clone(), done.clone());
        let now = h.now();
        tasks.push(tokio::spawn(async move {
            while let Some(job) = rt.queue.reserve(&q(&["default"]), now).await.unwrap() {
                let uuid = job.uuid();
                assert!(
                    held.lock().unwrap().insert(uuid.clone()),
                    "{uuid} held twice"
                );
                tokio::task::yield_now().await;
                let n = job.envelope.as_ref().unwrap().data["n"].as_u64().unwrap();
                held.lock().unwrap().remove(&uuid);
                rt.queue.delete(&job).await.unwrap();
                done.lock().unwrap().push(n);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut done = done.lock().unwrap().clone();
    done.sort_unstable();
    assert_eq!(
        done.len(),
        2000,
        "[{}] a job was delivered twice or lost",
        h.name
    );
    done.dedup();
    assert_eq!(done.len(), 2000, "[{}]", h.name);
    h.finish().await;
}

async fn a_vanished_workers_job_is_delivered_again_after_retry_after(h: Harness) {
    h.rt.queue.enqueue(record(7), h.now()).await.unwrap();
    let first =
        h.rt.queue
            .reserve(&q(&["default"]), h.now())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(first.attempts, 1);
    // The worker holding it "dies": nobody acks. Before retry_after nobody else gets it.
    h.clock.advance(TimeDelta::seconds(RETRY_AFTER as i64 - 1));
    assert!(
        h.rt.queue
            .reserve(&q(&["default"]), h.now())
            .await
            .unwrap()
            .is_none(),
        "[{}]",
        h.name
    );
    h.clock.advance(TimeDelta::seconds(2));
    let again =
        h.rt.queue
            .reserve(&q(&["default"]), h.now())
            .await
            .unwrap()
            .expect("redelivered");
    assert_eq!(again.uuid(), first.uuid());
    assert_eq!(again.attempts, 2, "[{}]", h.name);
    h.rt.queue.delete(&again).await.unwrap();
    assert!(
        h.rt.queue
            .reserve(&q(&["default"]), h.now() + TimeDelta::days(1))
            .await
            .unwrap()
            .is_none()
    );
    h.finish().await;
}

async fn delayed_jobs_wait_for_their_time(h: Harness) {
    let mut job = record(1);
    job.delay = 60;
    h.rt.queue.enqueue(job, h.now()).await.unwrap();
    assert!(
        h.rt.queue
            .reserve(&q(&["default"]), h.now())
            .await
            .unwrap()
            .is_none()
    );
    let d = h.rt.queue.depths(h.now()).await.unwrap();
    assert_eq!(d[0].delayed, 1, "[{}] {d:?}", h.name);
    h.clock.advance(TimeDelta::seconds(61));
    assert!(
        h.rt.queue
            .reserve(&q(&["default"]), h.now())
            .await
            .unwrap()
            .is_some(),
        "[{}]",
        h.name
    );
    h.finish().await;
}

async fn queues_are_taken_in_strict_priority_order(h: Harness) {
    h.rt.queue.enqueue(record(1), h.now()).await.unwrap();
    h.rt.queue
        .enqueue(record(2).on("high"), h.now())
        .await
        .unwrap();
    h.rt.queue.enqueue(record(3), h.now()).await.unwrap();
    h.rt.queue
        .enqueue(record(4).on("high"), h.now())
        .await
        .unwrap();
    let mut order = Vec::new();
    while let Some(job) =
        h.rt.queue
            .reserve(&q(&["high", "default"]), h.now())
            .await
            .unwrap()
    {
        order.push(job.envelope.as_ref().unwrap().data["n"].as_u64().unwrap());
        h.rt.queue.delete(&job).await.unwrap();
    }
    assert_eq!(order, [2, 4, 1, 3], "[{}]", h.name);
    h.finish().await;
}

async fn backoff_list_spaces_retries_then_the_job_fails_with_its_exception(h: Harness) {
    let mut job = NewJob::new("test:fail", json!({ "n": 9 }));
    job.tries = Some(4);
    job.backoff = Some(vec![10, 60, 300]);
    h.rt.queue.enqueue(job, h.now()).await.unwrap();
    let mut outcomes = Vec::new();
    for wait in [0, 10, 60, 300] {
        h.clock.advance(TimeDelta::seconds(wait));
        // One second early, the job is not yet available.
        if wait > 0 {
            let early =
                h.rt.queue
                    .reserve(&q(&["default"]), h.now() - TimeDelta::seconds(1))
                    .await
                    .unwrap();
            assert!(early.is_none(), "[{}] retry came early", h.name);
        }
        let job =
            h.rt.queue
                .reserve(&q(&["default"]), h.now())
                .await
                .unwrap()
                .expect("available");
        outcomes.push(h.rt.process(job, &defaults(1)).await.unwrap());
    }
    assert_eq!(outcomes[0], Outcome::Released(Duration::from_secs(10)));
    assert_eq!(outcomes[1], Outcome::Released(Duration::from_secs(60)));
    assert_eq!(outcomes[2], Outcome::Released(Duration::from_secs(300)));
    assert!(
        matches!(&outcomes[3], Outcome::Failed(e) if e.starts_with("job 9 always fails")),
        "[{}] {outcomes:?}",
        h.name
    );
    let failed = failed_jobs::list(&h.db).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].connection, h.rt.queue.connection());
    assert_eq!(failed[0].queue, "default");
    assert!(
        failed[0].exception.contains("failed after 4 attempts"),
        "{}",
        failed[0].exception
    );
    assert_eq!(failed[0].failed_at, h.now().with_nanosecond_zero());
    assert!(
        h.rt.queue
            .reserve(&q(&["default"]), h.now() + TimeDelta::days(1))
            .await
            .unwrap()
            .is_none()
    );
    h.finish().await;
}

trait NoNanos {
    fn with_nanosecond_zero(self) -> Self;
}
impl NoNanos for chrono::DateTime<chrono::Utc> {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap()
    }
}

async fn a_retried_failed_job_runs_again(h: Harness) {
    *h.recorder.flaky_failures_left.lock().unwrap() = 1;
    h.rt.queue
        .enqueue(NewJob::new("test:flaky", json!({ "n": 5 })), h.now())
        .await
        .unwrap();
    let job =
        h.rt.queue
            .reserve(&q(&["default"]), h.now())
            .await
            .unwrap()
            .unwrap();
    assert!(matches!(
        h.rt.process(job, &defaults(1)).await.unwrap(),
        Outcome::Failed(_)
    ));
    let failed = failed_jobs::list(&h.db).await.unwrap();
    assert_eq!(failed.len(), 1);
    let uuid =
        h.rt.retry_failed(failed[0].id)
            .await
            .unwrap()
            .expect("retried");
    assert_eq!(uuid, failed[0].uuid);
    assert!(failed_jobs::list(&h.db).await.unwrap().is_empty());
    let job =
        h.rt.queue
            .reserve(&q(&["default"]), h.now())
            .await
            .unwrap()
            .expect("back on its queue");
    assert_eq!(job.attempts, 1, "[{}] attempts start over", h.name);
    assert_eq!(
        h.rt.process(job, &defaults(1)).await.unwrap(),
        Outcome::Succeeded
    );
    assert_eq!(h.recorder.seen(), [5]);
    h.finish().await;
}

async fn concurrent_enqueues_of_one_unique_key_create_exactly_one_job(h: Harness) {
    for (i, until) in [
        UniqueUntil::Processed,
        UniqueUntil::Processing,
        UniqueUntil::Ttl,
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("sync-analytics:{i}:2026-11-27");
        let mut tasks = Vec::new();
        for n in 0..100 {
            let rt = h.rt.clone();
            let job = record(n).unique(key.clone(), 3600, until);
            let now = h.now();
            tasks.push(tokio::spawn(async move {
                rt.queue.enqueue(job, now).await.unwrap()
            }));
        }
        let mut stored = 0;
        for t in tasks {
            if !t.await.unwrap().is_duplicate() {
                stored += 1;
            }
        }
        assert_eq!(stored, 1, "[{}] {until:?}", h.name);
    }
    let depth: u64 = h.pending().await;
    assert_eq!(depth, 3, "[{}]", h.name);
    assert_eq!(
        h.rt.queue
            .locks("sync-analytics:", h.now())
            .await
            .unwrap()
            .len(),
        3
    );
    h.finish().await;
}

async fn locks_are_released_on_success_failure_and_undecodable_payload(h: Harness) {
    let now = h.now();
    let cases = [
        ("ok", NewJob::new("test:record", json!({ "n": 1 }))),
        ("fail", NewJob::new("test:fail", json!({ "n": 2 }))),
        (
            "undecodable",
            NewJob::new("test:record", json!({ "n": "not a number" })),
        ),
        ("unknown", NewJob::new("no:such-job", json!({}))),
    ];
    for (key, job) in cases {
        let job = job.unique(key, 3600, UniqueUntil::Processed);
        assert!(
            !h.rt
                .queue
                .enqueue(job.clone(), now)
                .await
                .unwrap()
                .is_duplicate()
        );
        assert!(
            h.rt.queue
                .enqueue(job.clone(), now)
                .await
                .unwrap()
                .is_duplicate(),
            "[{}] {key}",
            h.name
        );
        let reserved =
            h.rt.queue
                .reserve(&q(&["default"]), now)
                .await
                .unwrap()
                .unwrap();
        h.rt.process(reserved, &defaults(1)).await.unwrap();
        assert!(
            h.rt.queue.locks(key, now).await.unwrap().is_empty(),
            "[{}] lock kept after {key}",
            h.name
        );
        assert!(
            !h.rt.queue.enqueue(job, now).await.unwrap().is_duplicate(),
            "[{}] {key}",
            h.name
        );
        let again =
            h.rt.queue
                .reserve(&q(&["default"]), now)
                .await
                .unwrap()
                .unwrap();
        h.rt.queue.delete(&again).await.unwrap();
        h.rt.queue.force_unlock(key).await.unwrap();
    }
    let failed = failed_jobs::list(&h.db).await.unwrap();
    let undecodable = failed
        .iter()
        .find(|f| f.payload.contains("not a number"))
        .expect("undecodable job recorded");
    assert!(
        undecodable.exception.contains("could not be decoded"),
        "{}",
        undecodable.exception
    );
    let unknown = failed
        .iter()
        .find(|f| f.payload.contains("no:such-job"))
        .expect("unknown job recorded");
    assert!(
        unknown.exception.starts_with("unknown job \"no:such-job\""),
        "{}",
        unknown.exception
    );

    // Until processing: released as soon as the job starts.
    let job = record(3).unique("early", 3600, UniqueUntil::Processing);
    h.rt.queue.enqueue(job.clone(), now).await.unwrap();
    let reserved =
        h.rt.queue
            .reserve(&q(&["default"]), now)
            .await
            .unwrap()
            .unwrap();
    h.rt.process(reserved, &defaults(1)).await.unwrap();
    assert!(!h.rt.queue.enqueue(job, now).await.unwrap().is_duplicate());

    // Until ttl: kept after success, free once expired.
    let job = record(4).unique("ttl", 60, UniqueUntil::Ttl);
    h.rt.queue.enqueue(job.clone(), now).await.unwrap();
    let reserved =
        h.rt.queue
            .reserve(&q(&["early", "default"]), now)
            .await
            .unwrap()
            .unwrap();
    h.rt.process(reserved, &defaults(1)).await.unwrap();
    assert!(
        h.rt.queue
            .enqueue(job.clone(), now)
            .await
            .unwrap()
            .is_duplicate(),
        "[{}] ttl lock",
        h.name
    );
    h.clock.advance(TimeDelta::seconds(61));
    assert!(
        !h.rt
            .queue
            .enqueue(job, h.now())
            .await
            .unwrap()
            .is_duplicate(),
        "[{}] expired ttl lock",
        h.name
    );
    h.finish().await;
}

async fn bulk_enqueue_reports_exactly_which_were_duplicates(h: Harness) {
    let now = h.now();
    let held: Vec<NewJob> = (0..10u64)
        .map(|i| record(i).unique(format!("k{}", i * 7), 3600, UniqueUntil::Processed))
        .collect();
    h.rt.queue.enqueue_bulk(held, now).await.unwrap();
    let mut chunk: Vec<NewJob> = (0..500u64)
        .map(|i| record(i).unique(format!("k{i}"), 3600, UniqueUntil::Processed))
        .collect();
    // Two repeats inside the chunk itself.
    chunk[100] = record(1000).unique("k1", 3600, UniqueUntil::Processed);
    chunk[200] = record(1001).unique("k2", 3600, UniqueUntil::Processed);
    let answers = h.rt.queue.enqueue_bulk(chunk, now).await.unwrap();
    let dups: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, a)| a.is_duplicate())
        .map(|(i, _)| i)
        .collect();
    let expected: Vec<usize> = {
        let mut e: Vec<usize> = (0..10).map(|i| i * 7).collect();
        e.extend([100, 200]);
        e.sort_unstable();
        e
    };
    assert_eq!(dups, expected, "[{}]", h.name);
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Enqueued::Duplicate | Enqueued::Job(_)))
    );
    let depth = h.pending().await;
    assert_eq!(depth, 10 + 500 - 12, "[{}]", h.name);
    h.finish().await;
}

async fn batch_counters_stay_exact_under_concurrent_completion_and_failure(h: Harness) {
    let jobs: Vec<NewJob> = (0..200u64)
        .map(|n| {
            if n % 10 == 0 {
                NewJob::new("test:fail", json!({ "n": n }))
            } else {
                record(n)
            }
        })
        .collect();
    let then = record(9999);
    let (id, enqueued, duplicates) =
        h.rt.dispatch_batch("conformance", jobs, 50, Some(then), |_| {})
            .await
            .unwrap();
    assert_eq!((enqueued, duplicates), (200, 0));
    if h.name != "memory" {
        drain(&h, 8, &["default"]).await;
    }
    // The `then` job was enqueued when the batch finished; run it.
    if h.name != "memory" {
        drain(&h, 1, &["default"]).await;
    }
    let b = batches::find(&h.db, &id).await.unwrap().unwrap();
    assert_eq!(b.total_jobs, 200, "[{}]", h.name);
    assert_eq!(b.failed_jobs, 20, "[{}]", h.name);
    assert_eq!(
        b.pending_jobs, 20,
        "[{}] failed jobs stay pending, as in Laravel",
        h.name
    );
    assert_eq!(b.failed_job_ids.len(), 20);
    assert!(b.finished_at.is_some(), "[{}] not finished", h.name);
    assert_eq!(b.progress(), 100);
    let thens = h.recorder.seen().iter().filter(|n| **n == 9999).count();
    assert_eq!(thens, 1, "[{}] then-job ran {thens} times", h.name);
    h.finish().await;
}

async fn a_batch_with_duplicates_counts_only_what_was_enqueued(h: Harness) {
    let now = h.now();
    h.rt.queue
        .enqueue(record(0).unique("t:3", 3600, UniqueUntil::Processed), now)
        .await
        .unwrap();
    let jobs: Vec<NewJob> = (0..10u64)
        .map(|n| record(n).unique(format!("t:{n}"), 3600, UniqueUntil::Processed))
        .collect();
    let (id, enqueued, duplicates) =
        h.rt.dispatch_batch("dups", jobs.clone(), 4, None, |_| {})
            .await
            .unwrap();
    assert_eq!((enqueued, duplicates), (9, 1), "[{}]", h.name);
    let b = batches::find(&h.db, &id).await.unwrap().unwrap();
    assert_eq!(b.total_jobs, 9);
    // A second run for the same keys enqueues nothing.
    let (_, enqueued, duplicates) =
        h.rt.dispatch_batch("dups again", jobs, 4, None, |_| {})
            .await
            .unwrap();
    if h.name != "memory" {
        assert_eq!((enqueued, duplicates), (0, 10), "[{}]", h.name);
    }
    h.finish().await;
}

macro_rules! on_backend {
    ($backend:ident: $($name:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(h) = crate::support::harness(stringify!($backend)).await {
                        super::$name(h).await;
                    }
                }
            )*
        }
    };
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        on_backend!(memory: $($name),*);
        on_backend!(sqlite: $($name),*);
        on_backend!(postgres: $($name),*);
        on_backend!(mysql: $($name),*);
        on_backend!(redis: $($name),*);
    };
}

async fn many_are_reserved_in_order_handed_back_without_an_attempt_and_deleted_together(
    h: Harness,
) {
    let jobs: Vec<NewJob> = (0..10).map(record).collect();
    h.rt.queue.enqueue_bulk(jobs, h.now()).await.unwrap();
    let queues = q(&["default"]);
    let taken = h.rt.queue.reserve_many(&queues, 4, h.now()).await.unwrap();
    // The memory driver takes one at a time; the others take what was asked.
    let expect = if h.name == "memory" { 1 } else { 4 };
    assert_eq!(taken.len(), expect, "[{}]", h.name);
    let ns: Vec<u64> = taken
        .iter()
        .map(|j| j.envelope.as_ref().unwrap().data["n"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ns,
        (0..expect as u64).collect::<Vec<_>>(),
        "[{}] oldest first",
        h.name
    );
    assert!(taken.iter().all(|j| j.attempts == 1));
    // Handing one back (postpone, no delay) makes it ready at once, its delivery not counted.
    h.rt.queue
        .postpone(&taken[0], Duration::ZERO, h.now())
        .await
        .unwrap();
    let rest =
        h.rt.queue
            .reserve_many(&queues, 100, h.now())
            .await
            .unwrap();
    let back = rest
        .iter()
        .find(|j| j.uuid() == taken[0].uuid())
        .expect("the handed-back job is ready again");
    assert_eq!(back.attempts, 1, "[{}]", h.name);
    let mut all: Vec<_> = taken[1..].to_vec();
    all.extend(rest);
    let mut reserved = all.len();
    while let Some(j) = h.rt.queue.reserve(&queues, h.now()).await.unwrap() {
        all.push(j);
        reserved += 1;
    }
    assert_eq!(reserved, 10, "[{}] every job reserved once", h.name);
    h.rt.queue.delete_many(&all).await.unwrap();
    let later = h.now() + TimeDelta::days(1);
    assert!(
        h.rt.queue.reserve(&queues, later).await.unwrap().is_none(),
        "[{}]",
        h.name
    );
    assert_eq!(h.rt.jobs_in("default").await.unwrap(), 0, "[{}]", h.name);
    h.finish().await;
}

async fn a_worker_stopping_hands_back_the_jobs_it_took_ahead(h: Harness) {
    let jobs: Vec<NewJob> = (0..40).map(record).collect();
    h.rt.queue.enqueue_bulk(jobs, h.now()).await.unwrap();
    // Fast jobs make the worker take many ahead; --max-jobs stops it after three.
    let opts = WorkerOptions {
        queues: q(&["default"]),
        concurrency: 2,
        max_jobs: Some(3),
        defaults: defaults(1),
        ..WorkerOptions::default()
    };
    let summary = worker::run(h.rt.clone(), opts, StopHandle::default())
        .await
        .unwrap();
    assert_eq!(summary.reason, StopReason::MaxJobs);
    let ran = h.recorder.seen().len();
    assert!((3..=4).contains(&ran), "[{}] ran {ran}", h.name);
    let depth = h.rt.queue.depths(h.now()).await.unwrap();
    let d = depth
        .iter()
        .find(|d| d.queue == "default")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (d.pending, d.reserved),
        (40 - ran as u64, 0),
        "[{}] every job not run is ready again and every one run is acknowledged",
        h.name
    );
    let next =
        h.rt.queue
            .reserve(&q(&["default"]), h.now())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        next.attempts, 1,
        "[{}] a job handed back was not an attempt",
        h.name
    );
    h.finish().await;
}

/// Two processes on one `jobs` table: a job the other one puts back below this one's scan floor
/// is found within a second of the clock.
async fn a_job_another_process_puts_back_below_the_floor_is_found(h: Harness) {
    use conecta::queue::Queue;
    use conecta::queue::database::DatabaseQueue;
    let retry = Duration::from_secs(RETRY_AFTER);
    let (a, b) = (
        DatabaseQueue::new(h.db.clone(), retry),
        DatabaseQueue::new(h.db.clone(), retry),
    );
    let queues = q(&["default"]);
    a.enqueue_bulk((0..3).map(record).collect(), h.now())
        .await
        .unwrap();
    let first = b.reserve(&queues, h.now()).await.unwrap().unwrap();
    let rest = a.reserve_many(&queues, 10, h.now()).await.unwrap();
    assert_eq!(rest.len(), 2, "[{}]", h.name);
    b.release(&first, Duration::ZERO, h.now()).await.unwrap();
    let mut again = a.reserve(&queues, h.now()).await.unwrap();
    if again.is_none() {
        again = a
            .reserve(&queues, h.now() + TimeDelta::seconds(1))
            .await
            .unwrap();
    }
    let again = again.expect("the job put back is found within a second");
    assert_eq!(again.uuid(), first.uuid(), "[{}]", h.name);
    assert_eq!(again.attempts, 2, "[{}]", h.name);
    h.finish().await;
}

mod database_processes {
    use super::a_job_another_process_puts_back_below_the_floor_is_found as put_back_below_floor;
    on_backend!(sqlite: put_back_below_floor);
    on_backend!(postgres: put_back_below_floor);
    on_backend!(mysql: put_back_below_floor);
}

/// The fleet's per-minute counts (`queue_minutes`, the dashboard's chart) hold what the
/// worker finished, by queue: succeeded as processed, failed for good as failed.
async fn finished_jobs_are_counted_per_queue_and_minute(h: Harness) {
    if h.name == "memory" {
        // The sync connection runs jobs at dispatch; there is no worker to count them.
        h.finish().await;
        return;
    }
    let jobs: Vec<NewJob> = (0..7).map(record).collect();
    h.rt.dispatch_bulk(jobs).await.unwrap();
    for n in 0..3 {
        h.rt.dispatch(NewJob::new("test:fail", json!({ "n": n })).on("high"))
            .await
            .unwrap();
    }
    drain(&h, 2, &["high", "default"]).await;
    let minute = queue_minutes::minute_of(h.now());
    let rows = queue_minutes::since(&h.db, minute - 1).await.unwrap();
    let of = |queue: &str| {
        rows.get(&(minute, queue.to_string()))
            .copied()
            .unwrap_or_default()
    };
    assert_eq!(
        (of("default").processed, of("default").failed),
        (7, 0),
        "[{}] {rows:?}",
        h.name
    );
    assert_eq!(
        (of("high").processed, of("high").failed),
        (0, 3),
        "[{}] {rows:?}",
        h.name
    );
    // A second worker in the same process adds only what it finished itself.
    h.rt.dispatch(record(99)).await.unwrap();
    drain(&h, 1, &["default"]).await;
    let rows = queue_minutes::since(&h.db, minute).await.unwrap();
    assert_eq!(
        rows[&(minute, "default".to_string())].processed,
        8,
        "[{}]",
        h.name
    );
    h.finish().await;
}

conformance!(
    finished_jobs_are_counted_per_queue_and_minute,
    every_job_runs_at_least_once,
    concurrent_reservers_never_share_a_job_and_lose_none,
    a_vanished_workers_job_is_delivered_again_after_retry_after,
    delayed_jobs_wait_for_their_time,
    queues_are_taken_in_strict_priority_order,
    backoff_list_spaces_retries_then_the_job_fails_with_its_exception,
    a_retried_failed_job_runs_again,
    concurrent_enqueues_of_one_unique_key_create_exactly_one_job,
    locks_are_released_on_success_failure_and_undecodable_payload,
    bulk_enqueue_reports_exactly_which_were_duplicates,
    batch_counters_stay_exact_under_concurrent_completion_and_failure,
    a_batch_with_duplicates_counts_only_what_was_enqueued,
    many_are_reserved_in_order_handed_back_without_an_attempt_and_deleted_together,
    a_worker_stopping_hands_back_the_jobs_it_took_ahead,
);

/// Jobs an older conecta left in Redis (a bare uuid in the ready list, payload and attempts in
/// hashes) are delivered by this one, with their attempts, and acknowledged for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_jobs_in_the_older_form_are_delivered_and_acknowledged() {
    use conecta::queue::Queue;
    let Some(url) = crate::support::service_url("CONECTA_TEST_REDIS_URL") else {
        return;
    };
    let prefix = format!("conecta-test:{}:", uuid::Uuid::new_v4().simple());
    let queue = conecta::queue::redis::RedisQueue::connect(&url, &prefix, Duration::from_secs(90))
        .await
        .expect("redis reachable");
    let now = crate::support::start();
    let envelope = record(41).envelope(now);
    let raw = serde_json::to_string(&envelope).unwrap();
    let base = format!("{prefix}queues:{{default}}");
    let client = ::redis::Client::open(url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = ::redis::pipe()
        .rpush(&base, &envelope.uuid)
        .hset(format!("{base}:payloads"), &envelope.uuid, &raw)
        .hset(format!("{base}:attempts"), &envelope.uuid, 2)
        .query_async(&mut c)
        .await
        .unwrap();
    let job = queue
        .reserve(&q(&["default"]), now)
        .await
        .unwrap()
        .expect("delivered");
    assert_eq!(job.uuid(), envelope.uuid);
    assert_eq!(job.raw, raw);
    assert_eq!(job.attempts, 3, "its earlier attempts count");
    queue.delete(&job).await.unwrap();
    let later = now + TimeDelta::days(1);
    assert!(
        queue
            .reserve(&q(&["default"]), later)
            .await
            .unwrap()
            .is_none()
    );
    let left: u64 = ::redis::cmd("EXISTS")
        .arg(format!("{base}:payloads"))
        .arg(format!("{base}:attempts"))
        .arg(format!("{base}:reserved"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(left, 0, "nothing of the job is left");
    queue.clear("default", "").await.unwrap();
}

/// On PostgreSQL a reservation reads the few pages of the rows it takes, whatever the planner
/// knows of the table: here a 20,000-job backlog that was never analysed, where the planner
/// alone chose a bitmap scan that read and sorted the whole queue (about 1,500 pages) to take
/// ten jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_reservation_reads_only_what_it_takes_before_any_analyze() {
    let Some(h) = crate::support::harness("postgres").await else {
        return;
    };
    for chunk in (0..20_000u64).collect::<Vec<_>>().chunks(500) {
        let jobs = chunk.iter().map(|n| record(*n)).collect();
        h.rt.queue.enqueue_bulk(jobs, h.now()).await.unwrap();
    }
    let conecta::store::Db::Postgres(pool) = &h.db else {
        unreachable!("a postgres harness")
    };
    let t = h.now().timestamp();
    // One connection, its catalog caches warmed by a first reservation.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SELECT id FROM conecta_reserve_jobs('default', 0, $1, $2, 1)")
        .bind(t)
        .bind(t - 3600)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    let (plan,): (serde_json::Value,) = sqlx::query_as(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) \
         SELECT id FROM conecta_reserve_jobs('default', 0, $1, $2, 10)",
    )
    .bind(t)
    .bind(t - 3600)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    let top = &plan[0]["Plan"];
    assert_eq!(top["Actual Rows"], 10, "{plan}");
    let pages =
        top["Shared Hit Blocks"].as_u64().unwrap() + top["Shared Read Blocks"].as_u64().unwrap();
    assert!(
        pages < 150,
        "ten jobs reserved by reading {pages} pages: {plan}"
    );
    h.finish().await;
}
