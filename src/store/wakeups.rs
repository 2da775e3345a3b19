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
    /// Counts notifications; its "seen" mark is where the latest reservation started.
    seen: std::sync::Mutex<Option<watch::Receiver<u64>>>,
    /// Held while the listening connection is being opened.
    opening: tokio::sync::Mutex<()>,
}

impl Wakeups {
    /// Wake-ups on `db`, if it is PostgreSQL.
    pub fn for_db(db: &Db) -> Option<Self> {
        match db {
            Db::Postgres(pool) => Some(Self {
                pool: pool.clone(),
                seen: std::sync::Mutex::new(None),
                opening: tokio::sync::Mutex::new(()),
            }),
            _ => None,
        }
    }

    /// Called as a reservation starts: a notification from now on wakes the next
    /// [`Wakeups::wait`] at once, even one that arrives before it begins to wait.
    pub fn arm(&self) {
        if let Some(rx) = self.seen.lock().expect("wakeups").as_mut() {
            rx.borrow_and_update();
        }
    }

    /// Waits until an enqueue has notified since the last [`Wakeups::arm`], or `max` passes.
    /// Errors when the listening connection cannot be opened (the database is away); the
    /// caller backs off.
    pub async fn wait(&self, max: Duration) -> Result<()> {
        let mut rx = match self.live() {
            Some(rx) => rx,
            None => {
                let _opening = self.opening.lock().await;
                // Another waiter may have opened it while this one waited for the lock.
                match self.live() {
                    Some(rx) => rx,
                    None => {
                        let mut fresh = self.listen().await?;
                        fresh.borrow_and_update();
                        *self.seen.lock().expect("wakeups") = Some(fresh.clone());
                        fresh
                    }
                }
            }
        };
        let _ = tokio::time::timeout(max, rx.changed()).await;
        Ok(())
    }

    /// The notification counter, if its listening connection is alive.
    fn live(&self) -> Option<watch::Receiver<u64>> {
        self.seen
            .lock()
            .expect("wakeups")
            .as_ref()
            .filter(|rx| rx.has_changed().is_ok())
            .cloned()
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
