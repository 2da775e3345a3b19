//! The binary's edge: turns parsed arguments into a context and calls one command.
//!
//! Only this module knows clap. Commands write data to stdout and logs to stderr, and return
//! an [`ExitStatus`]; errors become exit 1 (run time) or 2 (usage or configuration).

/// Writes a line to stderr. A closed stderr is not an error (and never a panic, which
/// `eprintln!` would be on a closed pipe).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod args;
mod batch;
mod bench;
mod bench_tasks;
mod daemon;
mod db;
mod demo;
mod dispatch;
mod locks;
mod outbox;
mod output;
mod payments;
mod queue;
mod run_task;
mod schedule_check;
mod schedule_diff;
mod schedule_explain;
mod schedule_health;
mod schedule_history;
mod schedule_list;
mod schedule_next;
mod schedule_run;
mod schedule_simulate;
mod scheduler;
mod serve;
mod start;
mod tasks;
mod tenants;
mod url;
mod worker;

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::clock::{self, SharedClock};
use crate::config::{Config, ConfigError, Env};
use crate::queue::Runtime;
use crate::schedule::{Schedule, file};
use crate::store::Db;
pub use args::Cli;
use args::{Command, LogFormat, ScheduleCommand, Workload};

/// The process exit status (README, Commands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: success.
    Success = 0,
    /// 1: failure at run time.
    Failure = 1,
    /// 2: usage or configuration error.
    Usage = 2,
}

/// A mistake in how conecta was called or configured: exit 2, with a hint.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    /// What was wrong.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
}

