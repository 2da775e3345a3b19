//! `conecta url sign PATH [--ttl 24h]`: a signed, expiring download link to a file under
//! `storage/exports`, as the export jobs hand out.

use std::io::Write;

use super::args::UrlCommand;
use super::{Context, ExitStatus, UsageError};
use crate::signed_url::{Signer, is_contained};

pub fn run(ctx: &Context, cmd: &UrlCommand, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let UrlCommand::Sign { path, ttl } = cmd;
    let Some(key) = &ctx.config.http.app_key else {
        return Err(UsageError::new(
            "APP_KEY is not set: links are signed with it",
            Some("set APP_KEY as in the Laravel application (base64:…)".into()),
        )
        .into());
    };
    let path = path.trim_start_matches('/');
    if !is_contained(path) {
        return Err(UsageError::new(
            format!("{path:?} is not a file path inside storage/exports"),
            Some("give it relative to storage/exports, without . or .. segments".into()),
        )
        .into());
    }
    let ttl =
        crate::duration::parse(ttl).map_err(|e| UsageError::new(format!("--ttl: {e}"), None))?;
    let expires =
        ctx.clock.now() + chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::MAX);
    let url = Signer::new(key).url(&ctx.config.http.app_url, path, expires);
    writeln!(out, "{url}")?;
    Ok(ExitStatus::Success)
}
