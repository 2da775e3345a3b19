//! The command line, as clap definitions only: no behaviour lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// conecta: the scheduler, batch orchestrator and queue runtime of Vito Business OS.
#[derive(Debug, Parser)]
#[command(name = "conecta", version, about, propagate_version = true)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Read configuration from this file instead of ./.env.
    #[arg(long, global = true, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// The schedule file (default: $CONECTA_SCHEDULE, then schedules/production.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub schedule: Option<PathBuf>,
    /// Time travel: the clock starts at this RFC 3339 instant (also $CONECTA_NOW).
    #[arg(long, global = true, value_name = "RFC3339")]
    pub now: Option<String>,
    /// With --now: the clock runs N times faster than real time (also $CONECTA_SPEED).
    #[arg(long, global = true, value_name = "N")]
    pub speed: Option<f64>,
    /// Log lines on stderr as text (default) or JSON.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How a listing or report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// A readable table.
    #[default]
    Table,
    /// JSON for scripts: stable field names, UTC RFC 3339 times.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect, validate and simulate the schedule file.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
}

/// `conecta schedule …`
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Entries with cron, zone and next due time (UTC and local).
    List {
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Validate a schedule file; exit 2 with FILE:LINE:COL messages when it is invalid.
    Check {
        /// The file to check (default: the configured schedule).
        file: Option<PathBuf>,
    },
    /// The next N occurrences across all enabled entries.
    Next {
        /// How many.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// table or json (one object per line).
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Every occurrence in [from, to), in order.
    Simulate {
        /// Start, inclusive (RFC 3339; default: now).
        #[arg(long, value_name = "RFC3339")]
        from: Option<String>,
        /// End, exclusive (RFC 3339).
        #[arg(long, value_name = "RFC3339")]
        to: String,
        /// json (one object per line) or table.
        #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
        format: OutputFormat,
    },
}
