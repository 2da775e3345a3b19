//! The one place that runs SQL on the three drivers.
//!
//! A [`Query`] is built for one database (`db.query(…)` or `tx.query(…)`), with `?`
//! placeholders numbered for PostgreSQL, and its arguments bound natively as they are added.
//! Running it picks a connection (from the pool, or the transaction's) and makes exactly one
//! call into sqlx for that database. Rows come back as [`Row`], read by position with
//! [`Row::try_get`]. Callers never match on the database: what differs between databases in
//! the SQL text itself is named in [`super::dialect`].

use std::borrow::Cow;

use sqlx::error::BoxDynError;
use sqlx::mysql::{MySql, MySqlArguments, MySqlRow};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgRow, Postgres};
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteRow};
use sqlx::{Arguments, Decode, Encode, Row as _, Type};

use super::{Backend, Db, Result, StoreError, Tx};

/// A Rust type all three databases have a column type for.
pub trait Typed: Type<Sqlite> + Type<Postgres> + Type<MySql> {}

impl<T: Type<Sqlite> + Type<Postgres> + Type<MySql>> Typed for T {}

/// A value that can be bound as an argument on all three databases.
pub trait Param<'q>:
    Typed + Send + 'q + Encode<'q, Sqlite> + Encode<'q, Postgres> + Encode<'q, MySql>
{
}

impl<'q, T> Param<'q> for T where
    T: Typed + Send + 'q + Encode<'q, Sqlite> + Encode<'q, Postgres> + Encode<'q, MySql>
{
}

/// A value that can be read from a column on all three databases.
pub trait Cell:
    Typed + for<'r> Decode<'r, Sqlite> + for<'r> Decode<'r, Postgres> + for<'r> Decode<'r, MySql>
{
}

impl<T> Cell for T where
    T: Typed
        + for<'r> Decode<'r, Sqlite>
        + for<'r> Decode<'r, Postgres>
        + for<'r> Decode<'r, MySql>
{
}

/// A value of one of the few kinds rows are made of, for statements whose arguments are
/// built as data (bulk inserts, claims).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// NULL.
    Null,
}

/// Arguments in the native form of the database the query was built for.
enum Args<'q> {
    Sqlite(SqliteArguments<'q>),
    Postgres(PgArguments),
    MySql(MySqlArguments),
}

/// A statement with its arguments, for one database.
pub struct Query<'q> {
    sql: Cow<'q, str>,
    args: Args<'q>,
    bad_arg: Option<BoxDynError>,
}

/// One result row.
pub enum Row {
    /// From SQLite.
    Sqlite(SqliteRow),
    /// From PostgreSQL.
    Postgres(PgRow),
    /// From MySQL or MariaDB.
    MySql(MySqlRow),
}

impl Row {
    /// The value of column `index` (0-based).
    pub fn try_get<T: Cell>(&self, index: usize) -> Result<T> {
        Ok(match self {
            Row::Sqlite(r) => r.try_get(index)?,
            Row::Postgres(r) => r.try_get(index)?,
            Row::MySql(r) => r.try_get(index)?,
        })
    }
}

/// Where a query runs: on a connection from the pool, or inside a transaction.
pub enum On<'e> {
    /// A connection taken from the pool for this one statement.
    Pool(&'e Db),
    /// The transaction's connection.
    Tx(&'e mut Tx),
}

impl<'e> From<&'e Db> for On<'e> {
    fn from(db: &'e Db) -> Self {
        On::Pool(db)
    }
}

impl<'e> From<&'e mut Tx> for On<'e> {
    fn from(tx: &'e mut Tx) -> Self {
        On::Tx(tx)
    }
}

/// A connection of one database, borrowed from a transaction or taken from the pool.
enum Held<'e, DB: sqlx::Database> {
    Borrowed(&'e mut DB::Connection),
    Pooled(PoolConnection<DB>),
}

impl<DB: sqlx::Database> Held<'_, DB> {
    fn conn(&mut self) -> &mut DB::Connection {
        match self {
            Held::Borrowed(c) => c,
            Held::Pooled(c) => c,
        }
    }
}

