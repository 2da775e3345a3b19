//! `GenerateSalesExport {tenant, from, to, format}`: a tenant's orders with their items, placed
//! between two local dates in the tenant's zone, as CSV (the `csv` crate) or Excel
//! (`rust_xlsxwriter` in constant-memory mode), streamed row by row so memory stays flat
//! whatever the row count. The file is written under a temporary name and renamed when
//! complete; then an `ExportReady` outbox event carries a signed link (24 h) and
//! `SendDownloadLink` mails it to the tenant.
//!
//! Also the delivery both the export and the PDF report share ([`deliver`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::json;

use super::{retry, send_mail};
use crate::mail::Mail;
use crate::queue::{JobContext, JobError, Registry};
use crate::signed_url::Signer;
use crate::store::outbox::{self, NewMessage};
use crate::store::sales::{self, Line};
use crate::store::tenants::{self, Profile};
use crate::store::{self as db, StoreError};

/// How long a delivered link works.
pub const LINK_TTL: TimeDelta = TimeDelta::hours(24);

/// Rows in one Excel worksheet besides its header; more go on the next sheet.
pub const XLSX_ROWS_PER_SHEET: u32 = 1_048_575;

/// `GenerateSalesExport` arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The tenant.
    pub tenant: i64,
    /// The first local date (default: the first of this month in the tenant's zone).
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// The last local date, included (default: today in the tenant's zone).
    #[serde(default)]
    pub to: Option<NaiveDate>,
    /// `csv` (default) or `xlsx`.
    #[serde(default)]
    pub format: Option<String>,
}

/// The export's file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values, UTF-8.
    Csv,
    /// An Excel workbook.
    Xlsx,
}

impl Format {
    /// Its file extension, also its name in `format`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
}

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the orders failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The CSV writer failed.
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    /// The Excel writer failed.
    #[error("Excel: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
}

impl ExportError {
    /// A database error is retried; a file that cannot be written is retried too (a full
    /// disk may be freed), with the path in the message.
    pub fn into_job(self) -> JobError {
        JobError::Retry(self.to_string())
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The file, relative to the exports folder (`{tenant}/sales-….csv`).
    pub file: String,
    /// Its full path.
    pub path: PathBuf,
    /// Data rows (order lines) written.
    pub rows: u64,
}

/// The column headers.
pub const HEADER: [&str; 10] = [
    "order_id",
    "placed_at",
    "status",
    "customer_email",
    "order_total",
    "product_id",
    "product",
    "quantity",
    "unit_price",
    "line_total",
];

/// Cents as a decimal amount, `1234` → `12.34`.
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

/// The tenant `id`, or a failure saying it does not exist.
pub async fn tenant(ctx: &JobContext, id: i64) -> Result<(Profile, Tz), JobError> {
    let t = tenants::profile(&ctx.db, id)
        .await
        .map_err(retry)?
        .ok_or_else(|| JobError::Fail(format!("tenant {id} does not exist")))?;
    let zone = super::tenant_zone(id, &t.timezone)?;
    Ok((t, zone))
}

/// The signer, or a failure saying which key to set: checked before any work is done.
pub fn signer(ctx: &JobContext) -> Result<Signer, JobError> {
    ctx.rt.settings.signer.clone().ok_or_else(|| {
        JobError::Fail(
            "APP_KEY is not set: the download link cannot be signed (set APP_KEY, e.g. from `php artisan key:generate --show`)"
                .into(),
        )
    })
}

/// Writes the export of `tenant`'s orders placed in local dates `[from, to]` (in `zone`) to
/// `dir/{tenant}/`, under a temporary name renamed when complete.
pub async fn write(
    db: &db::Db,
    dir: &Path,
    tenant: i64,
    zone: Tz,
    (from, to): (NaiveDate, NaiveDate),
    format: Format,
) -> Result<Written, ExportError> {
    let start = super::analytics::day_bounds(from, zone).0;
    let end = super::analytics::day_bounds(to, zone).1;
    let name = format!("sales-{from}-{to}.{}", format.extension());
    let (path, rows) = write_whole(&dir.join(tenant.to_string()), &name, |tmp| async move {
        match format {
            Format::Csv => write_csv(db, &tmp, tenant, zone, start, end).await,
            Format::Xlsx => write_xlsx(db, &tmp, tenant, zone, start, end).await,
        }
    })
    .await?;
    Ok(Written {
        file: format!("{tenant}/{name}"),
        path,
        rows,
    })
}

/// Writes file `name` in `folder` (made if missing) through `write`, which is handed a
/// temporary path beside it: the file appears under its name only once complete, and a
/// failure leaves nothing behind. Returns the file's path and what `write` returned.
pub async fn write_whole<T, F, Fut>(
    folder: &Path,
    name: &str,
    write: F,
) -> Result<(PathBuf, T), ExportError>
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: std::future::Future<Output = Result<T, ExportError>>,
{
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ExportError::Io { path, source }
    };
    std::fs::create_dir_all(folder).map_err(io(folder))?;
    let path = folder.join(name);
    let tmp = folder.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = match write(tmp.clone()).await {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok((path, written))
}

fn placed_at(line: &Line, zone: Tz) -> String {
    DateTime::from_timestamp(line.created_at, 0)
        .unwrap_or_default()
        .with_timezone(&zone)
        .to_rfc3339()
}

async fn write_csv(
    db: &db::Db,
    tmp: &Path,
    tenant: i64,
    zone: Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<u64, ExportError> {
    let file = std::fs::File::create(tmp).map_err(|source| ExportError::Io {
        path: tmp.display().to_string(),
        source,
    })?;
    let mut out = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 16, file));
    out.write_record(HEADER)?;
    let mut rows = 0u64;
    sales::for_each_line(db, tenant, start, end, |l: Line| {
        rows += 1;
        let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        out.write_record([
            l.order_id.to_string(),
            placed_at(&l, zone),
            l.status.clone(),
            l.customer_email.clone(),
            money(l.total_cents),
            opt(l.product_id),
            l.product_name.clone().unwrap_or_default(),
            opt(l.quantity),
            l.price_cents.map(money).unwrap_or_default(),
            line_total(&l).map(money).unwrap_or_default(),
        ])?;
        Ok::<_, ExportError>(())
    })
    .await?;
    let mut inner = out.into_inner().map_err(|e| ExportError::Io {
        path: tmp.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    })?;
    inner
        .flush()
        .and_then(|_| inner.get_ref().sync_all())
        .map_err(|source| ExportError::Io {
            path: tmp.display().to_string(),
            source,
        })?;
    Ok(rows)
}

