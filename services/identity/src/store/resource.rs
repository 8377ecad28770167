//! [`StoredResource`]: what a resource's table must say so that reading,
//! locking and listing its rows is written once for every resource.
//!
//! The generic functions state the diesel bounds they need in `where`
//! clauses rather than on the trait: they hold for any boxed query over a
//! table whose row derives `Selectable`, and the compiler checks them with
//! each resource's concrete types where it is used.

use diesel::Selectable;
use diesel::dsl::{self, AsSelect};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::methods::{FilterDsl, SelectDsl};
use diesel::result::Error as DieselError;
use diesel::{Expression, OptionalExtension, QueryResult, SelectableHelper};
use diesel_async::methods::LoadQuery;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::ResourceError;
use crate::attr::Resource;
use crate::db::is_unique_violation;
use crate::filter::SqlFilter;
use crate::rpc::etag_matches;

/// A SCIM resource kept in a table of its own, one row per resource, keyed
/// by tenant and id and versioned for etags.
pub(crate) trait StoredResource {
    /// How messages name the resource ("user"): not-found and etag errors.
    const KIND: &'static str;
    /// The resource in the attribute catalog: filters, sort keys, tokens.
    const RESOURCE: Resource;
    /// The unique index a write may collide with, and the attribute it
    /// keeps unique, named in the UNIQUENESS error.
    const UNIQUE_INDEX: &'static str;
    const UNIQUE_ATTRIBUTE: &'static str;

    /// A row as read (every column but the tenant).
    type Row: Selectable<Pg> + Send + 'static;
    /// A boxed query over the resource's table.
    type Query: FilterDsl<SqlFilter, Output = Self::Query> + Send + 'static;

    fn id(row: &Self::Row) -> Uuid;
    fn version(row: &Self::Row) -> i64;

    /// The tenant's rows, tombstones only if `show_deleted` (a resource
    /// that keeps none ignores it).
    fn scoped(tenant: Uuid, show_deleted: bool) -> Self::Query;
    /// `query` narrowed to the row `id`, through the primary key.
    fn with_id(query: Self::Query, id: Uuid) -> Self::Query;

    /// Whether `row` is a tombstone; a resource that keeps none never has one.
    fn is_tombstone(_row: &Self::Row) -> bool {
        false
    }
}

/// The query reading whole rows of `R`.
type RowQuery<R> =
    dsl::Select<<R as StoredResource>::Query, AsSelect<<R as StoredResource>::Row, Pg>>;

/// The resource a create or replace must carry.
pub(crate) fn required<R: StoredResource, T>(resource: Option<T>) -> Result<T, ResourceError> {
    resource.ok_or_else(|| ResourceError::InvalidValue(format!("{} is required", R::KIND)))
}

/// A malformed id names no resource: NOT_FOUND, as SCIM clients expect.
pub(crate) fn parse_id<R: StoredResource>(id: &str) -> Result<Uuid, ResourceError> {
    Uuid::try_parse(id.trim()).map_err(|_| not_found::<R>(id))
}

/// NOT_FOUND for the resource `id`, named by its kind.
pub(crate) fn not_found<R: StoredResource>(id: impl ToString) -> ResourceError {
    ResourceError::NotFound {
        kind: R::KIND,
        id: id.to_string(),
    }
}

/// The row `id` of `tenant` (a tombstone only if `show_deleted`).
pub(crate) async fn get<R>(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    id: Uuid,
    show_deleted: bool,
) -> Result<R::Row, ResourceError>
where
    R: StoredResource,
    AsSelect<R::Row, Pg>: Expression,
    R::Query: SelectDsl<AsSelect<R::Row, Pg>>,
    RowQuery<R>: LoadQuery<'static, AsyncPgConnection, R::Row>,
{
    // Tombstones are told apart here, not in SQL: with `deleted_at IS NULL`
    // in the query, a planner without fresh statistics may pick a partial
    // index on the tenant and filter every live row for the id, where the
    // primary key finds it at once (seen after a bulk import).
    let query = R::with_id(R::scoped(tenant, true), id);
    SelectDsl::select(query, R::Row::as_select())
        .get_result(conn)
        .await
        .optional()?
        .filter(|row| show_deleted || !R::is_tombstone(row))
        .ok_or_else(|| not_found::<R>(id))
}

/// Locks the live row `id` for the rest of the transaction and checks the
/// write's etag precondition against it.
pub(crate) async fn lock<R>(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    id: Uuid,
    etag: &str,
) -> Result<R::Row, ResourceError>
where
    R: StoredResource,
    AsSelect<R::Row, Pg>: Expression,
    R::Query: SelectDsl<AsSelect<R::Row, Pg>>,
    ForUpdate<RowQuery<R>>: LoadQuery<'static, AsyncPgConnection, R::Row>,
{
    // Through the primary key, tombstones told apart after (see `get`).
    let query = R::with_id(R::scoped(tenant, true), id);
    let row = ForUpdate(SelectDsl::select(query, R::Row::as_select()))
        .get_result(conn)
        .await
        .optional()?
        .filter(|row| !R::is_tombstone(row))
        .ok_or_else(|| not_found::<R>(id))?;
    check_etag(R::KIND, etag, R::version(&row))?;
    Ok(row)
}

/// The optional etag precondition (see [`etag_matches`]) of a `kind`.
fn check_etag(kind: &'static str, etag: &str, version: i64) -> Result<(), ResourceError> {
    if etag_matches(etag, version) {
        Ok(())
    } else {
        Err(ResourceError::EtagMismatch {
            kind,
            given: etag.trim().to_owned(),
            current: version,
        })
    }
}

/// A clash on the resource's unique index, writing `value` as its unique
/// attribute, becomes UNIQUENESS; any other failure stays a store error.
pub(crate) fn write_error<R: StoredResource>(err: DieselError, value: &str) -> ResourceError {
    if is_unique_violation(&err, R::UNIQUE_INDEX) {
        ResourceError::Taken {
            attribute: R::UNIQUE_ATTRIBUTE,
            value: value.to_owned(),
        }
    } else {
        err.into()
    }
}

/// `SELECT ... FOR UPDATE` of a boxed query, which diesel cannot lock.
/// Postgres takes the locking clause after LIMIT as well as before it.
pub(crate) struct ForUpdate<Q>(Q);

impl<Q: Query> Query for ForUpdate<Q> {
    type SqlType = Q::SqlType;
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for ForUpdate<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(" FOR UPDATE");
        Ok(())
    }
}

impl<Q> QueryId for ForUpdate<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_forms() {
        assert!(check_etag("user", "", 3).is_ok());
        assert!(check_etag("user", "3", 3).is_ok());
        assert!(check_etag("user", "\"3\"", 3).is_ok());
        assert!(check_etag("user", "W/\"3\"", 3).is_ok());
        assert!(matches!(
            check_etag("user", "W/\"2\"", 3),
            Err(ResourceError::EtagMismatch { current: 3, .. })
        ));
    }
}
