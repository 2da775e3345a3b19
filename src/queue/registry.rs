//! Job handlers by name, each with a typed payload.
//!
//! A handler never sees a payload it cannot decode: the registry decodes it first and turns a
//! mismatch into [`JobError::Undecodable`], which fails the job at once with a clear message
//! (a retry could not fix it), releasing its unique lock. Nothing is dropped silently.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::clock::SharedClock;
use crate::store::Db;

/// What a handler gets besides its payload.
#[derive(Clone)]
pub struct JobContext {
    /// The clock to read "now" from.
    pub clock: SharedClock,
    /// The database.
    pub db: Db,
    /// The job's uuid.
    pub uuid: String,
    /// This attempt's number (1 on first delivery).
    pub attempts: u32,
    /// The queue it came from (`inline` for a scheduled or `run-task` run).
    pub queue: String,
    /// The runtime it runs in: to enqueue jobs, reach settings and the mailer.
    pub rt: super::Runtime,
}

/// How a job ended when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Try again after the job's backoff, unless its tries are used up.
    #[error("{0}")]
    Retry(String),
    /// Try again after this delay, unless its tries are used up.
    #[error("{1}")]
    RetryAfter(Duration, String),
    /// Not now: run again after this delay without counting this delivery as a try (a
    /// provider's rate limit said when to come back).
    #[error("{1}")]
    Postpone(Duration, String),
    /// Fail for good now, whatever tries are left.
    #[error("{0}")]
    Fail(String),
    /// The payload does not fit the job's type: fail for good now.
    #[error("{0}")]
    Undecodable(String),
}

/// A registered handler.
pub type Handler =
    Arc<dyn Fn(JobContext, Value) -> BoxFuture<'static, Result<(), JobError>> + Send + Sync>;

/// Handlers by job name.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Handler>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for `name`, with payload type `P`.
    pub fn register<P, F, Fut>(&mut self, name: &str, handler: F)
    where
        P: DeserializeOwned + Send + 'static,
        F: Fn(JobContext, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let job = name.to_string();
        self.handlers.insert(
            name.to_string(),
            Arc::new(move |ctx, value| {
                let handler = handler.clone();
                let job = job.clone();
                Box::pin(async move {
                    let payload: P = serde_json::from_value(value).map_err(|e| {
                        JobError::Undecodable(format!("payload of {job} could not be decoded: {e}"))
                    })?;
                    handler(ctx, payload).await
                })
            }),
        );
    }

    /// Makes `alias` run what `name` runs (Laravel's class names for conecta's tasks); does
    /// nothing if `name` has no handler.
    pub fn alias(&mut self, alias: &str, name: &str) {
        if let Some(h) = self.handlers.get(name).cloned() {
            self.handlers.insert(alias.to_string(), h);
        }
    }

    /// The handler for `name`.
    pub fn get(&self, name: &str) -> Option<&Handler> {
        self.handlers.get(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.handlers.keys().map(|s| s.as_str()).collect();
        names.sort_unstable();
        names
    }
}
