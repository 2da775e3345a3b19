//! The task and job catalog (`conecta tasks list`): every name a schedule entry, `run-task` or `dispatch`
//! may use, with the arguments each accepts.
//!
//! This is a registry of names and argument schemas; the bodies live in one file per task.
//! It must never accept an argument it cannot type-check: the schedule validator relies on it
//! to reject a bad entry before the daemon starts.

pub mod analytics;
pub mod audit;
pub mod blurhash;
pub mod campaigns;
pub mod diagnostics;
pub mod dispatch;
pub mod exports;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod profiles;
pub mod prune;
pub mod reminders;
pub mod report;

use serde_json::Value;

use crate::queue::{JobError, Registry};
use crate::store::StoreError;

/// A registry with every job and task body conecta ships.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    register(&mut r);
    r
}

/// Registers every task body conecta ships.
pub fn register(r: &mut Registry) {
    diagnostics::register(r);
    outbox::register(r);
    orders::register(r);
    reminders::register(r);
    analytics::register(r);
    audit::register(r);
    prune::register(r);
    payments::register(r);
    exports::register(r);
    report::register(r);
    blurhash::register(r);
    campaigns::register(r);
    profiles::register(r);
    for (alias, name) in ALIASES {
        r.alias(alias, name);
    }
}

/// The Laravel class names the PHP side dispatches and schedules, and the catalog names they
/// became: `dispatch`, `run-task`, the schedule file and a worker accept either.
pub const ALIASES: &[(&str, &str)] = &[
    ("SyncAnalyticsJob", "analytics:sync"),
    ("ReleaseStaleOrders", "orders:release-stale"),
    ("SendAppointmentReminders", "appointments:send-reminders"),
];

/// The catalog name `name` stands for: itself, or what its Laravel alias became.
pub fn canonical(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, target)| target)
}

/// The Laravel names that stand for catalog name `name`.
pub fn aliases_of(name: &str) -> impl Iterator<Item = &'static str> + '_ {
    ALIASES
        .iter()
        .filter(move |(_, target)| *target == name)
        .map(|(alias, _)| *alias)
}

/// Sends `mail` through the configured mailer; a failure is retried with the job's backoff.
pub(crate) async fn send_mail(
    ctx: &crate::queue::JobContext,
    mail: &crate::mail::Mail,
) -> Result<(), JobError> {
    ctx.rt
        .settings
        .mailer
        .send(mail, ctx.clock.now())
        .await
        .map(|_| ())
        .map_err(|e| JobError::Retry(e.to_string()))
}

/// Tenant `tenant`'s zone `name`, or a failure saying it is unknown (a retry cannot fix it).
pub(crate) fn tenant_zone(tenant: i64, name: &str) -> Result<chrono_tz::Tz, JobError> {
    name.parse()
        .map_err(|_| JobError::Fail(format!("tenant {tenant} has an unknown time zone {name:?}")))
}

/// A database error inside a task: worth retrying.
pub(crate) fn retry(e: StoreError) -> JobError {
    JobError::Retry(e.to_string())
}

/// Whether a catalog name is normally scheduled (a task) or enqueued (a job). Either can run
/// either way; the kind only documents the usual use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Run by the scheduler or `run-task`.
    Task,
    /// Handled by a queue worker.
    Job,
}

/// The type an argument must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A duration such as `"30m"` (or a number of seconds).
    Duration,
    /// A non-negative integer.
    Integer,
    /// Any string.
    Text,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// `true` or `false`.
    Bool,
    /// Any JSON value (event payloads carry lists).
    Json,
    /// A month, `YYYY-MM`.
    Month,
    /// An export format: `csv` or `xlsx`.
    Format,
    /// A send rate, `N/s`, `N/m` or `N/h`.
    Rate,
}

