//! Every place where the SQL text differs between SQLite, PostgreSQL and MySQL/MariaDB,
//! each written once and named. The rest of `store/` writes portable SQL (`?` placeholders,
//! numbered for PostgreSQL by [`super::sql::Query`]) and asks this file for the pieces that
//! are not.
//!
//! | fragment | SQLite | PostgreSQL | MySQL/MariaDB |
//! |---|---|---|---|
//! | [`Backend::insert_ignore`] | `INSERT OR IGNORE` | `ON CONFLICT (…) DO NOTHING` | `INSERT IGNORE` |
//! | [`Backend::upsert`] | `ON CONFLICT … excluded.c` | `ON CONFLICT … excluded.c` | `ON DUPLICATE KEY UPDATE … VALUES(c)` |
//! | [`Backend::cast_int`] | `CAST(x AS BIGINT)` | `CAST(x AS BIGINT)` | `CAST(x AS SIGNED)` |
//! | [`Backend::delete_limited`] | `WHERE id IN (SELECT … LIMIT ?)` | same | `DELETE … LIMIT ?` |
//! | [`Backend::concat`] | `a \|\| b` | `a \|\| b` | `CONCAT(a, b)` |
//! | [`Backend::skip_locked`] | nothing (one writer) | `FOR UPDATE SKIP LOCKED` | `FOR UPDATE SKIP LOCKED` |
//! | [`Backend::share_lock`] | nothing | nothing | `LOCK IN SHARE MODE` |
//! | [`Backend::through_index`] | the table | the table | `t FORCE INDEX (i)` |
//! | [`Backend::claim`] | `UPDATE … RETURNING` | `UPDATE … RETURNING` | lock, update, read back |
//! | [`Backend::text`] | the column | the column | `CAST(c AS CHAR)` (binary keys) |
//! | [`Backend::server_clock_ms`] | none (same host) | `clock_timestamp()` | `NOW(3)` |
//! | [`Backend::truncate`] | `DELETE FROM` | `TRUNCATE TABLE` | `TRUNCATE TABLE` |
//! | [`Backend::analyze`], [`Backend::sync_sequence`] | nothing | `ANALYZE`, `setval` | nothing |
//!
//! Two whole statements are PostgreSQL's own: the stale-order release as a single
//! data-modifying CTE (`store/orders.rs`, `RELEASE_POSTGRES`), which builds the same
//! `OrderCancelled` payload in SQL that the other databases build in Rust (a test compares them),
//! and the job reservation (`queue/database.rs`), [`claim`]'s statement inside the function
//! `conecta_reserve_jobs` so that its plan does not depend on the table's statistics.

use super::sql::{Row, Value, in_list};
use super::{Backend, Db, Result};

/// One assignment of an upsert: `column = expression`, where the expression may name the
/// proposed row's value of a column as `NEW(col)` and the stored row's as `OLD(col)`.
pub type Assign<'a> = (&'a str, &'a str);

/// A claim: stamp up to some rows chosen by `pick` with `set`, and return their `columns`.
pub struct Claim<'a> {
    /// The table.
    pub table: &'a str,
    /// `SELECT id FROM table WHERE … ORDER BY … LIMIT …`, without a locking clause.
    pub pick: &'a str,
    /// The arguments of `pick`.
    pub pick_args: &'a [Value],
    /// `SET …` assignments, without the word `SET`.
    pub set: &'a str,
    /// The arguments of `set`.
    pub set_args: &'a [Value],
    /// The columns returned for each claimed row, `id` first.
    pub columns: &'a str,
}

impl Backend {
    /// `INSERT … VALUES …` that does nothing when `conflict` (the unique columns) already
    /// holds the row. `rest` is `table (columns) VALUES (…)`.
    pub fn insert_ignore(self, rest: &str, conflict: &str) -> String {
        match self {
            Backend::Sqlite => format!("INSERT OR IGNORE INTO {rest}"),
            Backend::MySql => format!("INSERT IGNORE INTO {rest}"),
            Backend::Postgres => format!("INSERT INTO {rest} ON CONFLICT ({conflict}) DO NOTHING"),
        }
    }

