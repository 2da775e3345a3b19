//! The database: pools for SQLite, PostgreSQL and MySQL/MariaDB, migrations, and the SQL of
//! everything that must not be lost (failed jobs, batches, locks, worker heartbeats).
//!
//! Nothing outside `store/` (and the database queue driver, which is a store of jobs) writes
//! SQL. Every instant written or compared comes from the caller's clock as a parameter; no
//! query uses the database's `NOW()`, so time-travel tests hold.

pub mod analytics;
pub mod appointments;
pub mod batches;
pub mod demo;
pub mod failed_jobs;
pub mod heartbeats;
pub mod orders;
pub mod outbox;
pub mod prune;
pub mod schedule_leases;
pub mod schedule_runs;
pub mod skew;
pub mod tenants;

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("migrations/mysql");

/// How long taking a connection from the pool may wait before the database counts as away
/// (the callers then back off and retry; see `outage.rs`).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which database a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (the embedded default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

/// A connection pool to one of the three databases.
#[derive(Debug, Clone)]
pub enum Db {
    /// SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
    /// MySQL or MariaDB.
    MySql(MySqlPool),
}

/// Runs the same code against whichever pool `db` holds. The body sees `$pool` as the
/// concrete pool type, so sqlx's generic query API works unchanged on all three.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
            $crate::store::Db::MySql($pool) => $body,
        }
    };
}

/// A transaction on one of the three databases: domain writes and their outbox rows commit
/// together through it. Dropped without [`Tx::commit`], it rolls back.
#[derive(Debug)]
pub enum Tx {
    /// SQLite, begun with `BEGIN IMMEDIATE` so a read-then-write cannot fail to upgrade.
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    /// PostgreSQL.
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    /// MySQL or MariaDB.
    MySql(sqlx::Transaction<'static, sqlx::MySql>),
}

/// Runs the same code inside whichever transaction `tx` holds; the body sees `$c` as
/// `&mut Transaction<DB>`, so `&mut **$c` is an executor.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite($c) => $body,
            $crate::store::Tx::Postgres($c) => $body,
            $crate::store::Tx::MySql($c) => $body,
        }
    };
}

impl Tx {
    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
            Tx::MySql(_) => Backend::MySql,
        }
    }

    /// `?` placeholders rewritten for this database, as [`Db::sql`].
    pub fn sql<'a>(&self, query: &'a str) -> Cow<'a, str> {
        placeholders(self.backend(), query)
    }

    /// Commits.
    pub async fn commit(self) -> Result<()> {
        on_tx!(self, t => t.commit().await?);
        Ok(())
    }
}

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no.
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A piece of concurrent store work died.
    #[error("{0}")]
    Internal(String),
    /// The URL names no supported database.
    #[error("unsupported database URL {0:?}: expected sqlite:, postgres:// or mysql://")]
    Url(String),
}

/// Store result.
pub type Result<T> = std::result::Result<T, StoreError>;

impl Db {
    /// Opens a pool for `url` (`sqlite:PATH`, `postgres://…`, `mysql://…`). A SQLite file and
    /// its folder are created if missing, in WAL mode.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.trim_start_matches("//");
            if let Some(parent) = std::path::Path::new(path).parent()
                && !parent.as_os_str().is_empty()
            {
                let _ = std::fs::create_dir_all(parent);
            }
            let options = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30));
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .connect_with(options)
                .await?;
            Ok(Db::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            Ok(Db::Postgres(pool))
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let options =
                MySqlConnectOptions::from_str(&url.replacen("mariadb://", "mysql://", 1))?;
            let pool = MySqlPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        use sqlx::Executor;
                        // No gap locks: concurrent unique enqueues must not deadlock.
                        conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                            .await?;
                        conn.execute("SET time_zone = '+00:00'").await?;
                        Ok(())
                    })
                })
                .connect_with(options)
                .await?;
            Ok(Db::MySql(pool))
        } else {
            Err(StoreError::Url(url.to_string()))
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
            Db::MySql(_) => Backend::MySql,
        }
    }

    /// Applies every migration not yet applied; returns how many ran.
    pub async fn migrate(&self) -> Result<usize> {
        let (migrator, applied_before) = match self {
            Db::Sqlite(p) => (&SQLITE_MIGRATIONS, applied(p).await?),
            Db::Postgres(p) => (&POSTGRES_MIGRATIONS, applied(p).await?),
            Db::MySql(p) => (&MYSQL_MIGRATIONS, applied(p).await?),
        };
        match self {
            Db::Sqlite(p) => migrator.run(p).await?,
            Db::Postgres(p) => migrator.run(p).await?,
            Db::MySql(p) => migrator.run(p).await?,
        }
        Ok(migrator.iter().count().saturating_sub(applied_before))
    }

    /// How many migrations are not yet applied.
    pub async fn pending_migrations(&self) -> Result<usize> {
        let (total, applied) = match self {
            Db::Sqlite(p) => (SQLITE_MIGRATIONS.iter().count(), applied(p).await?),
            Db::Postgres(p) => (POSTGRES_MIGRATIONS.iter().count(), applied(p).await?),
            Db::MySql(p) => (MYSQL_MIGRATIONS.iter().count(), applied(p).await?),
        };
        Ok(total.saturating_sub(applied))
    }

    /// Rewrites `?` placeholders into `$1, $2, …` on PostgreSQL; SQL is written once with `?`.
    pub fn sql<'a>(&self, query: &'a str) -> Cow<'a, str> {
        placeholders(self.backend(), query)
    }

    /// Begins a transaction.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
            Db::MySql(p) => Tx::MySql(p.begin().await?),
        })
    }

    /// One round trip that touches no table: is the database answering?
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await?.rows_affected());
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

