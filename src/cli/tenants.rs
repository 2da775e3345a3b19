//! `conecta tenants violations`: what tenants:audit-limits recorded.

use std::io::Write;

use serde_json::json;

use super::args::{OutputFormat, TenantsCommand};
use super::{Context, ExitStatus, output};
use crate::rfc3339;
use crate::store::tenants;

pub async fn run(
    ctx: &Context,
    cmd: &TenantsCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let TenantsCommand::Violations { all, format } = cmd;
    let db = ctx.db().await?;
    let list = tenants::violations(&db, *all).await?;
    match format {
        OutputFormat::Json => {
            let v: Vec<_> = list
                .iter()
                .map(|v| {
                    json!({
                        "tenant_id": v.tenant_id,
                        "resource": v.resource,
                        "used": v.used,
                        "limit": v.limit,
                        "first_seen_at": rfc3339::utc(v.first_seen_at),
                        "last_seen_at": rfc3339::utc(v.last_seen_at),
                        "resolved_at": v.resolved_at.map(rfc3339::utc),
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::Value::Array(v))?;
        }
        OutputFormat::Table => {
            if list.is_empty() {
                writeln!(out, "no plan-limit violations recorded")?;
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|v| {
                        vec![
                            v.tenant_id.to_string(),
                            v.resource.clone(),
                            v.used.to_string(),
                            v.limit.to_string(),
                            rfc3339::utc(v.first_seen_at),
                            v.resolved_at
                                .map(rfc3339::utc)
                                .unwrap_or_else(|| "open".into()),
                        ]
                    })
                    .collect();
                output::table(
                    out,
                    &["TENANT", "RESOURCE", "USED", "LIMIT", "SINCE", "RESOLVED"],
                    &rows,
                )?;
            }
        }
    }
    Ok(ExitStatus::Success)
}
