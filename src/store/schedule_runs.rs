//! `schedule_runs`: one row per claimed occurrence, with who ran it, when, and its outcome.
//!
//! The claim is an insert against the unique key `(entry, due_at)`: of any number of
//! schedulers racing for one occurrence, exactly one insert succeeds, on every database.

use super::{Db, Result, Row};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// How an occurrence ended (docs/schedule.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Still going.
    Running,
    /// The task succeeded (or, in queue mode, was enqueued).
    Succeeded,
    /// The task returned an error.
    Failed,
    /// The task ran past its timeout and was cancelled.
    TimedOut,
    /// The previous run was still going.
    SkippedOverlap,
    /// Outside the catch-up window.
    Missed,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed_out",
            Outcome::SkippedOverlap => "skipped_overlap",
            Outcome::Missed => "missed",
        }
    }
}

/// One recorded run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// Row id.
    pub id: i64,
    /// The schedule entry (or the task, for a manual run).
    pub entry: String,
    /// The task it ran.
    pub task: String,
    /// The occurrence.
    pub due_at: DateTime<Utc>,
    /// 1, or 2 and up for a re-run after an abandoned run of the same occurrence.
    pub attempt: i64,
    /// True for `run-task`.
    pub manual: bool,
    /// `host:pid` of the process that claimed it.
    pub runner: String,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Its outcome.
    pub outcome: String,
    /// The error, if it failed.
    pub error: Option<String>,
}

fn ms(t: Option<i64>) -> Option<DateTime<Utc>> {
    t.and_then(DateTime::from_timestamp_millis)
}

/// A claim to insert.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    /// Entry name.
    pub entry: &'a str,
    /// Task name.
    pub task: &'a str,
    /// The occurrence.
    pub due: DateTime<Utc>,
    /// Manual run?
    pub manual: bool,
    /// `host:pid`.
    pub runner: &'a str,
}

/// Claims an occurrence, recording it as running from `now`. Returns the row id if this
/// caller won, `None` if another process already holds it.
pub async fn claim(db: &Db, c: &Claim<'_>, now: DateTime<Utc>) -> Result<Option<i64>> {
    claim_attempt(db, c, 1, now).await
}

/// Claims run number `attempt` of an occurrence (2 and up re-run an occurrence whose run was
/// abandoned), as [`claim`].
pub async fn claim_attempt(
    db: &Db,
    c: &Claim<'_>,
    attempt: i64,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let insert = db.backend().insert_ignore(
        "schedule_runs (entry, task, due_at, attempt, manual, runner, claim_token, started_at, finished_at, outcome, error) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 'running', NULL)",
        "entry, due_at, attempt",
    );
    let due = c.due.timestamp_millis();
    db.query(insert)
        .bind(c.entry)
        .bind(c.task)
        .bind(due)
        .bind(attempt)
        .bind(i64::from(c.manual))
        .bind(c.runner)
        .bind(&token)
        .bind(now.timestamp_millis())
        .execute(db)
        .await?;
    let row = db
        .query("SELECT id, claim_token FROM schedule_runs WHERE entry = ? AND due_at = ? AND attempt = ?")
        .bind(c.entry)
        .bind(due)
        .bind(attempt)
        .fetch_optional(db)
        .await?;
    let row: Option<(i64, String)> = match row {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
        None => None,
    };
    Ok(row.and_then(|(id, t)| (t == token).then_some(id)))
}

