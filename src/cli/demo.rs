//! `conecta demo seed`: synthetic tenants, products, orders, appointments and interactions.

use std::io::Write;

use super::args::DemoCommand;
use super::{Context, ExitStatus};
use crate::progress::Progress;
use crate::store::demo::{self, SeedOptions};

pub async fn run(
    ctx: &Context,
    cmd: &DemoCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let DemoCommand::Seed { tenants, seed } = cmd;
    let db = ctx.db().await?;
    let options = SeedOptions {
        tenants: *tenants,
        seed: *seed,
        ..SeedOptions::default()
    };
    let bar = Progress::on_terminal().bar("demo seed", Some(*tenants));
    let r = demo::seed(&db, &options, ctx.clock.now(), |n| bar.set(n)).await?;
    bar.finish();
    // A few real images, so GenerateProductBlurhash has files to read.
    let public = crate::settings::public_dir(&ctx.config.storage);
    let with_images = crate::store::products::with_images(&db, 8).await?;
    let images = crate::tasks::blurhash::write_demo_images(&public, &with_images)
        .map_err(|e| anyhow::anyhow!("cannot write demo images under {}: {e}", public.display()))?;
    writeln!(
        out,
        "seeded {} tenants ({} approved), {} products, {} orders ({} pending), {} order items, {} appointments, {} interactions, {} customers, {} draft campaigns, {images} product images in {}",
        r.tenants,
        r.approved,
        r.products,
        r.orders,
        r.pending_orders,
        r.order_items,
        r.appointments,
        r.interactions,
        r.customers,
        r.campaigns,
        public.display()
    )?;
    writeln!(
        out,
        "next: `conecta start` runs the production schedule against it (add --now/--speed to fast-forward)"
    )?;
    Ok(ExitStatus::Success)
}
