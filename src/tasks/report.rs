//! `GeneratePdfReportJob {tenant, month}`: a PDF of one tenant's month: a header, the totals
//! (orders and paid revenue from the orders; visitors and interactions by kind from
//! `tenant_daily_analytics`) and a table of the days. Written with `pdf-writer` (the Typst
//! project's PDF writer: maintained, no native dependencies, and PDF's built-in Helvetica
//! needs no font file), under a temporary name renamed when complete, and delivered like the
//! sales export: a `ReportReady` outbox event with a signed link that `SendDownloadLink` mails.

use chrono::{Datelike, NaiveDate};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use serde::Deserialize;

use super::exports::{self, ExportError, money};
use crate::queue::{JobContext, JobError, Registry};
use crate::store::sales::{self, Month};

/// `GeneratePdfReportJob` arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The tenant.
    pub tenant: i64,
    /// `YYYY-MM` (default: last month in the tenant's zone).
    #[serde(default)]
    pub month: Option<String>,
}

/// What the report shows.
#[derive(Debug, Clone)]
pub struct Report {
    /// The tenant's name.
    pub tenant: String,
    /// Its zone.
    pub zone: String,
    /// The month's first day.
    pub first: NaiveDate,
    /// The figures.
    pub month: Month,
}

const PAGE: (f32, f32) = (595.0, 842.0);
const MARGIN: f32 = 56.0;
const LINE: f32 = 15.0;

/// Text as PDF's WinAnsi bytes: Latin-1 as is, anything else as `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| if (c as u32) < 256 { c as u8 } else { b'?' })
        .collect()
}

/// Lays lines of text out on A4 pages, top to bottom, starting a page when one is full.
struct Pages {
    pages: Vec<Content>,
    y: f32,
}

impl Pages {
    fn new() -> Self {
        let mut p = Self {
            pages: Vec::new(),
            y: 0.0,
        };
        p.page();
        p
    }

    fn page(&mut self) {
        self.pages.push(Content::new());
        self.y = PAGE.1 - MARGIN;
    }

    /// One line with cells at x offsets; `bold` picks Helvetica-Bold.
    fn line(&mut self, cells: &[(f32, &str)], size: f32, bold: bool) {
        if self.y < MARGIN + size {
            self.page();
        }
        let font = if bold { Name(b"F2") } else { Name(b"F1") };
        let content = self.pages.last_mut().expect("a page");
        for (x, text) in cells {
            content
                .begin_text()
                .set_font(font, size)
                .next_line(MARGIN + x, self.y)
                .show(Str(&win_ansi(text)))
                .end_text();
        }
        self.y -= size.max(LINE - 3.0) + 3.0;
    }

    fn gap(&mut self) {
        self.y -= LINE / 2.0;
    }

    fn rule(&mut self) {
        let content = self.pages.last_mut().expect("a page");
        content
            .move_to(MARGIN, self.y + LINE - 3.0)
            .line_to(PAGE.0 - MARGIN, self.y + LINE - 3.0)
            .stroke();
    }

    fn finish(self) -> Vec<u8> {
        let mut pdf = Pdf::new();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let (regular, bold) = (Ref::new(3), Ref::new(4));
        let ids: Vec<(Ref, Ref)> = (0..self.pages.len() as i32)
            .map(|i| (Ref::new(5 + 2 * i), Ref::new(6 + 2 * i)))
            .collect();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree)
            .kids(ids.iter().map(|(page, _)| *page))
            .count(ids.len() as i32);
        for (content, (page_id, content_id)) in self.pages.into_iter().zip(&ids) {
            let mut page = pdf.page(*page_id);
            page.media_box(Rect::new(0.0, 0.0, PAGE.0, PAGE.1));
            page.parent(tree);
            page.contents(*content_id);
            let mut resources = page.resources();
            let mut fonts = resources.fonts();
            fonts.pair(Name(b"F1"), regular);
            fonts.pair(Name(b"F2"), bold);
            fonts.finish();
            resources.finish();
            page.finish();
            pdf.stream(*content_id, &content.finish());
        }
        for (id, name) in [(regular, &b"Helvetica"[..]), (bold, b"Helvetica-Bold")] {
            pdf.type1_font(id)
                .base_font(Name(name))
                .encoding_predefined(Name(b"WinAnsiEncoding"));
        }
        pdf.finish()
    }
}