/// A connection of whichever database.
enum Conn<'e> {
    Sqlite(Held<'e, Sqlite>),
    Postgres(Held<'e, Postgres>),
    MySql(Held<'e, MySql>),
}

impl<'e> On<'e> {
    async fn conn(self) -> Result<Conn<'e>> {
        Ok(match self {
            On::Pool(Db::Sqlite(p)) => Conn::Sqlite(Held::Pooled(p.acquire().await?)),
            On::Pool(Db::Postgres(p)) => Conn::Postgres(Held::Pooled(p.acquire().await?)),
            On::Pool(Db::MySql(p)) => Conn::MySql(Held::Pooled(p.acquire().await?)),
            On::Tx(Tx::Sqlite(t)) => Conn::Sqlite(Held::Borrowed(&mut **t)),
            On::Tx(Tx::Postgres(t)) => Conn::Postgres(Held::Borrowed(&mut **t)),
            On::Tx(Tx::MySql(t)) => Conn::MySql(Held::Borrowed(&mut **t)),
        })
    }
}

impl<'q> Query<'q> {
    /// `sql` (written with `?` placeholders) for `backend`.
    pub fn new(backend: Backend, sql: impl Into<Cow<'q, str>>) -> Self {
        let sql = sql.into();
        let sql = match placeholders(backend, &sql) {
            Cow::Borrowed(_) => sql,
            Cow::Owned(numbered) => Cow::Owned(numbered),
        };
        let args = match backend {
            Backend::Sqlite => Args::Sqlite(SqliteArguments::default()),
            Backend::Postgres => Args::Postgres(PgArguments::default()),
            Backend::MySql => Args::MySql(MySqlArguments::default()),
        };
        Self {
            sql,
            args,
            bad_arg: None,
        }
    }

    /// Adds the next argument.
    pub fn bind<T: Param<'q>>(mut self, value: T) -> Self {
        let added = match &mut self.args {
            Args::Sqlite(a) => a.add(value),
            Args::Postgres(a) => a.add(value),
            Args::MySql(a) => a.add(value),
        };
        if let Err(e) = added {
            self.bad_arg.get_or_insert(e);
        }
        self
    }

    /// Adds one array argument, for PostgreSQL's `UNNEST(?::text[])` or `= ANY(?)`: many
    /// rows in one parameter, one statement text whatever their number. The other databases
    /// have no arrays; there the statement fails with an error saying so.
    pub fn bind_array<T>(mut self, values: Vec<T>) -> Self
    where
        Vec<T>: sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send + 'q,
    {
        let added = match &mut self.args {
            Args::Postgres(a) => a.add(values),
            _ => Err("array arguments are PostgreSQL only".into()),
        };
        if let Err(e) = added {
            self.bad_arg.get_or_insert(e);
        }
        self
    }

    /// Adds every value of `values`, in order.
    pub fn bind_all<T: Param<'q>>(self, values: impl IntoIterator<Item = T>) -> Self {
        values.into_iter().fold(self, Query::bind)
    }

    /// Adds `values`, in order.
    pub fn bind_values(self, values: impl IntoIterator<Item = &'q Value>) -> Self {
        values.into_iter().fold(self, |q, v| match v {
            Value::Int(i) => q.bind(*i),
            Value::Text(s) => q.bind(s.as_str()),
            Value::Null => q.bind(None::<i64>),
        })
    }

    /// Runs the statement; returns how many rows it changed.
    pub async fn execute<'e>(self, on: impl Into<On<'e>>) -> Result<u64> {
        let conn = on.into().conn().await?;
        let Query { sql, args, bad_arg } = self;
        if let Some(e) = bad_arg {
            return Err(sqlx::Error::Encode(e).into());
        }
        Ok(match (args, conn) {
            (Args::Sqlite(a), Conn::Sqlite(mut c)) => sqlx::query_with(&sql, a)
                .execute(c.conn())
                .await?
                .rows_affected(),
            (Args::Postgres(a), Conn::Postgres(mut c)) => sqlx::query_with(&sql, a)
                .execute(c.conn())
                .await?
                .rows_affected(),
            (Args::MySql(a), Conn::MySql(mut c)) => sqlx::query_with(&sql, a)
                .execute(c.conn())
                .await?
                .rows_affected(),
            _ => return Err(mismatch()),
        })
    }

    /// Runs the statement and returns every row.
    pub async fn fetch_all<'e>(self, on: impl Into<On<'e>>) -> Result<Vec<Row>> {
        let conn = on.into().conn().await?;
        let Query { sql, args, bad_arg } = self;
        if let Some(e) = bad_arg {
            return Err(sqlx::Error::Encode(e).into());
        }
        Ok(match (args, conn) {
            (Args::Sqlite(a), Conn::Sqlite(mut c)) => rows(
                sqlx::query_with(&sql, a).fetch_all(c.conn()).await?,
                Row::Sqlite,
            ),
            (Args::Postgres(a), Conn::Postgres(mut c)) => rows(
                sqlx::query_with(&sql, a).fetch_all(c.conn()).await?,
                Row::Postgres,
            ),
            (Args::MySql(a), Conn::MySql(mut c)) => rows(
                sqlx::query_with(&sql, a).fetch_all(c.conn()).await?,
                Row::MySql,
            ),
            _ => return Err(mismatch()),
        })
    }

    /// Runs the statement and hands each row to `each` as it arrives, holding one row at a
    /// time: for results too large to collect (exports). An error from `each` stops the
    /// statement and is returned.
    pub async fn for_each<'e, E: From<StoreError>>(
        self,
        on: impl Into<On<'e>>,
        mut each: impl FnMut(Row) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        use futures::TryStreamExt;
        let store = |e: sqlx::Error| E::from(StoreError::from(e));
        let conn = on.into().conn().await?;
        let Query { sql, args, bad_arg } = self;
        if let Some(e) = bad_arg {
            return Err(store(sqlx::Error::Encode(e)));
        }
        match (args, conn) {
            (Args::Sqlite(a), Conn::Sqlite(mut c)) => {
                let mut rows = sqlx::query_with(&sql, a).fetch(c.conn());
                while let Some(r) = rows.try_next().await.map_err(store)? {
                    each(Row::Sqlite(r))?;
                }
            }
            (Args::Postgres(a), Conn::Postgres(mut c)) => {
                let mut rows = sqlx::query_with(&sql, a).fetch(c.conn());
                while let Some(r) = rows.try_next().await.map_err(store)? {
                    each(Row::Postgres(r))?;
                }
            }
            (Args::MySql(a), Conn::MySql(mut c)) => {
                let mut rows = sqlx::query_with(&sql, a).fetch(c.conn());
                while let Some(r) = rows.try_next().await.map_err(store)? {
                    each(Row::MySql(r))?;
                }
            }
            _ => return Err(E::from(mismatch())),
        }
        Ok(())
    }

    /// Runs the statement and returns its first row, if any.
    pub async fn fetch_optional<'e>(self, on: impl Into<On<'e>>) -> Result<Option<Row>> {
        Ok(self.fetch_all(on).await?.into_iter().next())
    }

    /// Runs the statement and returns its first row; no row is an error.
    pub async fn fetch_one<'e>(self, on: impl Into<On<'e>>) -> Result<Row> {
        self.fetch_optional(on)
            .await?
            .ok_or_else(|| sqlx::Error::RowNotFound.into())
    }

    /// The first column of the first row; no row is an error.
    pub async fn scalar<'e, T: Cell>(self, on: impl Into<On<'e>>) -> Result<T> {
        self.fetch_one(on).await?.try_get(0)
    }

    /// The first column of the first row, if there is a row.
    pub async fn scalar_optional<'e, T: Cell>(self, on: impl Into<On<'e>>) -> Result<Option<T>> {
        self.fetch_optional(on)
            .await?
            .map(|r| r.try_get(0))
            .transpose()
    }

    /// Every row, read by `decode`.
    pub async fn fetch_as<'e, T>(
        self,
        on: impl Into<On<'e>>,
        decode: impl Fn(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.fetch_all(on).await?.iter().map(decode).collect()
    }

    /// The first row, if any, read by `decode`.
    pub async fn fetch_optional_as<'e, T>(
        self,
        on: impl Into<On<'e>>,
        decode: impl Fn(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        self.fetch_optional(on)
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    /// The first column of every row.
    pub async fn scalars<'e, T: Cell>(self, on: impl Into<On<'e>>) -> Result<Vec<T>> {
        self.fetch_all(on)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect()
    }
}

fn rows<R>(native: Vec<R>, wrap: fn(R) -> Row) -> Vec<Row> {
    native.into_iter().map(wrap).collect()
}

fn mismatch() -> StoreError {
    StoreError::Internal("a query built for one database was run on another".into())
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

/// `ids` for an `IN (…)` list, padded with its last id to the next power of two, so that a
/// statement over a varying number of rows has a few texts, each prepared once per connection,
/// instead of one per count. Repeating an id in `IN` changes nothing.
pub fn padded_ids(ids: &[i64]) -> Vec<i64> {
    let mut out = ids.to_vec();
    if let Some(&last) = ids.last() {
        out.resize(ids.len().next_power_of_two(), last);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_ids_repeat_the_last_to_a_power_of_two() {
        assert_eq!(padded_ids(&[]), Vec::<i64>::new());
        assert_eq!(padded_ids(&[7]), vec![7]);
        assert_eq!(padded_ids(&[1, 2, 3]), vec![1, 2, 3, 3]);
        assert_eq!(padded_ids(&[1, 2, 3, 4]).len(), 4);
        assert_eq!(padded_ids(&(0..300).collect::<Vec<_>>()).len(), 512);
    }

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
