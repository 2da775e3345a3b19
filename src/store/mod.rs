//! The database: pools for SQLite, PostgreSQL and MySQL/MariaDB, migrations, and the SQL of
//! everything that must not be lost (failed jobs, batches, locks, worker heartbeats).
//!
//! Nothing outside `store/` (and the database queue driver, which is a store of jobs) writes
//! SQL. Every instant written or compared comes from the caller's clock as a parameter; no
//! query uses the database's `NOW()`, so time-travel tests hold.

pub mod analytics;
pub mod appointments;
pub mod batches;
pub mod campaigns;
pub mod demo;
pub mod dialect;
pub mod failed_jobs;
pub mod heartbeats;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod products;
pub mod prune;
pub mod queue_minutes;
pub mod sales;
pub mod schedule_leases;
pub mod schedule_runs;
pub mod skew;
pub mod sql;
pub mod tenants;
pub mod wakeups;

pub use sql::{On, Query, Row, in_list, padded_ids, value_groups};

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

impl Tx {
    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
            Tx::MySql(_) => Backend::MySql,
        }
    }

    /// `sql`, written with `?` placeholders, as a statement to run in this transaction.
    pub fn query<'q>(&self, sql: impl Into<Cow<'q, str>>) -> Query<'q> {
        Query::new(self.backend(), sql)
    }

    /// Commits.
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
            Tx::MySql(t) => t.commit().await?,
        }
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
    /// A stored value cannot be read back (what, and why).
    #[error("{0}")]
    Corrupt(String),
    /// A piece of concurrent store work died.
    #[error("{0}")]
    Internal(String),
    /// The URL names no supported database.
    #[error("unsupported database URL {0:?}: expected sqlite:, postgres:// or mysql://")]
    Url(String),
}

/// How long a pooled connection may sit unused before it is pinged on its way out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Whether a pooled connection may be handed out: one back from use within
/// [`PING_AFTER_IDLE`] is (a ping before every statement was a second round trip for each
/// reservation and acknowledgement); one idle for longer is pinged first, since the server may
/// have restarted meanwhile, and dropped if the ping fails.
async fn still_there<C: sqlx::Connection>(
    conn: &mut C,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> std::result::Result<bool, sqlx::Error> {
    if meta.idle_for < PING_AFTER_IDLE {
        return Ok(true);
    }
    Ok(conn.ping().await.is_ok())
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
                .test_before_acquire(false)
                .before_acquire(|conn, meta| Box::pin(still_there(conn, meta)))
                .connect_with(options)
                .await?;
            Ok(Db::Postgres(pool))
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let options =
                MySqlConnectOptions::from_str(&url.replacen("mariadb://", "mysql://", 1))?;
            let pool = MySqlPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .test_before_acquire(false)
                .before_acquire(|conn, meta| Box::pin(still_there(conn, meta)))
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

    /// `sql`, written with `?` placeholders (numbered `$1, $2, …` for PostgreSQL), as a
    /// statement to run on this database.
    pub fn query<'q>(&self, sql: impl Into<Cow<'q, str>>) -> Query<'q> {
        Query::new(self.backend(), sql)
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
        self.query("SELECT 1").execute(self).await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
            Db::MySql(p) => p.close().await,
        }
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
pub async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T>
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
