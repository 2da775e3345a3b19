//! Appointments: those due a reminder, and marking one reminded together with the outbox row
//! that gets its email sent. The `reminder_sent_at IS NULL` guard makes the mark happen once
//! however many runs race for it.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;

use super::outbox::{self, NewMessage};
use super::{Db, Result};
use crate::{on_pool, on_tx};

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

fn decode<R: Row>(r: &R) -> std::result::Result<Appointment, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Appointment {
        id: r.try_get(0)?,
        tenant_id: r.try_get(1)?,
        customer_name: r.try_get(2)?,
        customer_email: r.try_get(3)?,
        starts_at: DateTime::from_timestamp(r.try_get(4)?, 0).unwrap_or_default(),
        reminder_sent_at: r
            .try_get::<Option<i64>, _>(5)?
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
    let q = db
        .sql(&format!(
            "SELECT {COLUMNS} FROM appointments WHERE reminder_sent_at IS NULL \
             AND starts_at >= ? AND starts_at < ? AND id > ?{scope} ORDER BY id LIMIT ?"
        ))
        .into_owned();
    let rows = on_pool!(db, p => {
        let mut query = sqlx::query(&q)
            .bind(from.timestamp())
            .bind(to.timestamp())
            .bind(after);
        if let Some(t) = tenant {
            query = query.bind(t);
        }
        let rows = query.bind(limit).fetch_all(p).await?;
        rows.iter().map(decode).collect::<std::result::Result<Vec<_>, _>>()?
    });
    Ok(rows)
}

/// Marks `a` reminded at `now` and writes its `AppointmentReminderDue` outbox row, in one
/// transaction. False when it was already reminded: nothing changed.
pub async fn mark_reminded(db: &Db, a: &Appointment, now: DateTime<Utc>) -> Result<bool> {
    let mut tx = db.begin().await?;
    let q = tx
        .sql("UPDATE appointments SET reminder_sent_at = ? WHERE id = ? AND reminder_sent_at IS NULL")
        .into_owned();
    let n = on_tx!(&mut tx, t => sqlx::query(&q)
        .bind(now.timestamp())
        .bind(a.id)
        .execute(&mut **t)
        .await?
        .rows_affected());
    if n == 0 {
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
    let q = db
        .sql(&format!("SELECT {COLUMNS} FROM appointments WHERE id = ?"))
        .into_owned();
    let a = on_pool!(db, p => match sqlx::query(&q).bind(id).fetch_optional(p).await? {
        Some(r) => Some(decode(&r)?),
        None => None,
    });
    Ok(a)
}