impl ArgKind {
    /// Its name in `conecta tasks list`.
    pub fn name(self) -> &'static str {
        match self {
            ArgKind::Duration => "duration",
            ArgKind::Integer => "integer",
            ArgKind::Text => "text",
            ArgKind::Date => "date",
            ArgKind::Bool => "bool",
            ArgKind::Json => "json",
            ArgKind::Month => "month",
            ArgKind::Format => "csv|xlsx",
            ArgKind::Rate => "rate",
        }
    }

    /// What a value of this kind looks like, for error messages.
    pub fn example(self) -> &'static str {
        match self {
            ArgKind::Duration => "a duration like \"30m\"",
            ArgKind::Integer => "a whole number",
            ArgKind::Text => "a string",
            ArgKind::Date => "a date like \"2026-11-27\"",
            ArgKind::Bool => "true or false",
            ArgKind::Json => "any JSON value",
            ArgKind::Month => "a month like \"2026-11\"",
            ArgKind::Format => "\"csv\" or \"xlsx\"",
            ArgKind::Rate => "a rate like \"50/s\" (per second, /m per minute, /h per hour)",
        }
    }

    /// Checks `value` against this kind; the error says what was expected and what was given.
    pub fn check(self, value: &Value) -> Result<(), BadValue> {
        let ok = match (self, value) {
            (ArgKind::Duration, Value::String(s)) => crate::duration::parse(s).is_ok(),
            (ArgKind::Duration, Value::Number(n)) => n
                .as_u64()
                .is_some_and(|v| v <= crate::duration::MAX.as_secs()),
            (ArgKind::Integer, Value::Number(n)) => n.as_u64().is_some(),
            (ArgKind::Text, Value::String(_)) => true,
            (ArgKind::Date, Value::String(s)) => {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
            }
            (ArgKind::Bool, Value::Bool(_)) => true,
            (ArgKind::Json, _) => true,
            (ArgKind::Month, Value::String(s)) => parse_month(s).is_some(),
            (ArgKind::Format, Value::String(s)) => matches!(s.as_str(), "csv" | "xlsx"),
            (ArgKind::Rate, Value::String(s)) => parse_rate(s).is_some(),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(BadValue {
                expected: self.example(),
                got: value.to_string(),
            })
        }
    }
}

/// The first day of month `text` (`YYYY-MM`).
pub fn parse_month(text: &str) -> Option<chrono::NaiveDate> {
    let (y, m) = text.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    chrono::NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)
}

/// The interval between two sends of rate `text` (`50/s`, `600/m`, `1000/h`), at least a
/// millisecond; `None` when it does not parse or is zero or over 10,000 a second.
pub fn parse_rate(text: &str) -> Option<std::time::Duration> {
    let (n, per) = text.trim().split_once('/')?;
    let n: u64 = n.trim().parse().ok()?;
    let per_ms = match per.trim() {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    if n == 0 || n > per_ms * 10 {
        return None;
    }
    Some(std::time::Duration::from_micros(per_ms * 1_000 / n))
}

/// A value that does not fit its argument's kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, got: {got}")]
pub struct BadValue {
    /// What the kind looks like.
    pub expected: &'static str,
    /// The value given, as JSON.
    pub got: String,
}

/// One argument a task accepts.
#[derive(Debug, Clone, Copy)]
pub struct ArgDef {
    /// Its key in `args = { … }` or `--arg key=value`.
    pub name: &'static str,
    /// Its type.
    pub kind: ArgKind,
    /// What the body uses when it is not given, in words (`None`: all, or nothing).
    pub default: Option<&'static str>,
}

/// One entry of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct TaskDef {
    /// The registered name.
    pub name: &'static str,
    /// Task or job.
    pub kind: Kind,
    /// The arguments it accepts (every one optional).
    pub args: &'static [ArgDef],
    /// One line on what it does.
    pub summary: &'static str,
    /// The queue its jobs are enqueued on when conecta enqueues them (`None` for a task,
    /// which runs inline in the scheduler or `run-task`).
    pub queue: Option<&'static str>,
    /// Tries of the jobs conecta enqueues (`None`: the worker's `--tries`).
    pub tries: Option<u32>,
    /// Seconds between tries (`None`: the worker's `--backoff`).
    pub backoff: Option<&'static [u64]>,
    /// Seconds a run may take (`None`: the worker's `--timeout`, or the schedule entry's).
    pub timeout: Option<u64>,
    /// What makes two of its jobs the same (their unique key), if anything.
    pub unique: Option<&'static str>,
}

/// A task: runs inline, nothing set.
const TASK: TaskDef = TaskDef {
    name: "",
    kind: Kind::Task,
    args: &[],
    summary: "",
    queue: None,
    tries: None,
    backoff: None,
    timeout: None,
    unique: None,
};

/// A job on the `default` queue with the worker's tries, backoff and timeout.
const JOB: TaskDef = TaskDef {
    kind: Kind::Job,
    queue: Some("default"),
    ..TASK
};

