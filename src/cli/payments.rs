//! `conecta payments reviews`: payments that could not be applied to their order as it
//! stood (an order already cancelled as stale, say), for a person to settle.

use std::io::Write;

use super::args::{OutputFormat, PaymentsCommand};
use super::{Context, ExitStatus, output};
use crate::store::payments;

pub async fn run(
    ctx: &Context,
    cmd: &PaymentsCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let PaymentsCommand::Reviews { format } = cmd;
    let db = ctx.db().await?;
    let reviews = payments::reviews(&db).await?;
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &reviews)?;
            writeln!(out)?;
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = reviews
                .iter()
                .map(|r| {
                    vec![
                        crate::rfc3339::utc(
                            chrono::DateTime::from_timestamp(r.created_at, 0).unwrap_or_default(),
                        ),
                        r.order_id.to_string(),
                        format!("{:.2}", r.amount_cents as f64 / 100.0),
                        r.event_id.clone(),
                        r.reason.clone(),
                    ]
                })
                .collect();
            output::table(
                out,
                &["RECORDED", "ORDER", "AMOUNT", "EVENT", "REASON"],
                &rows,
            )?;
        }
    }
    Ok(ExitStatus::Success)
}
