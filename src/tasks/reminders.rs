//! `appointments:send-reminders`: appointments starting 23–24 hours from now with no reminder
//! yet are marked reminded, each in one transaction with the outbox row that gets its email
//! sent (`SendAppointmentReminder`, through the configured mailer, with retries).
//!
//! After downtime the window reaches back to the last successful scheduled run: it starts at
//! that run's instant + 24 h (never in the past), so what fell due while conecta was down is
//! still reminded. The `reminder_sent_at IS NULL` guard keeps every reminder to one.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use crate::mail::Mail;
use crate::queue::{JobContext, Registry};
use crate::store::{self, appointments, schedule_runs};

/// The task's registered name.
pub const NAME: &str = "appointments:send-reminders";

/// `appointments:send-reminders` arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Only this tenant's appointments.
    #[serde(default)]
    pub tenant: Option<i64>,
}

/// The start-time window `[from, to)` a run at `now` covers, given the last successful run.
pub fn window(
    now: DateTime<Utc>,
    last_success: Option<DateTime<Utc>>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let usual = now + TimeDelta::hours(23);
    let from = match last_success {
        Some(last) => (last + TimeDelta::hours(24)).min(usual).max(now),
        None => usual,
    };
    (from, now + TimeDelta::hours(24))
}

/// Marks every appointment due a reminder; returns how many this run marked.
pub async fn send_reminders(ctx: &JobContext, tenant: Option<i64>) -> store::Result<u64> {
    let now = ctx.clock.now();
    let last = schedule_runs::last_success_of_task(&ctx.db, NAME).await?;
    let (from, to) = window(now, last);
    let mut marked = 0;
    let mut after = 0;
    loop {
        let page = appointments::unreminded(&ctx.db, from, to, tenant, after, 500).await?;
        let Some(last) = page.last() else {
            return Ok(marked);
        };
        after = last.id;
        for a in &page {
            if store::retrying(|| appointments::mark_reminded(&ctx.db, a, ctx.clock.now())).await? {
                marked += 1;
            }
        }
    }
}

/// `SendAppointmentReminder` payload (the `AppointmentReminderDue` event).
#[derive(Debug, Clone, Deserialize)]
pub struct Reminder {
    /// The outbox message it came from: the mail's key.
    pub outbox_id: i64,
    /// The appointment.
    pub appointment_id: i64,
    /// The customer.
    pub customer_name: String,
    /// Where to send it.
    pub customer_email: String,
    /// When it starts (RFC 3339).
    pub starts_at: String,
}

/// Registers `appointments:send-reminders` and `SendAppointmentReminder`.
pub fn register(r: &mut Registry) {
    r.register(NAME, |ctx: JobContext, a: Args| async move {
        let marked = send_reminders(&ctx, a.tenant).await.map_err(super::retry)?;
        tracing::info!(reminders = marked, "appointment reminders queued");
        Ok(())
    });
    r.register(
        "SendAppointmentReminder",
        |ctx: JobContext, m: Reminder| async move {
            let mail = Mail {
                key: format!("outbox-{}", m.outbox_id),
                to: m.customer_email.clone(),
                subject: "Reminder: your appointment tomorrow".into(),
                body: format!(
                    "Hello {},\n\nthis is a reminder of your appointment #{} at {} (UTC).\n",
                    m.customer_name, m.appointment_id, m.starts_at
                ),
            };
            super::send_mail(&ctx, &mail).await
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_window_reaches_back_to_the_last_success() {
        let now = t("2026-03-10T10:00:00Z");
        assert_eq!(
            window(now, None),
            (t("2026-03-11T09:00:00Z"), t("2026-03-11T10:00:00Z"))
        );
        assert_eq!(
            window(now, Some(t("2026-03-10T09:00:00Z"))),
            (t("2026-03-11T09:00:00Z"), t("2026-03-11T10:00:00Z"))
        );
        // Down five hours: the window starts where the last good run's ended.
        assert_eq!(
            window(now, Some(t("2026-03-10T05:00:00Z"))),
            (t("2026-03-11T05:00:00Z"), t("2026-03-11T10:00:00Z"))
        );
        // Down two days: nothing before now.
        assert_eq!(
            window(now, Some(t("2026-03-08T05:00:00Z"))),
            (now, t("2026-03-11T10:00:00Z"))
        );
    }
}
