//! The command line, as clap definitions only: no behaviour lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// conecta: the scheduler, batch orchestrator and queue runtime of Vito Business OS.
#[derive(Debug, Parser)]
#[command(name = "conecta", version, about, propagate_version = true)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Read configuration from this file instead of ./.env.
    #[arg(long, global = true, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// The schedule file (default: $CONECTA_SCHEDULE, then schedules/production.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub schedule: Option<PathBuf>,
    /// Time travel: the clock starts at this RFC 3339 instant (also $CONECTA_NOW).
    #[arg(long, global = true, value_name = "RFC3339")]
    pub now: Option<String>,
    /// With --now: the clock runs N times faster than real time (also $CONECTA_SPEED).
    #[arg(long, global = true, value_name = "N")]
    pub speed: Option<f64>,
    /// Log lines on stderr as text (default) or JSON.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How a listing or report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// A readable table.
    #[default]
    Table,
    /// JSON for scripts: stable field names, UTC RFC 3339 times.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect, validate and simulate the schedule file.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// All in one process for a single machine: migrate, the scheduler, workers for high,default, the HTTP server.
    Start {
        /// Jobs run at once by the built-in worker.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Do not open the HTTP port.
        #[arg(long)]
        no_http: bool,
        /// A bounded rehearsal: stop when the clock reaches this instant (RFC 3339), after the
        /// work in hand and the jobs ready by then, and print what ran; exit 1 if a run or a
        /// job failed. Use with --now T0 --speed N.
        #[arg(long, value_name = "RFC3339")]
        until: Option<String>,
    },
    /// The HTTP server alone: payment webhooks, signed downloads, /healthz, /readyz, /metrics, /api/dispatch.
    Serve,
    /// Signed download links.
    #[command(subcommand)]
    Url(UrlCommand),
    /// Payments: those that need a person.
    #[command(subcommand)]
    Payments(PaymentsCommand),
    /// Run the scheduler daemon: fire each due occurrence exactly once across replicas.
    Scheduler {
        /// A bounded rehearsal: stop when the clock reaches this instant (RFC 3339), after the
        /// runs in hand, and print what ran; exit 1 if a run failed.
        #[arg(long, value_name = "RFC3339")]
        until: Option<String>,
    },
    /// Run one task once, now or as of --at, through the scheduler's code path.
    RunTask(RunTaskArgs),
    /// Run a queue worker (Laravel's queue:work flags).
    Worker(WorkerArgs),
    /// Enqueue one job by hand; prints its id, or "duplicate".
    Dispatch(DispatchArgs),
    /// Failed jobs, restarts and queue depth.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Unique-job locks.
    #[command(subcommand)]
    Locks(LocksCommand),
    /// Fan-out batches and their progress.
    #[command(subcommand)]
    Batch(BatchCommand),
    /// The database.
    #[command(subcommand)]
    Db(DbCommand),
    /// The transactional outbox: publish, inspect stuck messages, replay, prune.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Synthetic demo data for a newcomer's first run.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Tenants: plan-limit violations found by tenants:audit-limits.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Standard workloads against the configured queue; one `RESULT key=value …` line each.
    Bench(BenchArgs),
    /// The catalog of tasks and jobs: what a schedule entry or `dispatch` can name.
    #[command(subcommand)]
    Tasks(TasksCommand),
}

/// `conecta url …`.
#[derive(Debug, Subcommand)]
pub enum UrlCommand {
    /// Print a signed, expiring link to a file under storage/exports.
    Sign {
        /// The file, relative to storage/exports, e.g. 7/sales-2026-11.csv.
        path: String,
        /// How long the link works (a duration like 24h).
        #[arg(long, default_value = "24h")]
        ttl: String,
    },
}

