//! The task and job catalog (SPEC §7): every name a schedule entry, `run-task` or `dispatch`
//! may use, with the arguments each accepts.
//!
//! This is a registry of names and argument schemas; the bodies live in one file per task.
//! It must never accept an argument it cannot type-check: the schedule validator relies on it
//! to reject a bad entry before the daemon starts.

pub mod analytics;
pub mod audit;
pub mod diagnostics;
pub mod orders;
pub mod outbox;
pub mod prune;
pub mod reminders;

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
}

impl ArgKind {
    /// What a value of this kind looks like, for error messages.
    pub fn example(self) -> &'static str {
        match self {
            ArgKind::Duration => "a duration like \"30m\"",
            ArgKind::Integer => "a whole number",
            ArgKind::Text => "a string",
            ArgKind::Date => "a date like \"2026-11-27\"",
            ArgKind::Bool => "true or false",
            ArgKind::Json => "any JSON value",
        }
    }

    /// Checks `value` against this kind; the error says what was expected and what was given.
    pub fn check(self, value: &Value) -> Result<(), String> {
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
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("expected {}, got: {value}", self.example()))
        }
    }
}

/// One argument a task accepts.
#[derive(Debug, Clone, Copy)]
pub struct ArgDef {
    /// Its key in `args = { … }` or `--arg key=value`.
    pub name: &'static str,
    /// Its type.
    pub kind: ArgKind,
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
}

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
    /// The definition of argument `name`, if this task takes it.
    pub fn arg(&self, name: &str) -> Option<&ArgDef> {
        self.args.iter().find(|a| a.name == name)
    }

    /// Checks `args` against this definition: every key must be an argument it takes and every
    /// value of that argument's type. `run-task` and `dispatch` check through here.
    pub fn check_args(&self, args: &serde_json::Map<String, Value>) -> Result<(), ArgProblem> {
        for (key, value) in args {
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
            })?;
        }
        Ok(())
    }
}

const fn arg(name: &'static str, kind: ArgKind) -> ArgDef {
    ArgDef { name, kind }
}

const TENANT: ArgDef = arg("tenant", ArgKind::Integer);

/// Every registered task and job.
pub const CATALOG: &[TaskDef] = &[
    TaskDef {
        name: "outbox:process",
        kind: Kind::Task,
        args: &[
            arg("batch", ArgKind::Integer),
            arg("limit", ArgKind::Integer),
        ],
        summary: "publish pending outbox messages",
    },
    TaskDef {
        name: "orders:release-stale",
        kind: Kind::Task,
        args: &[arg("older_than", ArgKind::Duration), TENANT],
        summary: "cancel stale pending orders and restore their stock",
    },
    TaskDef {
        name: "appointments:send-reminders",
        kind: Kind::Task,
        args: &[TENANT],
        summary: "queue reminders for appointments starting in 23-24 hours",
    },
    TaskDef {
        name: "analytics:sync",
        kind: Kind::Task,
        args: &[
            arg("chunk", ArgKind::Integer),
            arg("date", ArgKind::Date),
            TENANT,
        ],
        summary: "fan out SyncTenantAnalytics over approved tenants",
    },
    TaskDef {
        name: "tenants:audit-limits",
        kind: Kind::Task,
        args: &[TENANT],
        summary: "compare tenant usage with plan limits",
    },
    TaskDef {
        name: "AuditTenantLimits",
        kind: Kind::Job,
        args: &[TENANT],
        summary: "compare tenant usage with plan limits (job form)",
    },
    TaskDef {
        name: "model:prune",
        kind: Kind::Task,
        args: &[
            arg("outbox_days", ArgKind::Integer),
            arg("failed_jobs_days", ArgKind::Integer),
            arg("batches_days", ArgKind::Integer),
            arg("schedule_runs_days", ArgKind::Integer),
        ],
        summary: "prune processed outbox rows, old failed jobs, batches and runs",
    },
    TaskDef {
        name: "SendAppointmentReminder",
        kind: Kind::Job,
        args: &[
            arg("outbox_id", ArgKind::Integer),
            arg("appointment_id", ArgKind::Integer),
            arg("tenant_id", ArgKind::Integer),
            arg("customer_name", ArgKind::Text),
            arg("customer_email", ArgKind::Text),
            arg("starts_at", ArgKind::Text),
        ],
        summary: "email one appointment reminder (published from the outbox)",
    },
    TaskDef {
        name: "SendOrderCancellation",
        kind: Kind::Job,
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
    },
    TaskDef {
        name: "SyncTenantAnalytics",
        kind: Kind::Job,
        args: &[TENANT, arg("date", ArgKind::Date)],
        summary: "aggregate one tenant's day into its analytics row",
    },
    TaskDef {
        name: "RecordInteraction",
        kind: Kind::Job,
        args: &[
            TENANT,
            arg("kind", ArgKind::Text),
            arg("visitor", ArgKind::Text),
        ],
        summary: "store one visitor or interaction event",
    },
    TaskDef {
        name: "EnhanceTenantProfileJob",
        kind: Kind::Job,
        args: &[TENANT],
        summary: "apply AI-generated description and tags to a tenant profile",
    },
    TaskDef {
        name: "GenerateBusinessProfile",
        kind: Kind::Job,
        args: &[TENANT],
        summary: "first AI profile of a newly onboarded tenant",
    },
    TaskDef {
        name: "GenerateSalesExport",
        kind: Kind::Job,
        args: &[TENANT, arg("format", ArgKind::Text)],
        summary: "CSV or Excel export of a tenant's sales",
    },
    TaskDef {
        name: "GeneratePdfReportJob",
        kind: Kind::Job,
        args: &[TENANT],
        summary: "PDF report of a tenant",
    },
    TaskDef {
        name: "GenerateProductBlurhash",
        kind: Kind::Job,
        args: &[arg("product", ArgKind::Integer)],
        summary: "BlurHash of a product image",
    },
    TaskDef {
        name: "SendCampaignEmail",
        kind: Kind::Job,
        args: &[
            arg("campaign", ArgKind::Integer),
            arg("recipient", ArgKind::Text),
        ],
        summary: "send one campaign email",
    },
    TaskDef {
        name: "ProcessPaymentWebhook",
        kind: Kind::Job,
        args: &[arg("event_id", ArgKind::Text)],
        summary: "apply a verified payment event to its order",
    },
    TaskDef {
        name: "diagnostics:noop",
        kind: Kind::Job,
        args: &[],
        summary: "does nothing (smoke test)",
    },
    TaskDef {
        name: "diagnostics:sleep",
        kind: Kind::Job,
        args: &[arg("ms", ArgKind::Integer)],
        summary: "sleeps ms milliseconds (smoke test)",
    },
    TaskDef {
        name: "diagnostics:fail",
        kind: Kind::Job,
        args: &[arg("message", ArgKind::Text)],
        summary: "fails with message (smoke test)",
    },
];

/// The catalog entry called `name`.
pub fn find(name: &str) -> Option<&'static TaskDef> {
    CATALOG.iter().find(|t| t.name == name)
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
            ArgKind::Duration.check(&json!("soon")).unwrap_err(),
            "expected a duration like \"30m\", got: \"soon\""
        );
        assert!(ArgKind::Integer.check(&json!(-1)).is_err());
        assert!(ArgKind::Date.check(&json!("2026-02-30")).is_err());
    }
}