/// Tries and backoff of the jobs the outbox publishes (mail): retried for about six minutes.
const OUTBOX_TRIES: u32 = 5;
const OUTBOX_BACKOFF: &[u64] = &[10, 60, 300];

/// An argument that does not fit a task's definition: what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ArgProblem {
    /// What is wrong.
    pub message: String,
    /// What to do, if there is something to say.
    pub hint: Option<String>,
}

impl TaskDef {
    /// A job of this entry carrying `data`, on its queue with its tries, backoff and timeout:
    /// what conecta enqueues is what `conecta tasks list` shows.
    pub fn new_job(&self, data: Value) -> crate::queue::NewJob {
        let mut job =
            crate::queue::NewJob::new(self.name, data).on(self.queue.unwrap_or("default"));
        job.tries = self.tries;
        job.backoff = self.backoff.map(<[u64]>::to_vec);
        job.timeout = self.timeout;
        job
    }

    /// The definition of argument `name`, if this task takes it.
    pub fn arg(&self, name: &str) -> Option<&ArgDef> {
        self.args.iter().find(|a| a.name == name)
    }

    /// Checks `args` against this definition: every key must be an argument it takes and every
    /// value of that argument's type. The first problem is returned.
    pub fn check_args(&self, args: &serde_json::Map<String, Value>) -> Result<(), ArgProblem> {
        args.iter()
            .try_for_each(|(key, value)| self.check_arg(key, value))
    }

    /// Checks one argument. The schedule file, `run-task` and `dispatch` all check through
    /// here, so a typo gets the same message from each.
    pub fn check_arg(&self, key: &str, value: &Value) -> Result<(), ArgProblem> {
        {
            let Some(arg) = self.arg(key) else {
                let hint = crate::suggest::did_you_mean(key, self.args.iter().map(|a| a.name))
                    .map(|s| format!("did you mean \"{s}\"?"))
                    .unwrap_or_else(|| {
                        if self.args.is_empty() {
                            format!("{} takes no arguments", self.name)
                        } else {
                            let names: Vec<&str> = self.args.iter().map(|a| a.name).collect();
                            format!("{} takes: {}", self.name, names.join(", "))
                        }
                    });
                return Err(ArgProblem {
                    message: format!("unknown argument \"{key}\" for \"{}\"", self.name),
                    hint: Some(hint),
                });
            };
            arg.kind.check(value).map_err(|m| ArgProblem {
                message: format!("bad argument `{key}` for \"{}\": {m}", self.name),
                hint: None,
            })
        }
    }
}

const fn arg(name: &'static str, kind: ArgKind) -> ArgDef {
    ArgDef {
        name,
        kind,
        default: None,
    }
}

const fn arg_or(name: &'static str, kind: ArgKind, default: &'static str) -> ArgDef {
    ArgDef {
        name,
        kind,
        default: Some(default),
    }
}

/// A task's optional scope to one tenant.
const TENANT_SCOPE: ArgDef = arg_or("tenant", ArgKind::Integer, "every tenant");
/// A job's tenant.
const TENANT: ArgDef = arg("tenant", ArgKind::Integer);

