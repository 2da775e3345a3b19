//! Campaigns, their opted-in recipients, the deliveries that keep each recipient to one
//! message, and the send-rate slots every worker shares.
//!
//! A recipient is a customer of the campaign's tenant with `marketing_consent = 1` and no
//! `unsubscribed_at`. A delivery row is written once per (campaign, customer) after the mail
//! left; a retried or re-enqueued job finds it and sends nothing.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Db, Result, Row, Tx};

/// A campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Campaign {
    /// Its id.
    pub id: i64,
    /// Its tenant.
    pub tenant_id: i64,
    /// The subject line.
    pub subject: String,
    /// The body template: `{{name}}` and `{{unsubscribe_url}}` are filled in per recipient.
    pub body: String,
    /// `draft`, `sending` or `sent`.
    pub status: String,
    /// The send rate, e.g. `50/s`, once sending.
    pub rate: Option<String>,
    /// The batch of its mail jobs, once sending.
    pub batch_id: Option<String>,
    /// Recipients counted when sending began.
    pub recipients: i64,
    /// Messages sent.
    pub sent_count: i64,
    /// Messages that failed for good.
    pub failed_count: i64,
}

const COLUMNS: &str =
    "id, tenant_id, subject, body, status, rate, batch_id, recipients, sent_count, failed_count";

fn decode(r: &Row) -> Result<Campaign> {
    Ok(Campaign {
        id: r.try_get(0)?,
        tenant_id: r.try_get(1)?,
        subject: r.try_get(2)?,
        body: r.try_get(3)?,
        status: r.try_get(4)?,
        rate: r.try_get(5)?,
        batch_id: r.try_get(6)?,
        recipients: r.try_get(7)?,
        sent_count: r.try_get(8)?,
        failed_count: r.try_get(9)?,
    })
}

/// Campaign `id`.
pub async fn find(db: &Db, id: i64) -> Result<Option<Campaign>> {
    db.query(format!("SELECT {COLUMNS} FROM campaigns WHERE id = ?"))
        .bind(id)
        .fetch_optional_as(db, decode)
        .await
}

/// Every campaign, newest first, at most `limit`.
pub async fn list(db: &Db, limit: i64) -> Result<Vec<Campaign>> {
    db.query(format!(
        "SELECT {COLUMNS} FROM campaigns ORDER BY id DESC LIMIT ?"
    ))
    .bind(limit)
    .fetch_as(db, decode)
    .await
}

/// Creates a draft campaign; returns its id.
pub async fn create(
    db: &Db,
    tenant: i64,
    subject: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let mut tx = db.begin().await?;
    let id: i64 = tx
        .query("SELECT COALESCE(MAX(id), 0) + 1 FROM campaigns")
        .scalar(&mut tx)
        .await?;
    tx.query(
        "INSERT INTO campaigns (id, tenant_id, subject, body, status, created_at) VALUES (?, ?, ?, ?, 'draft', ?)",
    )
    .bind(id)
    .bind(tenant)
    .bind(subject)
    .bind(body)
    .bind(now.timestamp())
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    super::demo::sync_sequence(db, "campaigns").await?;
    Ok(id)
}

/// A customer a campaign may write to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recipient {
    /// The customer.
    pub id: i64,
    /// Their tenant.
    pub tenant_id: i64,
    /// Their name.
    pub name: String,
    /// Their address.
    pub email: String,
    /// Whether they may be written to now (consent and not unsubscribed).
    pub opted_in: bool,
}

const OPTED_IN: &str = "marketing_consent = 1 AND unsubscribed_at IS NULL";

/// Up to `limit` opted-in customers of `tenant` above id `after`, in id order.
pub async fn recipients_after(db: &Db, tenant: i64, after: i64, limit: i64) -> Result<Vec<i64>> {
    db.query(format!(
        "SELECT id FROM customers WHERE tenant_id = ? AND id > ? AND {OPTED_IN} ORDER BY id LIMIT ?"
    ))
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .scalars(db)
    .await
}

/// How many of `tenant`'s customers are opted in.
pub async fn count_recipients(db: &Db, tenant: i64) -> Result<i64> {
    db.query(format!(
        "SELECT COUNT(*) FROM customers WHERE tenant_id = ? AND {OPTED_IN}"
    ))
    .bind(tenant)
    .scalar(db)
    .await
}

