//! Campaign mail: `campaigns:send {campaign, rate, chunk}` fans out one
//! `SendCampaignEmail {campaign, recipient}` per opted-in customer of the campaign's tenant, as
//! one batch enqueued in chunks, each job unique per `campaign:{id}:{recipient}` for seven
//! days; `FinishCampaign` is the batch's last step and marks the campaign `sent` with its
//! counts of sent and failed messages.
//!
//! A recipient gets one message: the unique lock stops a second fan-out from enqueueing them
//! again, and a delivery row (written after the mail left) stops a retried or re-enqueued job
//! from sending again. Every message carries a signed unsubscribe link that the HTTP edge
//! honours (`GET` or `POST /unsubscribe/{campaign}/{customer}`); someone who unsubscribed
//! after the fan-out is skipped. All workers together keep the campaign's per-tenant send
//! rate: each message takes the next slot of the tenant's rate row in the database and waits
//! for it.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::json;

use super::retry;
use crate::mail::Mail;
use crate::queue::{JobContext, JobError, NewJob, QueueError, Registry, UniqueUntil};
use crate::store::{batches, campaigns};

/// The send rate when `campaigns:send` names none.
pub const DEFAULT_RATE: &str = "50/s";

/// How long a recipient's unique lock lives.
pub const UNIQUE_FOR: u64 = 7 * 86_400;

/// How long an unsubscribe link works.
pub const UNSUBSCRIBE_TTL: TimeDelta = TimeDelta::days(365);

/// `campaigns:send` arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The campaign.
    pub campaign: i64,
    /// Messages per second (`50/s`), minute (`600/m`) or hour, for the tenant, across workers.
    #[serde(default)]
    pub rate: Option<String>,
    /// Recipients per chunk (one round trip each), default 500.
    #[serde(default)]
    pub chunk: Option<u64>,
}

/// `SendCampaignEmail` arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct One {
    /// The campaign.
    pub campaign: i64,
    /// The customer.
    pub recipient: i64,
}

/// `FinishCampaign` arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finish {
    /// The campaign.
    pub campaign: i64,
}

/// What a fan-out did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The batch.
    pub batch_id: String,
    /// Jobs enqueued.
    pub enqueued: u64,
    /// Recipients whose job already exists (a second run).
    pub duplicates: u64,
}

/// The job for one recipient.
pub fn job(campaign: i64, recipient: i64) -> NewJob {
    super::new_job(
        "SendCampaignEmail",
        json!({ "campaign": campaign, "recipient": recipient }),
    )
    .unique(
        format!("campaign:{campaign}:{recipient}"),
        UNIQUE_FOR,
        UniqueUntil::Ttl,
    )
}

/// Why a fan-out could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Bad input: no such campaign, a bad rate.
    #[error("{0}")]
    Refused(String),
    /// The queue or the database failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<crate::store::StoreError> for SendError {
    fn from(e: crate::store::StoreError) -> Self {
        SendError::Queue(e.into())
    }
}

/// Fans campaign `id` out to its opted-in recipients, `chunk` per round trip, at `rate`.
pub async fn send(ctx: &JobContext, id: i64, rate: &str, chunk: u64) -> Result<Report, SendError> {
    let rt = &ctx.rt;
    if super::parse_rate(rate).is_none() {
        return Err(SendError::Refused(format!(
            "rate {rate:?} is not a rate like \"50/s\", \"600/m\" or \"1000/h\" (at most 10000/s)"
        )));
    }
    let campaign = campaigns::find(&ctx.db, id)
        .await?
        .ok_or_else(|| SendError::Refused(format!("campaign {id} does not exist")))?;
    let then = NewJob::new("FinishCampaign", json!({ "campaign": id }));
    let batch = rt
        .batch_begin(&format!("campaign {id}"), Some(then))
        .await?;
    let expected = campaigns::count_recipients(&ctx.db, campaign.tenant_id).await?;
    rt.batch_expect(&batch, expected).await?;
    campaigns::start_sending(&ctx.db, id, &batch, expected, rate, ctx.clock.now()).await?;
    let bar = rt
        .settings
        .progress
        .bar(&format!("campaign {id}"), Some(expected as u64));
    let mut report = Report {
        batch_id: batch.clone(),
        enqueued: 0,
        duplicates: 0,
    };
    let chunk = chunk.clamp(1, 10_000) as i64;
    let (mut seen, mut after) = (0i64, 0i64);
    loop {
        let ids = campaigns::recipients_after(&ctx.db, campaign.tenant_id, after, chunk).await?;
        let Some(&last) = ids.last() else { break };
        after = last;
        seen += ids.len() as i64;
        let jobs = ids.iter().map(|r| job(id, *r)).collect();
        let (enqueued, duplicates) = rt.batch_add_expected(&batch, jobs).await?;
        report.enqueued += enqueued as u64;
        report.duplicates += duplicates as u64;
        bar.set(report.enqueued + report.duplicates);
    }
    // Customers who opted in or out while the fan-out ran.
    rt.batch_expect(&batch, seen - expected).await?;
    rt.batch_seal(&batch).await?;
    bar.finish();
    Ok(report)
}

/// The body of campaign mail: the template with `{{name}}`, `{{email}}` and
/// `{{unsubscribe_url}}` filled in; the link is appended when the template has no place for it.
pub fn body(template: &str, name: &str, email: &str, unsubscribe: &str) -> String {
    let mut text = template
        .replace("{{name}}", name)
        .replace("{{email}}", email);
    if text.contains("{{unsubscribe_url}}") {
        text = text.replace("{{unsubscribe_url}}", unsubscribe);
    } else {
        text.push_str(&format!("\n\n--\nUnsubscribe: {unsubscribe}\n"));
    }
    text
}