    /// `INSERT INTO table … VALUES …` that updates the stored row when `conflict` (the unique
    /// columns) already holds it, with `assign`.
    pub fn upsert(self, table: &str, rest: &str, conflict: &str, assign: &[Assign<'_>]) -> String {
        let set: Vec<String> = assign
            .iter()
            .map(|(col, expr)| format!("{col} = {}", self.row_refs(table, expr)))
            .collect();
        let set = set.join(", ");
        match self {
            Backend::MySql => format!("INSERT INTO {table} {rest} ON DUPLICATE KEY UPDATE {set}"),
            Backend::Sqlite | Backend::Postgres => {
                format!("INSERT INTO {table} {rest} ON CONFLICT ({conflict}) DO UPDATE SET {set}")
            }
        }
    }

    /// `NEW(c)` and `OLD(c)` in an upsert's expression, spelled for this database.
    fn row_refs(self, table: &str, expr: &str) -> String {
        let mut out = String::new();
        let mut rest = expr;
        loop {
            let next = [("NEW(", true), ("OLD(", false)]
                .iter()
                .filter_map(|(mark, new)| rest.find(mark).map(|at| (at, *new)))
                .min_by_key(|(at, _)| *at);
            let Some((at, new)) = next else { break };
            out.push_str(&rest[..at]);
            let after = &rest[at + 4..];
            let close = after.find(')').unwrap_or(after.len());
            let col = &after[..close];
            out.push_str(&match (self, new) {
                (Backend::MySql, true) => format!("VALUES({col})"),
                (Backend::MySql, false) => col.to_string(),
                (_, true) => format!("excluded.{col}"),
                (_, false) => format!("{table}.{col}"),
            });
            rest = after.get(close + 1..).unwrap_or("");
        }
        out.push_str(rest);
        out
    }

    /// `expr` cast to a 64-bit integer (SUM is NUMERIC on PostgreSQL and DECIMAL on MySQL).
    pub fn cast_int(self, expr: &str) -> String {
        match self {
            Backend::MySql => format!("CAST({expr} AS SIGNED)"),
            Backend::Sqlite | Backend::Postgres => format!("CAST({expr} AS BIGINT)"),
        }
    }

    /// `DELETE` of at most `?` (the last argument) rows of `table` matching `condition`.
    /// MySQL cannot select from the table it deletes from, and has `DELETE … LIMIT` instead.
    pub fn delete_limited(self, table: &str, condition: &str) -> String {
        match self {
            Backend::MySql => format!("DELETE FROM {table} WHERE {condition} LIMIT ?"),
            Backend::Sqlite | Backend::Postgres => format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {condition} LIMIT ?)"
            ),
        }
    }

    /// Text `a` followed by text `b`.
    pub fn concat(self, a: &str, b: &str) -> String {
        match self {
            Backend::MySql => format!("CONCAT({a}, {b})"),
            Backend::Sqlite | Backend::Postgres => format!("{a} || {b}"),
        }
    }

    /// The clause that locks the selected rows and skips those another transaction locked.
    /// SQLite has one writer, so its statements are exclusive already.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres | Backend::MySql => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// `table` read through `index` alone. MySQL/MariaDB otherwise picks `ref` access on the
    /// index's first column for `queue = ? AND id >= ? ORDER BY id` and walks every entry of
    /// the queue below the floor (60,000 index checks instead of 260 for a reservation at
    /// the floor of a 100,000-job backlog); the range over both columns seeks to the floor.
    /// SQLite and PostgreSQL choose the range themselves.
    pub fn through_index(self, table: &str, index: &str) -> String {
        match self {
            Backend::MySql => format!("{table} FORCE INDEX ({index})"),
            Backend::Sqlite | Backend::Postgres => table.to_string(),
        }
    }

    /// The clause that makes a read inside a transaction wait for rows other transactions
    /// are inserting (MySQL's consistent reads would not see them).
    pub fn share_lock(self) -> &'static str {
        match self {
            Backend::MySql => " LOCK IN SHARE MODE",
            Backend::Sqlite | Backend::Postgres => "",
        }
    }

    /// A text column that MySQL stores binary-collated (case-sensitive keys), read as text.
    pub fn text(self, column: &str) -> String {
        match self {
            Backend::MySql => format!("CAST({column} AS CHAR)"),
            Backend::Sqlite | Backend::Postgres => column.to_string(),
        }
    }

    /// A query for the server's clock in unix milliseconds; `None` on SQLite, which shares
    /// this host's clock.
    pub fn server_clock_ms(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => {
                Some("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")
            }
            Backend::MySql => Some("SELECT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)"),
        }
    }

    /// The statement that empties `table`.
    pub fn truncate(self, table: &str) -> String {
        match self {
            Backend::Sqlite => format!("DELETE FROM {table}"),
            Backend::Postgres | Backend::MySql => format!("TRUNCATE TABLE {table}"),
        }
    }

    /// The statement that refreshes the planner statistics of `table` after a bulk load, where
    /// the database needs one.
    pub fn analyze(self, table: &str) -> Option<String> {
        match self {
            Backend::Postgres => Some(format!("ANALYZE {table}")),
            Backend::Sqlite | Backend::MySql => None,
        }
    }

    /// The statement that moves `table`'s id sequence past its largest id after explicit ids
    /// were inserted, where the database needs one.
    pub fn sync_sequence(self, table: &str) -> Option<String> {
        match self {
            Backend::Postgres => Some(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST((SELECT MAX(id) FROM {table}), 1))"
            )),
            Backend::Sqlite | Backend::MySql => None,
        }
    }
}