/// Every registered task and job.
pub const CATALOG: &[TaskDef] = &[
    TaskDef {
        name: "outbox:process",
        args: &[
            arg_or("batch", ArgKind::Integer, "500"),
            arg_or("limit", ArgKind::Integer, "every pending message"),
        ],
        summary: "publish pending outbox messages",
        ..TASK
    },
    TaskDef {
        name: "orders:release-stale",
        args: &[arg_or("older_than", ArgKind::Duration, "30m"), TENANT_SCOPE],
        summary: "cancel stale pending orders and restore their stock",
        ..TASK
    },
    TaskDef {
        name: "appointments:send-reminders",
        args: &[TENANT_SCOPE],
        summary: "queue reminders for appointments starting in 23-24 hours",
        ..TASK
    },
    TaskDef {
        name: "analytics:sync",
        args: &[
            arg_or("chunk", ArgKind::Integer, "500"),
            arg_or("date", ArgKind::Date, "yesterday in APP_TIMEZONE"),
            TENANT_SCOPE,
        ],
        summary: "fan out SyncTenantAnalytics over approved tenants",
        ..TASK
    },
    TaskDef {
        name: "tenants:audit-limits",
        args: &[TENANT_SCOPE],
        summary: "compare tenant usage with plan limits",
        ..TASK
    },
    TaskDef {
        name: "AuditTenantLimits",
        args: &[TENANT_SCOPE],
        summary: "compare tenant usage with plan limits (job form)",
        ..JOB
    },
    TaskDef {
        name: "model:prune",
        args: &[
            arg_or("outbox_days", ArgKind::Integer, "7"),
            arg_or("failed_jobs_days", ArgKind::Integer, "30"),
            arg_or("batches_days", ArgKind::Integer, "7"),
            arg_or("schedule_runs_days", ArgKind::Integer, "30"),
            arg_or("queue_minutes_days", ArgKind::Integer, "7"),
        ],
        summary: "prune processed outbox rows, old failed jobs, batches, runs and per-minute job counts",
        ..TASK
    },
    TaskDef {
        name: "SendAppointmentReminder",
        args: &[
            arg("outbox_id", ArgKind::Integer),
            arg("appointment_id", ArgKind::Integer),
            arg("tenant_id", ArgKind::Integer),
            arg("customer_name", ArgKind::Text),
            arg("customer_email", ArgKind::Text),
            arg("starts_at", ArgKind::Text),
        ],
        summary: "email one appointment reminder (published from the outbox)",
        tries: Some(OUTBOX_TRIES),
        backoff: Some(OUTBOX_BACKOFF),
        ..JOB
    },
    TaskDef {
        name: "SendOrderCancellation",
        args: &[
            arg("outbox_id", ArgKind::Integer),
            arg("order_id", ArgKind::Integer),
            arg("tenant_id", ArgKind::Integer),
            arg("customer_email", ArgKind::Text),
            arg("total_cents", ArgKind::Integer),
            arg("reason", ArgKind::Text),
            arg("restored", ArgKind::Json),
        ],
        summary: "email a customer that a stale order was cancelled (from the outbox)",
        tries: Some(OUTBOX_TRIES),
        backoff: Some(OUTBOX_BACKOFF),
        ..JOB
    },
    TaskDef {
        name: "SyncTenantAnalytics",
        args: &[TENANT, arg("date", ArgKind::Date)],
        summary: "aggregate one tenant's day into its analytics row",
        unique: Some("analytics:{tenant}:{date}, for a day"),
        ..JOB
    },
    TaskDef {
        name: "RecordInteraction",
        args: &[
            TENANT,
            arg("kind", ArgKind::Text),
            arg("visitor", ArgKind::Text),
        ],
        summary: "store one visitor or interaction event",
        ..JOB
    },
    TaskDef {
        name: "EnhanceTenantProfileJob",
        args: &[TENANT],
        summary: "apply AI-generated description and tags to a tenant profile",
        tries: Some(3),
        timeout: Some(180),
        unique: Some("profile:{tenant}, for 3600 s"),
        ..JOB
    },
    TaskDef {
        name: "GenerateBusinessProfile",
        args: &[TENANT],
        summary: "first AI profile of a newly onboarded tenant (left alone if it has one)",
        tries: Some(3),
        timeout: Some(180),
        ..JOB
    },
    TaskDef {
        name: "GenerateSalesExport",
        args: &[
            TENANT,
            arg_or(
                "from",
                ArgKind::Date,
                "first day of this month, tenant's zone",
            ),
            arg_or("to", ArgKind::Date, "today, tenant's zone"),
            arg_or("format", ArgKind::Format, "csv"),
        ],
        summary: "CSV or Excel export of a tenant's orders and items, mailed as a signed link",
        tries: Some(3),
        backoff: Some(&[10, 60, 300]),
        timeout: Some(1_800),
        ..JOB
    },
    TaskDef {
        name: "GeneratePdfReportJob",
        args: &[
            TENANT,
            arg_or("month", ArgKind::Month, "last month, tenant's zone"),
        ],
        summary: "PDF report of a tenant's month, mailed as a signed link",
        tries: Some(3),
        backoff: Some(&[10, 60, 300]),
        timeout: Some(600),
        ..JOB
    },
    TaskDef {
        name: "SendDownloadLink",
        args: &[
            arg("outbox_id", ArgKind::Integer),
            arg("tenant_id", ArgKind::Integer),
            arg("email", ArgKind::Text),
            arg("kind", ArgKind::Text),
            arg("file", ArgKind::Text),
            arg("url", ArgKind::Text),
            arg("expires_at", ArgKind::Text),
            arg("job", ArgKind::Text),
        ],
        summary: "email a tenant the signed link to a finished export or report (from the outbox)",
        tries: Some(OUTBOX_TRIES),
        backoff: Some(OUTBOX_BACKOFF),
        ..JOB
    },
    TaskDef {
        name: "GenerateProductBlurhash",
        args: &[arg("product", ArgKind::Integer)],
        summary: "BlurHash of a product image (JPEG, PNG, WebP), stored on the product",
        tries: Some(3),
        backoff: Some(&[10, 60]),
        ..JOB
    },
    TaskDef {
        name: "campaigns:send",
        args: &[
            arg("campaign", ArgKind::Integer),
            arg_or("rate", ArgKind::Rate, "50/s"),
            arg_or("chunk", ArgKind::Integer, "500"),
        ],
        summary: "fan out one SendCampaignEmail per opted-in recipient, as one batch",
        ..TASK
    },
    TaskDef {
        name: "SendCampaignEmail",
        args: &[
            arg("campaign", ArgKind::Integer),
            arg("recipient", ArgKind::Integer),
        ],
        summary: "send one campaign email to one customer, at the tenant's rate",
        tries: Some(3),
        backoff: Some(&[10, 60, 300]),
        unique: Some("campaign:{campaign}:{recipient}, for 7 days"),
        ..JOB
    },
    TaskDef {
        name: "FinishCampaign",
        args: &[arg("campaign", ArgKind::Integer)],
        summary: "mark a campaign sent with its counts (its batch's last step)",
        ..JOB
    },
    TaskDef {
        name: "ProcessPaymentWebhook",
        args: &[arg("event_id", ArgKind::Text)],
        summary: "apply a verified payment event to its order",
        queue: Some("high"),
        tries: Some(5),
        backoff: Some(&[10, 60, 300, 900, 3600]),
        unique: Some("payment:{event_id}, until processed"),
        ..JOB
    },
    TaskDef {
        name: "NotifyPaymentReview",
        args: &[
            arg("outbox_id", ArgKind::Integer),
            arg("event_id", ArgKind::Text),
            arg("event_type", ArgKind::Text),
            arg("order_id", ArgKind::Integer),
            arg("amount_cents", ArgKind::Integer),
            arg("reason", ArgKind::Text),
        ],
        summary: "email the operators a payment that needs review (from the outbox)",
        tries: Some(OUTBOX_TRIES),
        backoff: Some(OUTBOX_BACKOFF),
        ..JOB
    },
    TaskDef {
        name: "diagnostics:noop",
        args: &[],
        summary: "does nothing (smoke test)",
        ..JOB
    },
    TaskDef {
        name: "diagnostics:sleep",
        args: &[arg("ms", ArgKind::Integer)],
        summary: "sleeps ms milliseconds (smoke test)",
        ..JOB
    },
    TaskDef {
        name: "diagnostics:fail",
        args: &[arg("message", ArgKind::Text)],
        summary: "fails with message (smoke test)",
        ..JOB
    },
];

