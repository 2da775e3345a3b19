//! `conecta db migrate`: apply the migrations of the configured database.

use std::io::Write;

use super::args::DbCommand;
use super::{Context, ExitStatus, UsageError, redact};
use crate::store::Db;

pub async fn run(
    ctx: &Context,
    cmd: &DbCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    match cmd {
        DbCommand::Migrate => {
            let url = &ctx.config.database_url;
            let db = Db::connect(url, 2).await.map_err(|e| {
                UsageError::new(
                    format!("cannot connect to the database ({}): {e}", redact(url)),
                    Some("check DATABASE_URL (or DB_*) and that the server is up".to_string()),
                )
            })?;
            let applied = db.migrate().await?;
            writeln!(out, "applied {applied} migration(s) to {}", redact(url))?;
            db.close().await;
        }
    }
    Ok(ExitStatus::Success)
}