/// How many migrations the database records as applied. A connection error is an error, not
/// "none applied" (which would send the user to run migrations on a server that is down).
async fn applied<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> Result<usize>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Connection: sqlx::migrate::Migrate,
{
    use sqlx::migrate::Migrate;
    let mut conn = pool.acquire().await?;
    conn.ensure_migrations_table().await?;
    Ok(conn.list_applied_migrations().await?.len())
}

/// Runs `attempt` again when the database reports a deadlock, a serialization failure or a
/// busy SQLite file: those mean "try again", not "this is wrong".
pub async fn retrying<T, F, Fut>(mut attempt: F) -> std::result::Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, sqlx::Error>>,
{
    let mut tries = 0u32;
    loop {
        match attempt().await {
            Err(sqlx::Error::Database(e)) if tries < 20 && is_transient(e.code().as_deref()) => {
                tries += 1;
                tokio::task::yield_now().await;
            }
            other => return other,
        }
    }
}

/// [`retrying`] for store operations: runs `attempt` again on a deadlock, a serialization
/// failure or a busy SQLite file.
pub async fn retrying_store<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 0u32;
    loop {
        match attempt().await {
            Err(StoreError::Sql(sqlx::Error::Database(e)))
                if tries < 20 && is_transient(e.code().as_deref()) =>
            {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5 * u64::from(tries))).await;
            }
            other => return other,
        }
    }
}

fn is_transient(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("40001" | "40P01" | "1213" | "1205" | "5" | "6" | "261" | "517")
    )
}

/// `?` → `$n` for PostgreSQL, skipping quoted text.
pub fn placeholders(backend: Backend, query: &str) -> Cow<'_, str> {
    if backend != Backend::Postgres || !query.contains('?') {
        return Cow::Borrowed(query);
    }
    let mut out = String::with_capacity(query.len() + 16);
    let mut n = 0;
    let mut quoted = false;
    for ch in query.chars() {
        match ch {
            '\'' => {
                quoted = !quoted;
                out.push(ch);
            }
            '?' if !quoted => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(ch),
        }
    }
    Cow::Owned(out)
}

/// A comma-separated list of `count` groups of `width` placeholders: `(?, ?), (?, ?)`.
pub fn value_groups(count: usize, width: usize) -> String {
    let group = format!("({})", vec!["?"; width].join(", "));
    vec![group; count].join(", ")
}

/// `count` placeholders separated by commas, for `IN (…)`.
pub fn in_list(count: usize) -> String {
    vec!["?"; count].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        let q = "SELECT 1 FROM t WHERE a = ? AND b = '?' AND c = ?";
        assert_eq!(placeholders(Backend::Sqlite, q), q);
        assert_eq!(
            placeholders(Backend::Postgres, q),
            "SELECT 1 FROM t WHERE a = $1 AND b = '?' AND c = $2"
        );
        assert_eq!(value_groups(2, 3), "(?, ?, ?), (?, ?, ?)");
    }
}