impl UsageError {
    /// A usage error with a hint.
    pub fn new(message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        Self {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// Everything a command needs from the outside world.
pub struct Context {
    /// Validated configuration.
    pub config: Config,
    /// The clock every command reads.
    pub clock: SharedClock,
    /// The schedule file to use (`--schedule`, else `CONECTA_SCHEDULE`, else the default).
    pub schedule_path: PathBuf,
    /// The clock's instant when the process started, before any connection was made.
    pub started: DateTime<Utc>,
}

impl Context {
    /// Loads and validates the schedule file.
    pub fn schedule(&self) -> anyhow::Result<Schedule> {
        load_schedule(&self.schedule_path, &self.config)
    }

    /// Opens the configured database. The embedded SQLite default is migrated on the spot;
    /// a server database with pending migrations is an error that says what to run.
    pub async fn db(&self) -> anyhow::Result<Db> {
        let db = self.connect_db(16).await?;
        self.check_schema(&db).await?;
        Ok(db)
    }

    async fn check_schema(&self, db: &Db) -> anyhow::Result<()> {
        if db.backend() == crate::store::Backend::Sqlite {
            db.migrate().await.map_err(|e| self.db_error(e))?;
        } else {
            let pending = db
                .pending_migrations()
                .await
                .map_err(|e| self.db_error(e))?;
            if pending > 0 {
                return Err(pending_migrations(pending).into());
            }
        }
        Ok(())
    }

    /// Connects to the configured database without touching its schema.
    pub async fn connect_db(&self, max_connections: u32) -> anyhow::Result<Db> {
        let url = &self.config.database_url;
        Db::connect(url, max_connections)
            .await
            .map_err(|e| self.db_error(e))
    }

    /// A database error as the user should read it: a configuration problem exits 2 with the
    /// key to fix; a server that is down exits 1 saying so.
    fn db_error(&self, e: crate::store::StoreError) -> anyhow::Error {
        use crate::outage::{Classify, ErrorKind};
        let url = redact(&self.config.database_url);
        match e.kind() {
            ErrorKind::Configuration(m) => UsageError::new(
                format!("cannot use the database ({url}): {m}"),
                Some("check DATABASE_URL or DB_CONNECTION/DB_HOST/DB_PORT/DB_DATABASE/DB_USERNAME/DB_PASSWORD".to_string()),
            )
            .into(),
            ErrorKind::Unavailable(_) => anyhow::anyhow!(
                "cannot reach the database ({url}): {e}\nhint: is the server up? daemons (worker, scheduler, start) wait for it; one-shot commands do not"
            ),
            ErrorKind::Other => anyhow::anyhow!("database error ({url}): {e}"),
        }
    }

    /// The configured queue on the configured database, with every standard handler.
    pub async fn runtime(&self) -> anyhow::Result<Runtime> {
        let db = self.db().await?;
        let queue = crate::queue::open(&self.config, &db)
            .await
            .map_err(|e| self.queue_error(e))?;
        self.assemble(db, queue)
    }

    fn queue_error(&self, e: crate::queue::QueueError) -> anyhow::Error {
        use crate::outage::{Classify, ErrorKind};
        let name = self.config.queue_connection.name();
        match e.kind() {
            ErrorKind::Configuration(m) => UsageError::new(
                format!("cannot open the {name} queue: {m}"),
                Some("check QUEUE_CONNECTION and REDIS_URL (or REDIS_HOST/REDIS_PORT/REDIS_PASSWORD/REDIS_DB)".to_string()),
            )
            .into(),
            _ => anyhow::anyhow!(
                "cannot open the {name} queue: {e}\nhint: is Redis up? daemons (worker, scheduler, start) wait for it; one-shot commands do not"
            ),
        }
    }

    /// For `bench`: the runtime, refusing `--chunk 0` and the `sync` connection (which has
    /// no queue to measure).
    async fn bench_runtime(&self, args: &args::BenchArgs) -> anyhow::Result<Runtime> {
        if args.chunk == 0 {
            return Err(UsageError::new("--chunk must be at least 1", None).into());
        }
        let rt = self.runtime().await?;
        if rt.queue.connection() == "sync" {
            return Err(UsageError::new(
                "the sync connection runs jobs inline; there is no queue to benchmark",
                Some("set QUEUE_CONNECTION=redis or database".to_string()),
            )
            .into());
        }
        Ok(rt)
    }

    fn assemble(
        &self,
        db: Db,
        queue: std::sync::Arc<dyn crate::queue::Queue>,
    ) -> anyhow::Result<Runtime> {
        let settings = crate::settings::Settings::from_config(&self.config).map_err(|e| {
            UsageError::new(
                e.to_string(),
                Some("check MAIL_MAILER and MAIL_*".to_string()),
            )
        })?;
        let mut rt = Runtime::new(
            queue,
            db,
            std::sync::Arc::new(crate::tasks::registry()),
            self.clock.clone(),
        );
        rt.settings = std::sync::Arc::new(settings);
        rt.settle_within = std::time::Duration::from_secs(self.config.retry_after);
        Ok(rt)
    }

    /// For daemons: the runtime, waiting (with backoff, logging once) for the database and
    /// Redis while they are away, so a worker or scheduler started during an outage begins
    /// work when they come up. `migrate` applies pending migrations first (`start`). Only a
    /// configuration error fails; `None` when `stop` came first.
    pub async fn runtime_waiting(
        &self,
        stop: &crate::stop::StopHandle,
        migrate: bool,
    ) -> anyhow::Result<Option<Runtime>> {
        use crate::store::Backend;
        let outages = std::sync::Arc::new(crate::outage::Outages::new(self.clock.clone()));
        let url = &self.config.database_url;
        let connect = outages.retry(
            "connect to the database",
            || false,
            || async {
                let db = Db::connect(url, 16).await?;
                // The embedded SQLite default is always migrated on the spot.
                if migrate || db.backend() == Backend::Sqlite {
                    let applied = db.migrate().await?;
                    if applied > 0 {
                        tracing::info!(applied, "migrations applied");
                    }
                }
                Ok::<_, crate::store::StoreError>(db)
            },
        );
        let db = tokio::select! {
            r = connect => r.map_err(|e| self.db_error(e))?,
            _ = stop.stopped() => return Ok(None),
        };
        if !migrate && db.backend() != Backend::Sqlite {
            let pending = outages.retry(
                "read the schema version",
                || false,
                || db.pending_migrations(),
            );
            let pending = tokio::select! {
                r = pending => r.map_err(|e| self.db_error(e))?,
                _ = stop.stopped() => return Ok(None),
            };
            // Pending migrations are a deployment mistake, not an outage: say what to run.
            if pending > 0 {
                return Err(pending_migrations(pending).into());
            }
        }
        let open = outages.retry(
            "connect to the queue",
            || false,
            || crate::queue::open(&self.config, &db),
        );
        let queue = tokio::select! {
            r = open => r.map_err(|e| self.queue_error(e))?,
            _ = stop.stopped() => return Ok(None),
        };
        let mut rt = self.assemble(db, queue)?;
        rt.outages = outages;
        crate::store::skew::check(&rt.db, true).await;
        Ok(Some(rt))
    }
}

/// A server database with `pending` migrations not applied: a deployment step was missed.
fn pending_migrations(pending: usize) -> UsageError {
    UsageError::new(
        format!("the database has {pending} pending migration(s)"),
        Some("run `conecta db migrate` first".to_string()),
    )
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let auth = &url[s + 3..at];
            match auth.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn load_schedule(path: &std::path::Path, config: &Config) -> anyhow::Result<Schedule> {
    match file::load(path, config.app_timezone) {
        Ok(s) => Ok(s),
        Err(file::LoadError::Read { path, source }) => Err(UsageError::new(
            format!("cannot read schedule file {}: {source}", path.display()),
            Some("pass --schedule FILE or set CONECTA_SCHEDULE to the schedule to use".to_string()),
        )
        .into()),
        Err(file::LoadError::Invalid(invalid)) => Err(invalid.into()),
    }
}

/// Parses an instant given on the command line.
pub fn instant_arg(flag: &str, text: &str) -> Result<DateTime<Utc>, UsageError> {
    crate::rfc3339::parse_instant(text).map_err(|e| UsageError::new(format!("{flag}: {e}"), None))
}

/// `--from`/`--to` of a window: `from` defaults to the clock's now and `to` to `from` plus
/// `span`; an end before the start is a usage error.
pub fn window_args(
    ctx: &Context,
    from: Option<&str>,
    to: Option<&str>,
    span: chrono::TimeDelta,
) -> Result<(DateTime<Utc>, DateTime<Utc>), UsageError> {
    let from = match from {
        Some(t) => instant_arg("--from", t)?,
        None => ctx.clock.now(),
    };
    let to = match to {
        Some(t) => instant_arg("--to", t)?,
        None => from + span,
    };
    if to < from {
        return Err(UsageError::new(
            format!(
                "--to ({}) is before --from ({})",
                crate::rfc3339::utc(to),
                crate::rfc3339::utc(from)
            ),
            Some("the window is [from, to): give an end after the start".to_string()),
        ));
    }
    Ok((from, to))
}

/// The slowest simulated clock `--speed` accepts (real time).
pub const MIN_SPEED: f64 = 1.0;
/// The fastest: a day in under a second. Faster clocks outrun the loops they drive.
pub const MAX_SPEED: f64 = 100_000.0;

fn context(cli: &Cli) -> anyhow::Result<Context> {
    let env = Env::load(cli.global.env_file.as_deref()).map_err(config_error)?;
    let mut config = Config::from_env(&env).map_err(config_error)?;
    if let Some(now) = &cli.global.now {
        config.now = Some(instant_arg("--now", now)?);
    }
    if let Some(speed) = cli.global.speed {
        config.speed = Some(speed);
    }
    if let Some(speed) = config.speed
        && !(speed.is_finite() && (MIN_SPEED..=MAX_SPEED).contains(&speed))
    {
        return Err(UsageError::new(
            format!("--speed: expected a number from {MIN_SPEED} to {MAX_SPEED}, got: {speed}"),
            Some("e.g. --speed 3600 lives an hour per second".to_string()),
        )
        .into());
    }
    if config.speed.is_some() && config.now.is_none() {
        return Err(UsageError::new(
            "--speed needs --now: a simulated clock must start somewhere",
            Some("add --now 2026-11-27T00:00:00Z (or set CONECTA_NOW)".to_string()),
        )
        .into());
    }
    if let Command::Worker(args) = &cli.command
        && let Some(name) = &args.connection
    {
        config.queue_connection = crate::config::QueueConnection::parse(name).ok_or_else(|| {
            UsageError::new(
                format!("unknown queue connection {name:?}"),
                Some("name one of redis, database or sync, as in queue:work redis".to_string()),
            )
        })?;
    }
    let clock = clock::from_flags(config.now, config.speed);
    // With --now the process starts at that instant exactly (a rehearsal's window begins
    // there), not at the clock's reading a moment later.
    let started = config.now.unwrap_or_else(|| clock.now());
    let schedule_path = cli
        .global
        .schedule
        .clone()
        .unwrap_or_else(|| config.schedule_path.clone());
    Ok(Context {
        config,
        clock,
        schedule_path,
        started,
    })
}

fn config_error(e: ConfigError) -> anyhow::Error {
    UsageError::new(
        e.to_string(),
        Some(format!("fix {} in the environment or .env", e.key)),
    )
    .into()
}

/// Runs the parsed command line and returns the exit status, having printed any error.
pub fn run(cli: Cli) -> ExitStatus {
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            say!("error: cannot start the async runtime: {e}");
            return ExitStatus::Failure;
        }
    };
    let result = runtime.block_on(async {
        let ctx = context(&cli)?;
        dispatch(&ctx, &cli).await
    });
    match result {
        Ok(status) => status,
        Err(err) => report(&err),
    }
}

/// Logs go to stderr: text on a terminal, JSON with `--log-format json`. Daemons log at info,
/// one-shot commands at warn, unless `RUST_LOG` says otherwise.
fn init_logging(cli: &Cli) {
    let daemon = matches!(
        cli.command,
        Command::Worker(_)
            | Command::Scheduler { .. }
            | Command::RunTask(_)
            | Command::Start { .. }
            | Command::Serve
    );
    let default = if daemon { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let format = cli
        .global
        .log_format
        .or_else(|| match std::env::var("LOG_FORMAT").as_deref() {
            Ok("json") => Some(LogFormat::Json),
            _ => None,
        })
        .unwrap_or(LogFormat::Text);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(|| LogWriter);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Stderr for logs. A daemon whose stderr reader went away keeps running: its log lines are
/// dropped instead of the process dying on the write error.
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::io::stderr().write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(buf.len()),
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match std::io::stderr().flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}

async fn dispatch(ctx: &Context, cli: &Cli) -> anyhow::Result<ExitStatus> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let status = match &cli.command {
        Command::Worker(args) => worker::run(ctx, args).await,
        Command::Scheduler { until } => scheduler::run(ctx, until.as_deref()).await,
        Command::Start {
            concurrency,
            no_http,
            until,
        } => start::run(ctx, *concurrency, !*no_http, until.as_deref()).await,
        Command::Serve => serve::run(ctx).await,
        Command::Url(cmd) => url::run(ctx, cmd, &mut out),
        Command::Payments(cmd) => payments::run(ctx, cmd, &mut out).await,
        Command::RunTask(args) => run_task::run(ctx, args, &mut out).await,
        Command::Dispatch(args) => dispatch::run(ctx, args, &mut out).await,
        Command::Queue(cmd) => queue::run(ctx, cmd, &mut out).await,
        Command::Locks(cmd) => locks::run(ctx, cmd, &mut out).await,
        Command::Batch(cmd) => batch::run(ctx, cmd, &mut out).await,
        Command::Db(cmd) => db::run(ctx, cmd, &mut out).await,
        Command::Outbox(cmd) => outbox::run(ctx, cmd, &mut out).await,
        Command::Demo(cmd) => demo::run(ctx, cmd, &mut out).await,
        Command::Tenants(cmd) => tenants::run(ctx, cmd, &mut out).await,
        Command::Tasks(cmd) => tasks::run(ctx, cmd, &mut out),
        Command::Bench(args)
            if matches!(
                args.workload,
                Workload::FanOut | Workload::ReleaseStale | Workload::Outbox | Workload::Export
            ) =>
        {
            bench_tasks::run(ctx, args, &mut out).await
        }
        Command::Bench(args) if args.workload == Workload::Blurhash => {
            bench_tasks::blurhash(args, &mut out)
        }
        Command::Bench(args) => bench::run(ctx, args, &mut out).await,
        Command::Schedule(cmd) => match cmd {
            ScheduleCommand::List { format } => schedule_list::run(ctx, *format, &mut out),
            ScheduleCommand::Check { file } => schedule_check::run(ctx, file.as_deref(), &mut out),
            ScheduleCommand::Next { count, format } => {
                schedule_next::run(ctx, *count, *format, &mut out)
            }
            ScheduleCommand::Health { format } => {
                schedule_health::run(ctx, *format, &mut out).await
            }
            ScheduleCommand::History {
                task,
                limit,
                format,
            } => schedule_history::run(ctx, task.as_deref(), *limit, *format, &mut out).await,
            ScheduleCommand::Diff {
                old,
                new,
                from,
                to,
                format,
            } => schedule_diff::run(
                ctx,
                &schedule_diff::DiffArgs {
                    old,
                    new,
                    from: from.as_deref(),
                    to: to.as_deref(),
                    format: *format,
                },
                &mut out,
            ),
            ScheduleCommand::Explain {
                name,
                at,
                count,
                format,
            } => schedule_explain::run(ctx, name, at.as_deref(), *count, *format, &mut out),
            ScheduleCommand::Run { format } => schedule_run::run(ctx, *format, &mut out).await,
            ScheduleCommand::Simulate { from, to, format } => {
                schedule_simulate::run(ctx, from.as_deref(), to, *format, &mut out)
            }
        },
    };
    let flushed = out.flush();
    let status = status?;
    flushed?;
    Ok(status)
}

/// Prints an error the way its kind asks and picks the exit status.
fn report(err: &anyhow::Error) -> ExitStatus {
    // A closed pipe (`conecta … | head`) is how the reader says it has enough.
    if let Some(io) = err.downcast_ref::<std::io::Error>()
        && io.kind() == std::io::ErrorKind::BrokenPipe
    {
        return ExitStatus::Success;
    }
    if let Some(invalid) = err.downcast_ref::<file::Invalid>() {
        say!("{invalid}");
        say!(
            "error: {} problem{} in {}",
            invalid.diagnostics.len(),
            if invalid.diagnostics.len() == 1 {
                ""
            } else {
                "s"
            },
            invalid.path.display()
        );
        return ExitStatus::Usage;
    }
    let configuration = err
        .downcast_ref::<crate::queue::QueueError>()
        .map(crate::outage::Classify::kind)
        .or_else(|| {
            err.downcast_ref::<crate::store::StoreError>()
                .map(crate::outage::Classify::kind)
        });
    if let Some(crate::outage::ErrorKind::Configuration(message)) = configuration {
        say!("error: {message}");
        return ExitStatus::Usage;
    }
    if let Some(usage) = err.downcast_ref::<UsageError>() {
        say!("error: {}", usage.message);
        if let Some(hint) = &usage.hint {
            say!("hint: {hint}");
        }
        return ExitStatus::Usage;
    }
    say!("error: {err:#}");
    ExitStatus::Failure
}

/// Rewrites Laravel-style commands (`schedule:list`, `queue:work`, …) into conecta's own
/// (`schedule list`, `worker`, …). Only the command position is touched, so task names such
/// as `outbox:process` given as arguments pass through.
pub fn rewrite_aliases(args: Vec<String>) -> Vec<String> {
    const VALUE_FLAGS: &[&str] = &[
        "--env-file",
        "--schedule",
        "--now",
        "--speed",
        "--log-format",
    ];
    let mut i = 1;
    while i < args.len() {
        let arg = &args[i];
        if arg.starts_with('-') {
            i += if VALUE_FLAGS.contains(&arg.as_str()) {
                2
            } else {
                1
            };
            continue;
        }
        break;
    }
    let Some(command) = args.get(i) else {
        return args;
    };
    let replacement: Vec<&str> = match command.as_str() {
        "queue:work" | "queue:listen" => vec!["worker"],
        "migrate" => vec!["db", "migrate"],
        "schedule:work" => vec!["scheduler"],
        "queue:monitor" => vec!["queue", "status"],
        other => match other.split_once(':') {
            Some((group, sub))
                if ["schedule", "queue", "locks", "batch", "outbox", "db"].contains(&group) =>
            {
                vec![group, sub]
            }
            _ => return args,
        },
    };
    let mut out = args[..i].to_vec();
    out.extend(replacement.into_iter().map(String::from));
    out.extend_from_slice(&args[i + 1..]);
    out
}

#[cfg(test)]
mod tests {
    use super::rewrite_aliases;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn laravel_aliases_become_conecta_commands() {
        assert_eq!(
            rewrite_aliases(words("conecta schedule:list")),
            words("conecta schedule list")
        );
        assert_eq!(
            rewrite_aliases(words(
                "conecta --now 2026-01-01T00:00:00Z queue:work --tries 3"
            )),
            words("conecta --now 2026-01-01T00:00:00Z worker --tries 3")
        );
        assert_eq!(
            rewrite_aliases(words("conecta run-task outbox:process")),
            words("conecta run-task outbox:process")
        );
    }
}