/// The catalog entry called `name` (or a Laravel alias of it, see [`ALIASES`]).
pub fn find(name: &str) -> Option<&'static TaskDef> {
    let name = canonical(name);
    CATALOG.iter().find(|t| t.name == name)
}

/// A job `name` carrying `data`, with its catalog entry's queue, tries, backoff and timeout
/// ([`TaskDef::new_job`]); a name outside the catalog gets none of them.
pub fn new_job(name: &str, data: Value) -> crate::queue::NewJob {
    match find(name) {
        Some(def) => def.new_job(data),
        None => crate::queue::NewJob::new(name, data),
    }
}

/// Every registered name, in catalog order.
pub fn names() -> impl Iterator<Item = &'static str> {
    CATALOG.iter().map(|t| t.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn catalog_names_are_unique() {
        let mut names: Vec<_> = names().collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn argument_kinds_check_their_values() {
        assert!(ArgKind::Duration.check(&json!("30m")).is_ok());
        assert!(ArgKind::Duration.check(&json!(1800)).is_ok());
        assert_eq!(
            ArgKind::Duration
                .check(&json!("soon"))
                .unwrap_err()
                .to_string(),
            "expected a duration like \"30m\", got: \"soon\""
        );
        assert!(ArgKind::Integer.check(&json!(-1)).is_err());
        assert!(ArgKind::Date.check(&json!("2026-02-30")).is_err());
    }
}
