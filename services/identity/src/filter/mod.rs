//! Compiles a proto `Filter` tree into one SQL boolean expression over the
//! `users` or the `groups` table. Every value is a bound parameter; nothing
//! is evaluated in memory, so a filtered list is one indexed query.
//!
//! Attributes with a column compare the column; the RFC 7643 attributes
//! kept in the `attributes` document ([`crate::catalog`]) compare its JSONB
//! fields, multi-valued ones through an EXISTS over their elements; the
//! attributes of unregistered extensions compare the document by exact key
//! (`eq`, `ne`, `co`, `sw`, `ew`, `pr` only, their type being unknown).
//! The same attribute resolution serves sorting ([`crate::sort`]).
//!
//! `bounds` refuses oversized filters before anything walks them,
//! `attribute` resolves a path to what it names and its [`Kind`], `compile`
//! emits the SQL, and `sql` is the fragment type both compiling and sorting
//! build.

mod attribute;
mod bounds;
mod compile;
mod sql;
#[cfg(test)]
mod tests;

pub(crate) use attribute::{Kind, Multi, Operand, RowAttr, resolve};
pub use bounds::FilterError;
pub(crate) use bounds::{check_bounds, check_path_text};
pub(crate) use compile::compile;
pub(crate) use sql::{Param, Sql, SqlFilter};
