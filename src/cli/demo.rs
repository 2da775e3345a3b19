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
    writeln!(
        out,
        "seeded {} tenants ({} approved), {} products, {} orders ({} pending), {} order items, {} appointments, {} interactions",
        r.tenants,
        r.approved,
        r.products,
        r.orders,
        r.pending_orders,
        r.order_items,
        r.appointments,
        r.interactions
    )?;
    writeln!(
        out,
        "next: `conecta start` runs the production schedule against it (add --now/--speed to fast-forward)"
    )?;
    Ok(ExitStatus::Success)
}
