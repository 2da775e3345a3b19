//! Wake-ups for idle workers on PostgreSQL: an enqueue of ready jobs sends `NOTIFY` on one
//! channel in its transaction (delivered when it commits), and one `LISTEN` connection per
//! process turns each notification into a wake-up of every waiting worker slot. MariaDB and
//! SQLite have no such thing; their workers poll every `--sleep`.
//!
//! A notification can be lost (the listening connection was being re-established when it
//! came), so a waiter never waits longer than its poll interval: a lost wake-up costs at most
//! one `--sleep`, never a job.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::watch;

use super::{Db, Result};

/// The channel enqueues notify, with the queue's name as payload.
pub const CHANNEL: &str = "conecta_jobs";

/// The wake-ups of one process (one `LISTEN` connection, shared by every waiter).
#[derive(Debug)]
pub struct Wakeups {
    pool: PgPool,
    /// Counts notifications; started lazily by the first waiter.
    seen: tokio::sync::Mutex<Option<watch::Receiver<u64>>>,
}

impl Wakeups {
    /// Wake-ups on `db`, if it is PostgreSQL.
    pub fn for_db(db: &Db) -> Option<Self> {
        match db {
            Db::Postgres(pool) => Some(Self {
                pool: pool.clone(),
                seen: tokio::sync::Mutex::new(None),
            }),
            _ => None,
        }
    }

    /// Waits until an enqueue notifies or `max` passes. Errors when the listening connection
    /// cannot be opened (the database is away); the caller backs off.
    pub async fn wait(&self, max: Duration) -> Result<()> {
        let mut seen = {
            let mut guard = self.seen.lock().await;
            match guard.as_ref() {
                Some(rx) if rx.has_changed().is_ok() => rx.clone(),
                _ => {
                    let rx = self.listen().await?;
                    guard.insert(rx).clone()
                }
            }
        };
        seen.mark_unchanged();
        let _ = tokio::time::timeout(max, seen.changed()).await;
        Ok(())
    }

    /// Opens the listening connection and a task that counts its notifications; the task
    /// ends when the last waiter is gone or the connection fails for good (the next waiter
    /// opens a new one).
    async fn listen(&self) -> Result<watch::Receiver<u64>> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        let (tx, rx) = watch::channel(0u64);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tx.closed() => return,
                    got = listener.recv() => match got {
                        Ok(_) => {
                            tx.send_modify(|n| *n = n.wrapping_add(1));
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "the LISTEN connection failed; idle workers poll until it is back");
                            return;
                        }
                    },
                }
            }
        });
        Ok(rx)
    }
}