/// Runs `claim` and returns the claimed rows in id order. PostgreSQL and SQLite do it in one
/// `UPDATE … WHERE id IN (pick) RETURNING`, its own transaction; MySQL has no `RETURNING`, so
/// it locks the picked ids, stamps them and reads them back in one transaction.
pub async fn claim(db: &Db, claim: &Claim<'_>) -> Result<Vec<Row>> {
    let Claim {
        table,
        pick,
        pick_args,
        set,
        set_args,
        columns,
    } = claim;
    let backend = db.backend();
    let lock = backend.skip_locked();
    if backend != Backend::MySql {
        let q = format!("UPDATE {table} SET {set} WHERE id IN ({pick}{lock}) RETURNING {columns}");
        let q = db.query(q).bind_values(*set_args);
        let mut rows = q.bind_values(*pick_args).fetch_all(db).await?;
        rows.sort_by_cached_key(|r| r.try_get::<i64>(0).unwrap_or(i64::MAX));
        return Ok(rows);
    }
    let mut tx = db.begin().await?;
    let ids: Vec<i64> = tx
        .query(format!("{pick}{lock}"))
        .bind_values(*pick_args)
        .scalars(&mut tx)
        .await?;
    if ids.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let ids = super::padded_ids(&ids);
    let list = in_list(ids.len());
    let update = tx.query(format!("UPDATE {table} SET {set} WHERE id IN ({list})"));
    update
        .bind_values(*set_args)
        .bind_all(ids.iter().copied())
        .execute(&mut tx)
        .await?;
    let rows = tx
        .query(format!(
            "SELECT {columns} FROM {table} WHERE id IN ({list}) ORDER BY id"
        ))
        .bind_all(ids.iter().copied())
        .fetch_all(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_spells_the_proposed_and_stored_row_per_database() {
        let assign = [
            ("used", "NEW(used)"),
            (
                "first",
                "CASE WHEN OLD(resolved) IS NULL THEN OLD(first) ELSE NEW(first) END",
            ),
        ];
        assert_eq!(
            Backend::Postgres.upsert("v", "(k, used) VALUES (?, ?)", "k", &assign),
            "INSERT INTO v (k, used) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET used = excluded.used, \
             first = CASE WHEN v.resolved IS NULL THEN v.first ELSE excluded.first END"
        );
        assert_eq!(
            Backend::MySql.upsert("v", "(k, used) VALUES (?, ?)", "k", &assign),
            "INSERT INTO v (k, used) VALUES (?, ?) ON DUPLICATE KEY UPDATE used = VALUES(used), \
             first = CASE WHEN resolved IS NULL THEN first ELSE VALUES(first) END"
        );
    }

    #[test]
    fn insert_ignore_names_the_conflict_only_where_needed() {
        assert_eq!(
            Backend::Sqlite.insert_ignore("t (a) VALUES (?)", "a"),
            "INSERT OR IGNORE INTO t (a) VALUES (?)"
        );
        assert_eq!(
            Backend::Postgres.insert_ignore("t (a) VALUES (?)", "a"),
            "INSERT INTO t (a) VALUES (?) ON CONFLICT (a) DO NOTHING"
        );
    }
}