/// Sends campaign `campaign` to customer `recipient`, once, at the tenant's rate. Returns
/// whether a message left.
pub async fn send_one(ctx: &JobContext, campaign: i64, recipient: i64) -> Result<bool, JobError> {
    let c = campaigns::find(&ctx.db, campaign)
        .await
        .map_err(retry)?
        .ok_or_else(|| JobError::Fail(format!("campaign {campaign} does not exist")))?;
    let who = campaigns::customer(&ctx.db, recipient)
        .await
        .map_err(retry)?
        .ok_or_else(|| JobError::Fail(format!("customer {recipient} does not exist")))?;
    if who.tenant_id != c.tenant_id {
        return Err(JobError::Fail(format!(
            "customer {recipient} belongs to tenant {}, not to campaign {campaign}'s tenant {}",
            who.tenant_id, c.tenant_id
        )));
    }
    if !who.opted_in {
        tracing::info!(campaign, recipient, "recipient opted out: not sent");
        return Ok(false);
    }
    if campaigns::delivered(&ctx.db, campaign, recipient)
        .await
        .map_err(retry)?
    {
        return Ok(false);
    }
    let signer = super::exports::signer(ctx)?;
    let interval = super::parse_rate(c.rate.as_deref().unwrap_or(DEFAULT_RATE))
        .or_else(|| super::parse_rate(DEFAULT_RATE))
        .unwrap_or_default();
    wait_for_slot(ctx, c.tenant_id, interval).await?;
    let now = ctx.clock.now();
    let link = signer.link(
        &ctx.rt.settings.app_url,
        &format!("unsubscribe/{campaign}/{recipient}"),
        now + UNSUBSCRIBE_TTL,
    );
    let mail = Mail {
        key: format!("campaign-{campaign}-{recipient}"),
        to: who.email.clone(),
        subject: c.subject.clone(),
        body: body(&c.body, &who.name, &who.email, &link),
    };
    super::send_mail(ctx, &mail).await?;
    campaigns::record_delivery(&ctx.db, campaign, recipient, ctx.clock.now())
        .await
        .map_err(retry)?;
    Ok(true)
}

/// Takes the tenant's next send slot and sleeps until it.
async fn wait_for_slot(
    ctx: &JobContext,
    tenant: i64,
    interval: std::time::Duration,
) -> Result<(), JobError> {
    let now = ctx.clock.now();
    let slot = campaigns::take_slot(
        &ctx.db,
        &format!("campaign-mail:tenant:{tenant}"),
        interval.as_micros() as i64,
        now.timestamp_micros(),
    )
    .await
    .map_err(retry)?;
    if let Some(at) = DateTime::<Utc>::from_timestamp_micros(slot)
        && at > now
    {
        ctx.clock.sleep_until(at).await;
    }
    Ok(())
}

/// Registers `campaigns:send`, `SendCampaignEmail` and `FinishCampaign`.
pub fn register(r: &mut Registry) {
    r.register("campaigns:send", |ctx: JobContext, a: Args| async move {
        let rate = a.rate.as_deref().unwrap_or(DEFAULT_RATE);
        let report = send(&ctx, a.campaign, rate, a.chunk.unwrap_or(500))
            .await
            .map_err(|e| match e {
                SendError::Refused(m) => JobError::Fail(m),
                SendError::Queue(e) => JobError::Retry(e.to_string()),
            })?;
        tracing::info!(
            campaign = a.campaign,
            batch = %report.batch_id,
            enqueued = report.enqueued,
            duplicates = report.duplicates,
            "campaign fanned out"
        );
        Ok(())
    });
    r.register("SendCampaignEmail", |ctx: JobContext, a: One| async move {
        send_one(&ctx, a.campaign, a.recipient).await.map(|_| ())
    });
    r.register("FinishCampaign", |ctx: JobContext, a: Finish| async move {
        let c = campaigns::find(&ctx.db, a.campaign)
            .await
            .map_err(retry)?
            .ok_or_else(|| JobError::Fail(format!("campaign {} does not exist", a.campaign)))?;
        let failed = match &c.batch_id {
            Some(b) => batches::find(&ctx.db, b)
                .await
                .map_err(retry)?
                .map_or(0, |b| b.failed_jobs),
            None => 0,
        };
        campaigns::finish(&ctx.db, c.id, failed, ctx.clock.now())
            .await
            .map_err(retry)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_fills_the_template_and_always_carries_the_link() {
        assert_eq!(
            body("Hi {{name}}! Bye: {{unsubscribe_url}}", "Ana", "a@x", "L"),
            "Hi Ana! Bye: L"
        );
        assert!(
            body("Hi {{name}}", "Ana", "a@x", "https://u/1")
                .ends_with("Unsubscribe: https://u/1\n")
        );
    }

    #[test]
    fn rates_parse_to_intervals() {
        use std::time::Duration;
        assert_eq!(
            super::super::parse_rate("50/s"),
            Some(Duration::from_millis(20))
        );
        assert_eq!(
            super::super::parse_rate("60/m"),
            Some(Duration::from_secs(1))
        );
        assert_eq!(super::super::parse_rate("0/s"), None);
        assert_eq!(super::super::parse_rate("20000/s"), None);
        assert_eq!(super::super::parse_rate("18446744073709551615/s"), None);
        assert_eq!(super::super::parse_rate("5 per second"), None);
    }
}
