//! How a statement reaches the database, written once for both backends.
//!
//! Shared SQL is written in the `$N` placeholder style, which both SQLite and PostgreSQL
//! accept, and runs on a [`Conn`]: a connection of either backend. Its parameters travel as
//! [`Arg`]s and its rows decode into types that both drivers can read ([`Decodable`]), so a
//! statement both databases accept is spelled exactly once (in `store/*.rs`, on `Conn`).
//! A statement the two databases spell differently is a method of one of the dialect traits
//! (`QuestionSql`, `QuizSql`, `ChangeSql`, `MetaSql`), which each backend implements for its
//! own connection type in the file of the same name under `sqlite/` and `postgres/`; `Conn`
//! forwards those methods to the backend it holds.
//!
//! Every dialect method is required, never defaulted: a backend can't override a shared
//! statement by accident (it would be bypassed by `Conn`), and the compiler names any backend
//! that lacks one.

use super::StoreResult;
use super::dialect::{Dialect, Spelling};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{
    Arguments, Encode, FromRow, PgConnection, Postgres, Sqlite, SqliteConnection, Transaction, Type,
};
use tokio::sync::OwnedMutexGuard;

/// One bound parameter of a shared statement.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Int(Option<i64>),
    Real(f64),
    Text(Option<&'a str>),
    Bool(bool),
    Bytes(&'a [u8]),
    /// A set of integers: a JSON array on SQLite (read with `json_each`), a `bigint[]` on
    /// PostgreSQL (read with `unnest` or `ANY`).
    Ints(&'a [i64]),
    /// A set of texts, likewise.
    Texts(&'a [&'a str]),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

impl From<f64> for Arg<'_> {
    fn from(v: f64) -> Self {
        Arg::Real(v)
    }
}

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}

impl From<crate::domain::Id> for Arg<'_> {
    fn from(v: crate::domain::Id) -> Self {
        Arg::Int(Some(v.get()))
    }
}