fn line_total(l: &Line) -> Option<i64> {
    Some(l.quantity?.saturating_mul(l.price_cents?))
}

async fn write_xlsx(
    db: &db::Db,
    tmp: &Path,
    tenant: i64,
    zone: Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<u64, ExportError> {
    use rust_xlsxwriter::{Format as Cell, Workbook};
    let mut book = Workbook::new();
    let bold = Cell::new().set_bold();
    let amount = Cell::new().set_num_format("#,##0.00");
    let new_sheet = |book: &mut Workbook, n: usize| -> Result<(), ExportError> {
        let sheet = book.add_worksheet_with_constant_memory()?;
        sheet.set_name(if n == 0 {
            "Sales".to_string()
        } else {
            format!("Sales {}", n + 1)
        })?;
        for (c, h) in HEADER.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, *h, &bold)?;
        }
        sheet.set_column_width(1, 26)?;
        sheet.set_column_width(3, 28)?;
        sheet.set_column_width(6, 24)?;
        Ok(())
    };
    new_sheet(&mut book, 0)?;
    let (mut sheet_no, mut row) = (0usize, 0u32);
    let mut rows = 0u64;
    sales::for_each_line(db, tenant, start, end, |l: Line| {
        if row == XLSX_ROWS_PER_SHEET {
            sheet_no += 1;
            row = 0;
            new_sheet(&mut book, sheet_no)?;
        }
        row += 1;
        rows += 1;
        let s = book.worksheet_from_index(sheet_no)?;
        s.write_number(row, 0, l.order_id as f64)?;
        s.write_string(row, 1, placed_at(&l, zone))?;
        s.write_string(row, 2, &l.status)?;
        s.write_string(row, 3, &l.customer_email)?;
        s.write_number_with_format(row, 4, l.total_cents as f64 / 100.0, &amount)?;
        if let Some(p) = l.product_id {
            s.write_number(row, 5, p as f64)?;
        }
        if let Some(n) = &l.product_name {
            s.write_string(row, 6, n)?;
        }
        if let Some(q) = l.quantity {
            s.write_number(row, 7, q as f64)?;
        }
        if let Some(p) = l.price_cents {
            s.write_number_with_format(row, 8, p as f64 / 100.0, &amount)?;
        }
        if let Some(t) = line_total(&l) {
            s.write_number_with_format(row, 9, t as f64 / 100.0, &amount)?;
        }
        Ok::<_, ExportError>(())
    })
    .await?;
    book.save(tmp)?;
    Ok(rows)
}

