//! Appointments: those due a reminder, and marking one reminded together with the outbox row
//! that gets its email sent. The `reminder_sent_at IS NULL` guard makes the mark happen once
//! however many runs race for it.

use super::outbox::{self, NewMessage};
use super::{Db, Result, Row};
use chrono::{DateTime, Utc};
use serde_json::json;

/// An appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appointment {
    /// Its id.
    pub id: i64,
    /// Its tenant.
    pub tenant_id: i64,
    /// The customer's name.
    pub customer_name: String,
    /// Where the reminder goes.
    pub customer_email: String,
    /// When it starts.
    pub starts_at: DateTime<Utc>,
    /// When its reminder was queued.
    pub reminder_sent_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, tenant_id, customer_name, customer_email, starts_at, reminder_sent_at";

fn decode(r: &Row) -> Result<Appointment> {
    Ok(Appointment {
        id: r.try_get(0)?,
        tenant_id: r.try_get(1)?,
        customer_name: r.try_get(2)?,
        customer_email: r.try_get(3)?,
        starts_at: DateTime::from_timestamp(r.try_get(4)?, 0).unwrap_or_default(),
        reminder_sent_at: r
            .try_get::<Option<i64>>(5)?
            .and_then(|t| DateTime::from_timestamp(t, 0)),
    })
}

/// Up to `limit` unreminded appointments starting in `[from, to)` with ids above `after`,
/// in id order, of one tenant if given.
pub async fn unreminded(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tenant: Option<i64>,
    after: i64,
    limit: i64,
) -> Result<Vec<Appointment>> {
    let scope = if tenant.is_some() {
        " AND tenant_id = ?"
    } else {
        ""
    };
    let mut query = db
        .query(format!(
            "SELECT {COLUMNS} FROM appointments WHERE reminder_sent_at IS NULL \
             AND starts_at >= ? AND starts_at < ? AND id > ?{scope} ORDER BY id LIMIT ?"
        ))
        .bind(from.timestamp())
        .bind(to.timestamp())
        .bind(after);
    if let Some(t) = tenant {
        query = query.bind(t);
    }
    query.bind(limit).fetch_as(db, decode).await
}

/// Marks `a` reminded at `now` and writes its `AppointmentReminderDue` outbox row, in one
/// transaction. False when it was already reminded: nothing changed.
pub async fn mark_reminded(db: &Db, a: &Appointment, now: DateTime<Utc>) -> Result<bool> {
    let mut tx = db.begin().await?;
    let n = tx
        .query("UPDATE appointments SET reminder_sent_at = ? WHERE id = ? AND reminder_sent_at IS NULL")
        .bind(now.timestamp())
        .bind(a.id)
        .execute(&mut tx)
        .await?;
    if n == 0 {
        // Already reminded: the transaction rolls back as it drops, having changed nothing.
        return Ok(false);
    }
    let event = NewMessage {
        aggregate_type: "appointment",
        aggregate_id: a.id.to_string(),
        event_type: "AppointmentReminderDue",
        payload: json!({
            "appointment_id": a.id,
            "tenant_id": a.tenant_id,
            "customer_name": a.customer_name,
            "customer_email": a.customer_email,
            "starts_at": crate::rfc3339::utc(a.starts_at),
        }),
    };
    outbox::insert_tx(&mut tx, &event, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// One appointment.
pub async fn find(db: &Db, id: i64) -> Result<Option<Appointment>> {
    db.query(format!("SELECT {COLUMNS} FROM appointments WHERE id = ?"))
        .bind(id)
        .fetch_optional_as(db, decode)
        .await
}
