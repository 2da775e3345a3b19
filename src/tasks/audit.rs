//! `tenants:audit-limits` (and its job form `AuditTenantLimits`): compares each tenant's
//! usage (products, staff, storage) with its plan's limits. A violation is recorded when
//! first seen and kept up to date while it lasts; once usage is back under the limit it is
//! marked resolved. `conecta tenants violations` lists them.

use serde::Deserialize;

use crate::queue::{JobContext, Registry};
use crate::store::{self, tenants};

/// Arguments of both forms.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Only this tenant.
    #[serde(default)]
    pub tenant: Option<i64>,
}

/// Audits every tenant (or one); returns tenants audited and open violations found.
pub async fn audit(
    ctx: &JobContext,
    tenant: Option<i64>,
    mut on_progress: impl FnMut(u64),
) -> store::Result<(u64, u64)> {
    let (mut audited, mut violations) = (0, 0);
    let mut after = 0;
    loop {
        let (usage, last) = tenants::usage_after(&ctx.db, tenant, after, 500).await?;
        let Some(last) = last else {
            return Ok((audited, violations));
        };
        after = last;
        let now = ctx.clock.now();
        for u in &usage {
            if tenants::record_usage(&ctx.db, u, now).await? {
                violations += 1;
            }
        }
        audited += (usage.len() / 3) as u64;
        on_progress(audited);
    }
}

/// Registers `tenants:audit-limits` and `AuditTenantLimits`.
pub fn register(r: &mut Registry) {
    for name in ["tenants:audit-limits", "AuditTenantLimits"] {
        r.register(name, |ctx: JobContext, a: Args| async move {
            let total = match a.tenant {
                Some(_) => Some(1),
                None => Some(tenants::count(&ctx.db).await.map_err(super::retry)?),
            };
            let bar = ctx.rt.settings.progress.bar("tenants:audit-limits", total);
            let (audited, violations) = audit(&ctx, a.tenant, |n| bar.set(n))
                .await
                .map_err(super::retry)?;
            tracing::info!(audited, violations, "tenant limits audited");
            Ok(())
        });
    }
}