/// A row type both drivers can decode (named row structs deriving `FromRow`, and tuples).
pub(crate) trait Decodable:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> Decodable for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// The arguments of a statement: scalars bind alike everywhere; `set` binds a set of values
/// the way the database reads one.
fn arguments<'a, A>(
    args: &[Arg<'a>],
    set: impl Fn(&mut A, Arg<'a>) -> Result<(), BoxDynError>,
) -> sqlx::Result<A>
where
    A: Arguments,
    Option<i64>: for<'q> Encode<'q, A::Database> + Type<A::Database>,
    f64: for<'q> Encode<'q, A::Database> + Type<A::Database>,
    for<'q> Option<&'q str>: Encode<'q, A::Database> + Type<A::Database>,
    bool: for<'q> Encode<'q, A::Database> + Type<A::Database>,
    for<'q> &'q [u8]: Encode<'q, A::Database> + Type<A::Database>,
{
    let mut out = A::default();
    for a in args {
        match *a {
            Arg::Int(v) => out.add(v),
            Arg::Real(v) => out.add(v),
            Arg::Text(v) => out.add(v),
            Arg::Bool(v) => out.add(v),
            Arg::Bytes(v) => out.add(v),
            set_of_values => set(&mut out, set_of_values),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

/// SQLite reads a set as a JSON array, through `json_each`.
fn sqlite_args(args: &[Arg<'_>]) -> sqlx::Result<SqliteArguments> {
    arguments(args, |out: &mut SqliteArguments, a| {
        let json = match a {
            Arg::Ints(v) => serde_json::to_string(v),
            Arg::Texts(v) => serde_json::to_string(v),
            _ => unreachable!("scalars are bound by `arguments`"),
        };
        out.add(json.expect("sets serialize"))
    })
}

/// PostgreSQL reads a set as an array.
fn pg_args(args: &[Arg<'_>]) -> sqlx::Result<PgArguments> {
    arguments(args, |out: &mut PgArguments, a| match a {
        Arg::Ints(v) => out.add(v),
        Arg::Texts(v) => out.add(v),
        _ => unreachable!("scalars are bound by `arguments`"),
    })
}

/// A connection of either backend (a pooled one for reads, a transaction's for writes).
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl Conn<'_> {
    /// The statements of this connection's database that its dialect spells its own way.
    pub fn dialect(&self) -> &'static Dialect {
        match self {
            Conn::Sqlite(_) => SqliteConnection::DIALECT,
            Conn::Postgres(_) => PgConnection::DIALECT,
        }
    }

    /// Runs a statement; returns the number of rows it changed.
    pub async fn execute(&mut self, sql: &'static str, args: &[Arg<'_>]) -> sqlx::Result<u64> {
        Ok(match self {
            Conn::Sqlite(c) => sqlx::query_with(sql, sqlite_args(args)?)
                .execute(&mut **c)
                .await?
                .rows_affected(),
            Conn::Postgres(c) => sqlx::query_with(sql, pg_args(args)?)
                .execute(&mut **c)
                .await?
                .rows_affected(),
        })
    }

    pub async fn fetch_all<T: Decodable>(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> sqlx::Result<Vec<T>> {
        match self {
            Conn::Sqlite(c) => {
                sqlx::query_as_with(sql, sqlite_args(args)?)
                    .fetch_all(&mut **c)
                    .await
            }
            Conn::Postgres(c) => {
                sqlx::query_as_with(sql, pg_args(args)?)
                    .fetch_all(&mut **c)
                    .await
            }
        }
    }

    /// The first row, if any. Every statement run this way selects at most one row (by key,
    /// or an aggregate), so reading all of them costs nothing more.
    pub async fn fetch_optional<T: Decodable>(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> sqlx::Result<Option<T>> {
        Ok(self.fetch_all(sql, args).await?.into_iter().next())
    }

    pub async fn fetch_one<T: Decodable>(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> sqlx::Result<T> {
        self.fetch_optional(sql, args)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// The first column of the first row, if there is a row.
    pub async fn value<T>(&mut self, sql: &'static str, args: &[Arg<'_>]) -> sqlx::Result<Option<T>>
    where
        (T,): Decodable,
    {
        Ok(self.fetch_optional::<(T,)>(sql, args).await?.map(|r| r.0))
    }

    /// The first column of every row.
    pub async fn values<T>(&mut self, sql: &'static str, args: &[Arg<'_>]) -> sqlx::Result<Vec<T>>
    where
        (T,): Decodable,
    {
        let rows: Vec<(T,)> = self.fetch_all(sql, args).await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}

/// A connection taken from a backend's pool for reads.
pub(crate) enum ReadConn {
    Sqlite(sqlx::pool::PoolConnection<Sqlite>),
    Postgres(sqlx::pool::PoolConnection<Postgres>),
}

impl ReadConn {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            ReadConn::Sqlite(c) => Conn::Sqlite(c),
            ReadConn::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// An open write transaction of either backend, as its `begin` hook opened it.
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    /// The guard is this process's turn among change-log writers, held until the end.
    Postgres(Transaction<'static, Postgres>, Option<OwnedMutexGuard<()>>),
}

impl Tx {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(t) => Conn::Sqlite(t),
            Tx::Postgres(t, _) => Conn::Postgres(t),
        }
    }

    pub async fn commit(self) -> StoreResult<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t, _gate) => t.commit().await?,
        }
        Ok(())
    }
}

/// What a write transaction is for: PostgreSQL serialises the ones that append to the change
/// log (see `store/postgres`) and those that replace the synonym table; SQLite's one writer
/// serialises every write anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteKind {
    Plain,
    Changes,
    Synonyms,
    /// A write whose loss in a crash of the database is harmless (an idempotency claim, whose
    /// effect's own transaction checks the key again; a key's last use, which only grows
    /// older): PostgreSQL commits it without waiting for its log to reach the disk.
    Unflushed,
}
