//! Compiles a proto `Filter` tree into one SQL boolean expression over the
//! `users` or the `groups` table. Every value is a bound parameter; a
//! filtered list is one indexed query.
//!
//! Attributes with a column compare the column; the RFC 7643 attributes
//! kept in the `attributes` document ([`crate::catalog`]) compare its JSONB
//! fields, multi-valued ones through an EXISTS over their elements; the
//! attributes of unregistered extensions compare the document by exact key
//! (`eq`, `ne`, `co`, `sw`, `ew`, `pr` only, their type being unknown).
//! The same attribute resolution serves sorting ([`crate::sort`]).
//!
//! `bounds` refuses oversized filters before anything walks them,
//! `attribute` resolves a path to what it names and its [`Kind`], `compare`
//! decides what one comparison means for that kind, `compile` emits it as
//! SQL, and `sql` is the fragment type both compiling and sorting build.
//!
//! PATCH value filters (`emails[type eq "work"]`) select elements of a
//! document in memory; they go through the same resolution and the same
//! [`compare::Test`]s ([`ElementFilter`]), so a filter means one thing in a
//! list and in a PATCH.

mod attribute;
mod bounds;
mod compare;
mod compile;
mod sql;
#[cfg(test)]
mod tests;

pub(crate) use attribute::{Kind, Multi, Operand, RowAttr, resolve};
pub use bounds::FilterError;
pub(crate) use bounds::{check_bounds, check_path_text};
pub(crate) use compare::ElementFilter;
pub(crate) use compile::compile;
pub(crate) use sql::{Param, Sql, SqlFilter};
