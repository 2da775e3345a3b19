//! conecta: the scheduler, batch orchestrator and queue runtime of Vito Business OS.
//!
//! The library holds everything; `main.rs` only parses arguments and calls [`cli::run`].
//! See ARCHITECTURE.md for the map.

#![warn(missing_docs)]

pub mod cli;
pub mod clock;
pub mod config;
pub mod duration;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod outage;
pub mod progress;
pub mod queue;
pub mod rfc3339;
pub mod schedule;
pub mod settings;
pub mod signed_url;
pub mod stop;
pub mod store;
pub mod suggest;
pub mod tasks;
