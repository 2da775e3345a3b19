//! `conecta db migrate`: apply the migrations of the configured database.

use std::io::Write;

use super::args::DbCommand;
use super::{Context, ExitStatus, redact};

pub async fn run(
    ctx: &Context,
    cmd: &DbCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    match cmd {
        DbCommand::Migrate => {
            let db = ctx.connect_db(2).await?;
            let applied = db.migrate().await?;
            writeln!(
                out,
                "applied {applied} migration(s) to {}",
                redact(&ctx.config.database_url)
            )?;
            db.close().await;
        }
    }
    Ok(ExitStatus::Success)
}