/// Customer `id`.
pub async fn customer(db: &Db, id: i64) -> Result<Option<Recipient>> {
    db.query(
        "SELECT id, tenant_id, name, email, marketing_consent, unsubscribed_at FROM customers WHERE id = ?",
    )
    .bind(id)
    .fetch_optional_as(db, |r: &Row| {
        Ok(Recipient {
            id: r.try_get(0)?,
            tenant_id: r.try_get(1)?,
            name: r.try_get(2)?,
            email: r.try_get(3)?,
            opted_in: r.try_get::<i64>(4)? == 1 && r.try_get::<Option<i64>>(5)?.is_none(),
        })
    })
    .await
}

/// Opts customer `id` out of campaign mail; false when they were already out (or unknown).
pub async fn unsubscribe(db: &Db, id: i64, now: DateTime<Utc>) -> Result<bool> {
    let n = db
        .query("UPDATE customers SET unsubscribed_at = ? WHERE id = ? AND unsubscribed_at IS NULL")
        .bind(now.timestamp())
        .bind(id)
        .execute(db)
        .await?;
    Ok(n == 1)
}

/// Marks campaign `id` as sending in `batch` to `recipients` at `rate`.
pub async fn start_sending(
    db: &Db,
    id: i64,
    batch: &str,
    recipients: i64,
    rate: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    db.query(
        "UPDATE campaigns SET status = 'sending', batch_id = ?, recipients = ?, rate = ?, \
         started_at = ?, finished_at = NULL WHERE id = ?",
    )
    .bind(batch)
    .bind(recipients)
    .bind(rate)
    .bind(now.timestamp())
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// Whether campaign `campaign` already went to customer `customer`.
pub async fn delivered(db: &Db, campaign: i64, customer: i64) -> Result<bool> {
    let n: i64 = db
        .query("SELECT COUNT(*) FROM campaign_deliveries WHERE campaign_id = ? AND customer_id = ?")
        .bind(campaign)
        .bind(customer)
        .scalar(db)
        .await?;
    Ok(n > 0)
}

/// Records that campaign `campaign` went to `customer` and counts it, once; false when it
/// was recorded before.
pub async fn record_delivery(
    db: &Db,
    campaign: i64,
    customer: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = db.begin().await?;
    let insert = db.backend().insert_ignore(
        "campaign_deliveries (campaign_id, customer_id, sent_at) VALUES (?, ?, ?)",
        "campaign_id, customer_id",
    );
    let n = tx
        .query(insert)
        .bind(campaign)
        .bind(customer)
        .bind(now.timestamp())
        .execute(&mut tx)
        .await?;
    if n == 1 {
        tx.query("UPDATE campaigns SET sent_count = sent_count + 1 WHERE id = ?")
            .bind(campaign)
            .execute(&mut tx)
            .await?;
    }
    tx.commit().await?;
    Ok(n == 1)
}

/// Marks campaign `id` sent, with `failed` messages that failed for good; the sent count is
/// re-read from the deliveries.
pub async fn finish(db: &Db, id: i64, failed: i64, now: DateTime<Utc>) -> Result<()> {
    db.query(
        "UPDATE campaigns SET status = 'sent', failed_count = ?, finished_at = ?, \
         sent_count = (SELECT COUNT(*) FROM campaign_deliveries WHERE campaign_id = ?) WHERE id = ?",
    )
    .bind(failed)
    .bind(now.timestamp())
    .bind(id)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// Takes the next send slot of rate `name`, `interval_us` after the last one taken and not
/// before `now_us`; returns the slot's instant (µs). Every worker of every host takes slots
/// from the same row, so together they keep the rate.
pub async fn take_slot(db: &Db, name: &str, interval_us: i64, now_us: i64) -> Result<i64> {
    let mut tx = db.begin().await?;
    // The row exists after the first send of a rate; only then is it created.
    if bump_slot(&mut tx, name, interval_us, now_us).await? == 0 {
        let insert = db
            .backend()
            .insert_ignore("rate_limits (name, next_at_us) VALUES (?, 0)", "name");
        tx.query(insert).bind(name).execute(&mut tx).await?;
        bump_slot(&mut tx, name, interval_us, now_us).await?;
    }
    let next: i64 = tx
        .query("SELECT next_at_us FROM rate_limits WHERE name = ?")
        .bind(name)
        .scalar(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(next - interval_us)
}

/// Moves rate `name`'s next free instant one interval past the later of itself and `now_us`;
/// returns the rows changed (0 when the rate has no row yet).
async fn bump_slot(tx: &mut Tx, name: &str, interval_us: i64, now_us: i64) -> Result<u64> {
    tx.query(
        "UPDATE rate_limits SET next_at_us = CASE WHEN next_at_us < ? THEN ? ELSE next_at_us END + ? \
         WHERE name = ?",
    )
    .bind(now_us)
    .bind(now_us)
    .bind(interval_us)
    .bind(name)
    .execute(tx)
    .await
}