/// The report as PDF bytes.
pub fn render(r: &Report) -> Vec<u8> {
    let mut p = Pages::new();
    let m = &r.month;
    p.line(
        &[(0.0, &format!("Monthly report: {}", r.tenant))],
        18.0,
        true,
    );
    p.line(
        &[(
            0.0,
            &format!(
                "{} {} (times in {})",
                month_name(r.first),
                r.first.year(),
                r.zone
            ),
        )],
        11.0,
        false,
    );
    p.gap();
    p.line(&[(0.0, "Totals")], 13.0, true);
    let interactions: i64 = m.interactions_by_kind.values().sum();
    let totals = [
        ("Orders", m.orders.to_string()),
        ("Paid revenue", money(m.paid_revenue_cents)),
        ("Visitors", m.visitors.to_string()),
        ("Interactions", interactions.to_string()),
    ];
    for (label, value) in &totals {
        p.line(&[(0.0, label), (160.0, value)], 11.0, false);
    }
    for (kind, n) in &m.interactions_by_kind {
        p.line(
            &[(16.0, kind.as_str()), (160.0, &n.to_string())],
            10.0,
            false,
        );
    }
    p.gap();
    p.line(&[(0.0, "By day")], 13.0, true);
    let columns = [0.0, 110.0, 190.0, 290.0, 370.0];
    let header = ["Date", "Visitors", "Interactions", "Orders", "Revenue"];
    p.line(
        &columns
            .iter()
            .copied()
            .zip(header.iter().copied())
            .collect::<Vec<_>>(),
        10.0,
        true,
    );
    p.rule();
    if m.days.is_empty() {
        p.line(
            &[(
                0.0,
                "No analytics rows for this month yet (analytics:sync writes them daily).",
            )],
            10.0,
            false,
        );
    }
    for d in &m.days {
        let cells = [
            d.date.clone(),
            d.visitors.to_string(),
            d.interactions.to_string(),
            d.orders.to_string(),
            money(d.revenue_cents),
        ];
        let row: Vec<(f32, &str)> = columns
            .iter()
            .copied()
            .zip(cells.iter().map(String::as_str))
            .collect();
        p.line(&row, 10.0, false);
    }
    p.finish()
}

fn month_name(d: NaiveDate) -> &'static str {
    [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ][d.month0() as usize]
}

/// Registers `GeneratePdfReportJob`.
pub fn register(r: &mut Registry) {
    r.register("GeneratePdfReportJob", |ctx: JobContext, a: Args| async move {
        let signer = exports::signer(&ctx)?;
        let (tenant, zone) = exports::tenant(&ctx, a.tenant).await?;
        let first = match &a.month {
            Some(text) => super::parse_month(text).ok_or_else(|| {
                JobError::Fail(format!(
                    "month {text:?} is not a month like \"2026-11\""
                ))
            })?,
            None => {
                let this = ctx.clock.now().with_timezone(&zone).date_naive();
                let this = this.with_day(1).unwrap_or(this);
                this.pred_opt().and_then(|d| d.with_day(1)).unwrap_or(this)
            }
        };
        let next = first
            .checked_add_months(chrono::Months::new(1))
            .ok_or_else(|| JobError::Fail(format!("month {first} is out of range")))?;
        let last = next.pred_opt().unwrap_or(first);
        let bounds = (
            super::analytics::day_bounds(first, zone).0,
            super::analytics::day_bounds(next, zone).0,
        );
        let month = sales::month(
            &ctx.db,
            tenant.id,
            (&first.to_string(), &last.to_string()),
            bounds,
        )
        .await
        .map_err(super::retry)?;
        let report = Report {
            tenant: tenant.name.clone(),
            zone: tenant.timezone.clone(),
            first,
            month,
        };
        let bytes = render(&report);
        let name = format!("report-{}.pdf", first.format("%Y-%m"));
        let file = format!("{}/{name}", tenant.id);
        let folder = ctx.rt.settings.exports_dir().join(tenant.id.to_string());
        let pdf = &bytes;
        exports::write_whole(&folder, &name, |tmp| async move {
            std::fs::write(&tmp, pdf).map_err(|source| ExportError::Io {
                path: tmp.display().to_string(),
                source,
            })
        })
        .await
        .map_err(ExportError::into_job)?;
        let kind = format!("monthly report {} (PDF)", first.format("%Y-%m"));
        exports::deliver(&ctx, &signer, &tenant, &file, "ReportReady", &kind).await?;
        tracing::info!(tenant = tenant.id, file = %file, bytes = bytes.len(), "PDF report written");
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_a_pdf_that_names_its_tenant() {
        let mut month = Month {
            orders: 3,
            paid_revenue_cents: 12_345,
            visitors: 7,
            ..Month::default()
        };
        month.interactions_by_kind.insert("view".into(), 20);
        let r = Report {
            tenant: "Tienda Café".into(),
            zone: "America/Tegucigalpa".into(),
            first: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            month,
        };
        let pdf = render(&r);
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("Helvetica-Bold"));
        assert!(text.contains("123.45"));
    }
}