/// Hands finished file `file` (relative to the exports folder) to the tenant: one outbox
/// event (`event_type`, e.g. `ExportReady`) with a link signed for [`LINK_TTL`], which
/// `SendDownloadLink` mails. `kind` says what it is, in words.
pub async fn deliver(
    ctx: &JobContext,
    signer: &Signer,
    tenant: &Profile,
    file: &str,
    event_type: &'static str,
    kind: &str,
) -> Result<String, JobError> {
    let now = ctx.clock.now();
    let expires = now + LINK_TTL;
    let url = signer.url(&ctx.rt.settings.app_url, file, expires);
    let message = NewMessage {
        aggregate_type: "tenant",
        aggregate_id: tenant.id.to_string(),
        event_type,
        payload: json!({
            "tenant_id": tenant.id,
            "email": tenant.email,
            "kind": kind,
            "file": file,
            "url": url,
            "expires_at": crate::rfc3339::utc(expires),
            "job": ctx.uuid,
        }),
    };
    db::retrying(|| async {
        let mut tx = ctx.db.begin().await?;
        outbox::insert_tx(&mut tx, &message, now).await?;
        tx.commit().await
    })
    .await
    .map_err(retry)?;
    Ok(url)
}

/// `SendDownloadLink` payload (an `ExportReady` or `ReportReady` event).
#[derive(Debug, Clone, Deserialize)]
pub struct Ready {
    /// The outbox message.
    pub outbox_id: i64,
    /// The tenant.
    pub tenant_id: i64,
    /// Where to send it.
    pub email: String,
    /// What it is, e.g. `sales export (CSV)`.
    pub kind: String,
    /// The file, relative to the exports folder.
    pub file: String,
    /// The signed link.
    pub url: String,
    /// When the link stops working (RFC 3339).
    pub expires_at: String,
    /// The job that made the file: the mail's key, so a retried job mails once.
    pub job: String,
}

/// The date range of an export: the arguments, or this month so far in `zone`.
pub fn range(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    now: DateTime<Utc>,
    zone: Tz,
) -> Result<(NaiveDate, NaiveDate), JobError> {
    let today = now.with_timezone(&zone).date_naive();
    let to = to.unwrap_or(today);
    let from = from.unwrap_or_else(|| to.with_day(1).unwrap_or(to));
    if from > to {
        return Err(JobError::Fail(format!(
            "the export's `from` ({from}) is after its `to` ({to})"
        )));
    }
    Ok((from, to))
}

/// Registers `GenerateSalesExport` and `SendDownloadLink`.
pub fn register(r: &mut Registry) {
    r.register("GenerateSalesExport", |ctx: JobContext, a: Args| async move {
        let format = match a.format.as_deref().unwrap_or("csv") {
            "csv" => Format::Csv,
            "xlsx" => Format::Xlsx,
            other => {
                return Err(JobError::Fail(format!(
                    "unknown export format {other:?}: use \"csv\" or \"xlsx\""
                )));
            }
        };
        let signer = signer(&ctx)?;
        let (tenant, zone) = tenant(&ctx, a.tenant).await?;
        let dates = range(a.from, a.to, ctx.clock.now(), zone)?;
        let dir = ctx.rt.settings.exports_dir();
        let w = write(&ctx.db, &dir, tenant.id, zone, dates, format)
            .await
            .map_err(ExportError::into_job)?;
        let kind = format!(
            "sales export {} to {} ({}, {} rows)",
            dates.0,
            dates.1,
            format.extension().to_uppercase(),
            w.rows
        );
        deliver(&ctx, &signer, &tenant, &w.file, "ExportReady", &kind).await?;
        tracing::info!(tenant = tenant.id, file = %w.file, rows = w.rows, "sales export written");
        Ok(())
    });
    r.register("SendDownloadLink", |ctx: JobContext, m: Ready| async move {
        let mail = Mail {
            key: format!("download-{}", m.job),
            to: m.email.clone(),
            subject: format!("Your {} is ready", m.kind.split(" (").next().unwrap_or("file")),
            body: format!(
                "Hello,\n\nyour {} is ready: {}\n\nThe link works until {} (UTC). File: {}\n(outbox message {}, tenant {})\n",
                m.kind, m.url, m.expires_at, m.file, m.outbox_id, m.tenant_id
            ),
        };
        send_mail(&ctx, &mail).await
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_has_two_decimals() {
        assert_eq!(money(0), "0.00");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(123456), "1234.56");
        assert_eq!(money(-250), "-2.50");
    }

    #[test]
    fn the_default_range_is_this_month_in_the_tenants_zone() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 03:00Z on Dec 1 is still Nov 30 in New York.
        let now: DateTime<Utc> = "2026-12-01T03:00:00Z".parse().unwrap();
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            range(None, None, now, ny).unwrap(),
            (d("2026-11-01"), d("2026-11-30"))
        );
        assert!(range(Some(d("2026-11-05")), Some(d("2026-11-01")), now, ny).is_err());
    }
}