/// Records that run `id` really started at `now` (a buffered run starts after its claim).
pub async fn mark_started(db: &Db, id: i64, now: DateTime<Utc>) -> Result<()> {
    db.query("UPDATE schedule_runs SET started_at = ? WHERE id = ?")
        .bind(now.timestamp_millis())
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Records how run `id` ended.
pub async fn finish(
    db: &Db,
    id: i64,
    outcome: Outcome,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    db.query("UPDATE schedule_runs SET outcome = ?, error = ?, finished_at = ? WHERE id = ?")
        .bind(outcome.as_str())
        .bind(error)
        .bind(now.timestamp_millis())
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Records run `id` as abandoned (failed, `error`) if it is still `running`; returns its
/// entry, occurrence and attempt when this call did it (of several reapers, one does).
pub async fn abandon(
    db: &Db,
    id: i64,
    error: &str,
    now: DateTime<Utc>,
) -> Result<Option<(String, DateTime<Utc>, i64)>> {
    let n = db
        .query("UPDATE schedule_runs SET outcome = 'failed', error = ?, finished_at = ? WHERE id = ? AND outcome = 'running'")
        .bind(error)
        .bind(now.timestamp_millis())
        .bind(id)
        .execute(db)
        .await?;
    let row: Option<(String, i64, i64)> = if n == 1 {
        let r = db
            .query("SELECT entry, due_at, attempt FROM schedule_runs WHERE id = ?")
            .bind(id)
            .fetch_one(db)
            .await?;
        Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
    } else {
        None
    };
    Ok(row.and_then(|(e, due, attempt)| Some((e, ms(Some(due))?, attempt))))
}

/// The latest scheduled (not manual) occurrence recorded for `entry`, whatever its outcome.
pub async fn last_due(db: &Db, entry: &str) -> Result<Option<DateTime<Utc>>> {
    let v: Option<i64> = db
        .query("SELECT MAX(due_at) FROM schedule_runs WHERE entry = ? AND manual = 0")
        .bind(entry)
        .scalar(db)
        .await?;
    Ok(ms(v))
}

/// The latest occurrence of `entry` that succeeded, and the earliest recorded at all.
pub async fn last_success_and_first(
    db: &Db,
    entry: &str,
) -> Result<(Option<DateTime<Utc>>, Option<DateTime<Utc>>)> {
    let r = db
        .query("SELECT MAX(CASE WHEN outcome = 'succeeded' THEN due_at END), MIN(due_at) FROM schedule_runs WHERE entry = ? AND manual = 0")
        .bind(entry)
        .fetch_one(db)
        .await?;
    Ok((ms(r.try_get(0)?), ms(r.try_get(1)?)))
}

/// The latest scheduled (not manual) occurrence of any entry running `task` that succeeded.
pub async fn last_success_of_task(db: &Db, task: &str) -> Result<Option<DateTime<Utc>>> {
    let v: Option<i64> = db
        .query("SELECT MAX(due_at) FROM schedule_runs WHERE task = ? AND manual = 0 AND outcome = 'succeeded'")
        .bind(task)
        .scalar(db)
        .await?;
    Ok(ms(v))
}

/// Records an occurrence that will not run (outside the catch-up window, or dropped by the
/// catch-up policy) as `missed`, unless another process already recorded it.
pub async fn record_missed(db: &Db, c: &Claim<'_>, now: DateTime<Utc>) -> Result<bool> {
    match claim(db, c, now).await? {
        Some(id) => {
            finish(
                db,
                id,
                Outcome::Missed,
                Some("not run: the scheduler was down"),
                now,
            )
            .await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Scheduled (not manual) runs due in `[from, to)`: (entry, outcome, how many).
pub async fn tally(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, String, i64)>> {
    db.query(
        "SELECT entry, outcome, COUNT(*) FROM schedule_runs \
         WHERE manual = 0 AND due_at >= ? AND due_at < ? GROUP BY entry, outcome ORDER BY entry, outcome",
    )
    .bind(from.timestamp_millis())
    .bind(to.timestamp_millis())
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
    .collect()
}

/// The columns [`decode`] reads, in its order.
const RUN_COLUMNS: &str =
    "id, entry, task, due_at, manual, runner, started_at, finished_at, outcome, error, attempt";

fn decode(r: &Row) -> Result<Run> {
    Ok(Run {
        id: r.try_get(0)?,
        entry: r.try_get(1)?,
        task: r.try_get(2)?,
        due_at: ms(Some(r.try_get(3)?)).unwrap_or_default(),
        manual: r.try_get::<i64>(4)? != 0,
        runner: r.try_get(5)?,
        started_at: ms(r.try_get(6)?),
        finished_at: ms(r.try_get(7)?),
        outcome: r.try_get(8)?,
        error: r.try_get(9)?,
        attempt: r.try_get(10)?,
    })
}

/// The newest `limit` runs, of one entry or task if given.
pub async fn history(db: &Db, name: Option<&str>, limit: i64) -> Result<Vec<Run>> {
    let filter = if name.is_some() {
        "WHERE entry = ? OR task = ?"
    } else {
        ""
    };
    let mut query = db.query(format!(
        "SELECT {RUN_COLUMNS} FROM schedule_runs {filter} ORDER BY due_at DESC, id DESC LIMIT ?"
    ));
    if let Some(n) = name {
        query = query.bind(n).bind(n);
    }
    query
        .bind(limit)
        .fetch_all(db)
        .await?
        .iter()
        .map(decode)
        .collect()
}

/// One run by id.
pub async fn find(db: &Db, id: i64) -> Result<Option<Run>> {
    db.query(format!(
        "SELECT {RUN_COLUMNS} FROM schedule_runs WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?
    .as_ref()
    .map(decode)
    .transpose()
}

/// The newest scheduled (not manual) run of each entry in `entries`.
pub async fn latest_of(db: &Db, entries: &[String]) -> Result<Vec<Run>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    db.query(format!(
        "SELECT {RUN_COLUMNS} FROM schedule_runs r WHERE manual = 0 AND entry IN ({}) \
         AND id = (SELECT MAX(id) FROM schedule_runs WHERE manual = 0 AND entry = r.entry)",
        super::in_list(entries.len())
    ))
    .bind_all(entries.iter().map(String::as_str))
    .fetch_all(db)
    .await?
    .iter()
    .map(decode)
    .collect()
}
