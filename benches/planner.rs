//! Planner and simulator speed (issue: one year of production in under 1 s; one year of a
//! daily entry in under 1 ms). Run with `cargo bench --bench planner`; prints medians as
//! `RESULT key=value` lines.
//!
//! Timing lives here, never in tests.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use conecta::schedule::{file, occurrences};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let from: DateTime<Utc> = "2027-01-01T00:00:00Z".parse().unwrap();
    let to: DateTime<Utc> = "2028-01-01T00:00:00Z".parse().unwrap();

    // Pure planning of one year of a daily entry, in a DST zone.
    let text = "[[task]]\nname = \"d\"\ntask = \"model:prune\"\ncron = \"30 2 * * *\"\ntimezone = \"America/New_York\"\n";
    let schedule = file::parse("bench.toml".as_ref(), text, Tz::UTC).unwrap();
    let entry = &schedule.entries[0];
    let mut samples = Vec::new();
    let mut count = 0;
    for _ in 0..201 {
        let start = Instant::now();
        count = std::hint::black_box(occurrences(entry, from, to).count());
        samples.push(start.elapsed());
    }
    let plan = median(samples);
    println!(
        "RESULT bench=plan_daily_year occurrences={count} median_us={:.1}",
        plan.as_secs_f64() * 1e6
    );

    // The real binary simulating a year of the production schedule, JSON to /dev/null.
    let bin = env!("CARGO_BIN_EXE_conecta");
    let args = [
        "schedule",
        "simulate",
        "--schedule",
        "schedules/production.toml",
        "--from",
        "2027-01-01T00:00:00Z",
        "--to",
        "2028-01-01T00:00:00Z",
        "--format",
        "json",
    ];
    let lines = Command::new(bin)
        .args(args)
        .current_dir(root)
        .output()
        .expect("run conecta")
        .stdout
        .iter()
        .filter(|b| **b == b'\n')
        .count();
    let mut samples = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let status = Command::new(bin)
            .args(args)
            .current_dir(root)
            .stdout(Stdio::null())
            .status()
            .expect("run conecta");
        samples.push(start.elapsed());
        assert!(status.success());
    }
    let sim = median(samples);
    println!(
        "RESULT bench=simulate_production_year occurrences={lines} median_ms={:.1}",
        sim.as_secs_f64() * 1e3
    );
}
