//! `conecta locks list|release`: unique-job locks.

use std::io::Write;

use serde_json::json;

use super::args::{LocksCommand, OutputFormat};
use super::{Context, ExitStatus, output};
use crate::rfc3339;

pub async fn run(
    ctx: &Context,
    cmd: &LocksCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let rt = ctx.runtime().await?;
    match cmd {
        LocksCommand::List { prefix, format } => {
            let locks = rt.queue.locks(prefix, ctx.clock.now()).await?;
            match format {
                OutputFormat::Json => {
                    let items: Vec<_> = locks
                        .iter()
                        .map(|l| json!({"key": l.key, "owner": l.owner, "expires_at": rfc3339::utc(l.expires_at)}))
                        .collect();
                    writeln!(out, "{}", serde_json::Value::Array(items))?;
                }
                OutputFormat::Table => {
                    if locks.is_empty() {
                        writeln!(out, "No locks held.")?;
                    } else {
                        let rows: Vec<Vec<String>> = locks
                            .iter()
                            .map(|l| {
                                vec![l.key.clone(), l.owner.clone(), rfc3339::utc(l.expires_at)]
                            })
                            .collect();
                        output::table(out, &["KEY", "OWNER", "EXPIRES_AT"], &rows)?;
                    }
                }
            }
            Ok(ExitStatus::Success)
        }
        LocksCommand::Release { key } => {
            if rt.queue.force_unlock(key).await? {
                writeln!(out, "released {key}")?;
                Ok(ExitStatus::Success)
            } else {
                say!("error: no lock held under {key:?}");
                say!("hint: `conecta locks list` shows the held locks");
                Ok(ExitStatus::Failure)
            }
        }
    }
}