/// `conecta payments …`.
#[derive(Debug, Subcommand)]
pub enum PaymentsCommand {
    /// Payments that could not be applied to their order (e.g. it was already cancelled).
    Reviews {
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

/// `conecta tasks …`.
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Every task and job: kind, queue, tries, timeout, uniqueness, arguments, summary.
    List {
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

/// `conecta run-task`.
#[derive(Debug, Args)]
pub struct RunTaskArgs {
    /// The task, e.g. orders:release-stale.
    pub name: String,
    /// Scope the task to one tenant.
    #[arg(long)]
    pub tenant: Option<u64>,
    /// A task argument, key=value (repeatable).
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    pub args: Vec<String>,
    /// Run as of this instant: the task sees it as now (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Say what would run, run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `conecta worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The queue connection to drain: redis, database or sync (Laravel's `queue:work redis`).
    /// Default: QUEUE_CONNECTION.
    pub connection: Option<String>,
    /// Queues in priority order.
    #[arg(long, default_value = "default", value_delimiter = ',')]
    pub queue: Vec<String>,
    /// Seconds to wait when there is no job.
    #[arg(long, default_value_t = 3.0)]
    pub sleep: f64,
    /// Attempts per job when the job does not say (0 = unlimited).
    #[arg(long, default_value_t = 1)]
    pub tries: u32,
    /// Seconds a job may run when the job does not say.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Seconds before a retry when the job has no backoff list.
    #[arg(long, default_value_t = 0)]
    pub backoff: u64,
    /// Exit after this many seconds (0 = never).
    #[arg(long, default_value_t = 0)]
    pub max_time: u64,
    /// Exit after this many jobs (0 = never).
    #[arg(long, default_value_t = 0)]
    pub max_jobs: u64,
    /// Exit when resident memory exceeds this many MB.
    #[arg(long, default_value_t = 128)]
    pub memory: u64,
    /// Jobs run at once in this process.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Exit when the queues are empty.
    #[arg(long)]
    pub stop_when_empty: bool,
    /// Run at most one job, then exit (Laravel's --once): --max-jobs 1 --stop-when-empty.
    #[arg(long)]
    pub once: bool,
    /// Accepted for Laravel's queue:work --force; conecta has no maintenance mode to override.
    #[arg(long, hide = true)]
    pub force: bool,
}

/// `conecta dispatch`.
#[derive(Debug, Args)]
pub struct DispatchArgs {
    /// The job name, e.g. diagnostics:noop.
    pub job: String,
    /// The payload, as JSON.
    #[arg(long)]
    pub payload: Option<String>,
    /// The queue.
    #[arg(long, default_value = "default")]
    pub queue: String,
    /// Run no sooner than this (e.g. 30s, 15m).
    #[arg(long)]
    pub delay: Option<String>,
    /// Unique key: a second job with a held key is a duplicate.
    #[arg(long, requires = "unique_for")]
    pub unique_key: Option<String>,
    /// How long the unique lock lives at most (e.g. 1h).
    #[arg(long, requires = "unique_key")]
    pub unique_for: Option<String>,
    /// When the lock is released: processed, processing or ttl.
    #[arg(long, default_value = "processed")]
    pub unique_until: String,
    /// Attempts allowed.
    #[arg(long)]
    pub tries: Option<u32>,
    /// Seconds a run may take.
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Backoff list in seconds, e.g. 10,60,300.
    #[arg(long, value_delimiter = ',')]
    pub backoff: Option<Vec<u64>>,
}

/// `conecta queue …`
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Failed jobs: id, queue, job, failed_at, first line of the exception.
    Failed {
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Put a failed job (or all) back on its queue.
    Retry {
        /// A failed job id, or "all".
        id: String,
    },
    /// Delete one failed job.
    Forget {
        /// The failed job id.
        id: String,
    },
    /// Delete every failed job.
    Flush,
    /// Every worker exits gracefully after its current job.
    Restart,
    /// Depth per queue, reserved, delayed, failed in the last hour, live workers.
    Status {
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

/// `conecta locks …`
#[derive(Debug, Subcommand)]
pub enum LocksCommand {
    /// Held unique locks: key, owner job, expiry.
    List {
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Free one lock.
    Release {
        /// The key.
        key: String,
    },
}

/// `conecta batch …`
#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Recent batches with progress.
    List {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// One batch.
    Show {
        /// Batch id.
        id: String,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Cancel a batch: its remaining jobs are skipped.
    Cancel {
        /// Batch id.
        id: String,
    },
}

/// `conecta db …`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply migrations for the configured database.
    Migrate,
}

/// `conecta outbox …`
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Claim and publish pending messages in id order until none is left.
    Process {
        /// Messages per claim.
        #[arg(long, default_value_t = 500)]
        batch: i64,
        /// Stop after this many messages.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Messages stuck: claimed and not processed past --stuck-after, or failing at least
    /// --attempts times, with their errors.
    Coroner {
        /// A claim older than this is stuck (e.g. 10m).
        #[arg(long, default_value = "10m")]
        stuck_after: String,
        /// Failing this many times or more is stuck.
        #[arg(long, default_value_t = 5)]
        attempts: i64,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Publish messages from-id..=to-id again, processed or not.
    Replay {
        /// First id.
        #[arg(long)]
        from_id: i64,
        /// Last id (inclusive).
        #[arg(long)]
        to_id: i64,
    },
    /// Delete processed messages older than N days.
    Prune {
        /// Days to keep.
        #[arg(long, default_value_t = 7)]
        days: i64,
    },
}

/// `conecta demo …`
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Fill the business tables with a realistic synthetic data set as of now.
    Seed {
        /// Tenants to create (about 80% approved).
        #[arg(long, default_value_t = 25)]
        tenants: u64,
        /// The random seed (same seed and --now, same data).
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

/// `conecta tenants …`
#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Plan-limit violations, open ones unless --all.
    Violations {
        /// Include resolved ones.
        #[arg(long)]
        all: bool,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

/// Which standard workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Bulk enqueue in chunks.
    Enqueue,
    /// One worker process draining the queue.
    Drain,
    /// Unique jobs enqueued twice.
    Unique,
    /// Enqueue-to-start latency to an idle worker.
    Latency,
    /// All of the above.
    All,
    /// analytics:sync fan-out over --jobs approved tenants (default 100,000): the enqueue side.
    #[value(name = "fan-out")]
    FanOut,
    /// orders:release-stale over --jobs orders (default 1,000,000), --stale of them stale.
    #[value(name = "release-stale")]
    ReleaseStale,
    /// outbox process throughput over --jobs pending messages (default 100,000).
    Outbox,
    /// GenerateSalesExport over --jobs order lines of one tenant (default 1,000,000), CSV and
    /// XLSX: seconds and peak RSS of each.
    Export,
    /// GenerateProductBlurhash's decode and hash of a 4000×3000 JPEG (--jobs runs, default
    /// 20) and the peak RSS of an 8000×6000 one; needs no database.
    Blurhash,
}

/// `conecta bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The workload.
    #[arg(value_enum)]
    pub workload: Workload,
    /// Jobs (default: the workload's standard size).
    #[arg(long)]
    pub jobs: Option<u64>,
    /// Chunk size for bulk enqueue.
    #[arg(long, default_value_t = 500)]
    pub chunk: usize,
    /// Worker concurrency for drain (default: 1 and 50).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// release-stale: how many of the orders are stale.
    #[arg(long, default_value_t = 50_000)]
    pub stale: u64,
}

/// `conecta schedule …`
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Entries with cron, zone and next due time (UTC and local).
    List {
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Validate a schedule file; exit 2 with FILE:LINE:COL messages when it is invalid.
    Check {
        /// The file to check (default: the configured schedule).
        file: Option<PathBuf>,
    },
    /// The next N occurrences across all enabled entries.
    Next {
        /// How many.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// table or json (one object per line).
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Overdue entries (dead-man's switch), live schedulers, schedule hash mismatches; exit 1
    /// when anything is overdue.
    Health {
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Recorded runs and their outcomes, newest first.
    History {
        /// Only this entry or task.
        #[arg(long)]
        task: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// What a change to the schedule file does to every run over a window: occurrences
    /// added, removed and moved per entry, and changed settings. Exit 0 when nothing changes,
    /// 1 when something does, 2 when a file is invalid.
    Diff {
        /// The old file, or git:REF for NEW as it was at that revision.
        old: String,
        /// The new file.
        new: PathBuf,
        /// Window start, inclusive (RFC 3339; default: now).
        #[arg(long, value_name = "RFC3339")]
        from: Option<String>,
        /// Window end, exclusive (RFC 3339; default: 366 days after the start).
        #[arg(long, value_name = "RFC3339")]
        to: Option<String>,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Why an entry runs when it does around a time: cron fields matched, zone and offset, the
    /// day rule, DST rules applied, jitter and catch-up, in words or JSON.
    Explain {
        /// The entry's name.
        name: String,
        /// Around this instant (RFC 3339; default: now).
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
        /// How many occurrences from there.
        #[arg(long, default_value_t = 5)]
        count: usize,
        /// table (words) or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Run what is due in the current minute once, through the scheduler's exactly-once
    /// claims, then exit (Laravel's schedule:run, for a cron that calls it every minute).
    /// Exit 1 when a run it made failed.
    Run {
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Every occurrence in [from, to), in order.
    Simulate {
        /// Start, inclusive (RFC 3339; default: now).
        #[arg(long, value_name = "RFC3339")]
        from: Option<String>,
        /// End, exclusive (RFC 3339).
        #[arg(long, value_name = "RFC3339")]
        to: String,
        /// json (one object per line) or table.
        #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
        format: OutputFormat,
    },
}
