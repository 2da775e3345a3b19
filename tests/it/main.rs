//! The integration tests: one binary, one module per area. `support` builds a fresh,
//! migrated store and queue per test on each backend from the service URLs in the
//! environment, and counts the tests that skip for want of a service; the last line of the
//! run says how many did and why.

#[macro_use]
mod support;

mod campaign_smtp;
mod catalog;
mod cli_queue;
mod cli_schedule;
mod cli_scheduler;
mod cli_tasks;
mod clock_discipline;
mod deploy;
mod http;
mod laravel;
mod layers;
mod monitoring;
mod outages;
mod planner_properties;
mod production_day;
mod queue_conformance;
mod scheduler;
mod scheduler_replicas;
mod tasks;
mod time_semantics;
mod ui;
mod worker_processes;
