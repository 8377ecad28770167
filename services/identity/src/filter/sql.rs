//! SQL text with bound parameters, built piece by piece by the compiler and
//! by sorting, and handed to diesel as one typed expression.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::expression::{
    AppearsOnTable, Expression, SelectableExpression, TypedExpressionType, ValidGrouping,
    is_aggregate,
};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Text, Timestamptz};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// SQL text with bound parameters, usable as a diesel expression of SQL
/// type `ST` on the table it was built for.
pub(crate) struct Sql<ST> {
    pieces: Vec<Piece>,
    sql_type: PhantomData<fn() -> ST>,
}

/// A compiled WHERE condition.
pub(crate) type SqlFilter = Sql<Bool>;

impl<ST> Clone for Sql<ST> {
    fn clone(&self) -> Self {
        Sql::from_pieces(self.pieces.clone())
    }
}

impl<ST> std::fmt::Debug for Sql<ST> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.pieces).finish()
    }
}

impl<ST> Sql<ST> {
    fn from_pieces(pieces: Vec<Piece>) -> Self {
        Sql {
            pieces,
            sql_type: PhantomData,
        }
    }

    /// No SQL yet, for a builder to push onto.
    pub(super) fn empty() -> Self {
        Sql::from_pieces(Vec::new())
    }

    /// Fixed SQL without parameters.
    pub(crate) fn text(sql: &str) -> Self {
        Sql::from_pieces(vec![Piece::Sql(sql.to_owned())])
    }

    pub(crate) fn push_sql(&mut self, sql: &str) -> &mut Self {
        match self.pieces.last_mut() {
            Some(Piece::Sql(last)) => last.push_str(sql),
            _ => self.pieces.push(Piece::Sql(sql.to_owned())),
        }
        self
    }

    pub(crate) fn push_bind(&mut self, param: Param) -> &mut Self {
        self.pieces.push(Piece::Bind(param));
        self
    }

    /// Appends another fragment (its parameters included).
    pub(crate) fn push<T>(&mut self, other: &Sql<T>) -> &mut Self {
        for piece in &other.pieces {
            match piece {
                Piece::Sql(sql) => {
                    self.push_sql(sql);
                }
                Piece::Bind(param) => {
                    self.push_bind(param.clone());
                }
            }
        }
        self
    }

    /// The same SQL read as another SQL type.
    #[cfg(test)]
    pub(crate) fn typed<T>(self) -> Sql<T> {
        Sql::from_pieces(self.pieces)
    }

    /// Feeds the SQL and its parameter values to `hasher`: equal digests
    /// mean the same query, however the filter was spelled.
    pub(crate) fn digest(&self, hasher: &mut Sha256) {
        for piece in &self.pieces {
            match piece {
                Piece::Sql(sql) => {
                    hasher.update(b"S");
                    hasher.update((sql.len() as u64).to_be_bytes());
                    hasher.update(sql.as_bytes());
                }
                Piece::Bind(Param::Text(v)) => {
                    hasher.update(b"T");
                    hasher.update((v.len() as u64).to_be_bytes());
                    hasher.update(v.as_bytes());
                }
                Piece::Bind(Param::Bool(v)) => hasher.update([b'B', u8::from(*v)]),
                Piece::Bind(Param::Time(v)) => {
                    hasher.update(b"D");
                    hasher.update(v.timestamp_micros().to_be_bytes());
                }
                Piece::Bind(Param::Uuid(v)) => {
                    hasher.update(b"U");
                    hasher.update(v.as_bytes());
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Piece {
    Sql(String),
    Bind(Param),
}

/// A bound parameter value.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Text(String),
    Bool(bool),
    Time(DateTime<Utc>),
    Uuid(Uuid),
}

impl<ST> QueryFragment<Pg> for Sql<ST> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // Every filter shape yields different SQL: do not grow the statement cache.
        out.unsafe_to_cache_prepared();
        for piece in &self.pieces {
            match piece {
                Piece::Sql(sql) => out.push_sql(sql),
                Piece::Bind(Param::Text(v)) => out.push_bind_param::<Text, _>(v)?,
                Piece::Bind(Param::Bool(v)) => out.push_bind_param::<Bool, _>(v)?,
                Piece::Bind(Param::Time(v)) => out.push_bind_param::<Timestamptz, _>(v)?,
                Piece::Bind(Param::Uuid(v)) => {
                    out.push_bind_param::<diesel::sql_types::Uuid, _>(v)?
                }
            }
        }
        Ok(())
    }
}

impl<ST> QueryId for Sql<ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST: TypedExpressionType> Expression for Sql<ST> {
    type SqlType = ST;
}

impl<ST, QS> AppearsOnTable<QS> for Sql<ST> where Sql<ST>: Expression {}

impl<ST, QS> SelectableExpression<QS> for Sql<ST> where Sql<ST>: Expression {}

impl<ST> ValidGrouping<()> for Sql<ST> {
    type IsAggregate = is_aggregate::Never;
}
