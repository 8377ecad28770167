//! The gRPC side of a stored resource: one service type for every
//! resource, and the reads every resource serves alike (Get and List)
//! written once over [`Rendered`]. Writes stay with each resource, since
//! their rules are what tells resources apart.

use std::marker::PhantomData;
use std::sync::Arc;

use diesel::Expression;
use diesel::dsl::{self, AsSelect};
use diesel::pg::Pg;
use diesel::query_dsl::methods::SelectDsl;
use diesel_async::AsyncPgConnection;
use diesel_async::methods::LoadQuery;
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::app::AppState;
use crate::auth::TenantRef;
use crate::store::paging::Rows;
use crate::store::{self, ListPage, ListRequest, Segments, StoredResource, parse_id};

/// A gRPC service over the shared state. `S` (the resource it serves) only
/// tells the services apart, so each implements its own proto trait.
pub(crate) struct Api<S> {
    pub(crate) state: Arc<AppState>,
    service: PhantomData<fn() -> S>,
}

impl<S> Api<S> {
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        Api {
            state,
            service: PhantomData,
        }
    }
}

/// The [`ListRequest`] of a proto List request: they all spell these
/// fields alike. Tombstones are the caller's to say, since not every
/// resource keeps them.
macro_rules! list_request {
    ($req:expr, show_deleted: $show_deleted:expr) => {
        $crate::store::ListRequest {
            filter: $req.filter.as_ref(),
            order_by: $req.order_by.as_ref(),
            page_size: $req.page_size,
            offset: $req.offset,
            page_token: &$req.page_token,
            show_deleted: $show_deleted,
            total_optional: $req.total_optional,
        }
    };
}
pub(crate) use list_request;

/// `From<ListPage<$item>>` for the proto List response `$response`, whose
/// items are `$items`: every List response spells the rest alike.
macro_rules! list_response {
    ($response:ident { $items:ident: $item:ty }) => {
        impl From<$crate::store::ListPage<$item>> for $response {
            fn from(page: $crate::store::ListPage<$item>) -> Self {
                $response {
                    $items: page.items,
                    total_size: page.total_size,
                    next_page_token: page.next_page_token,
                    previous_page_token: page.previous_page_token,
                }
            }
        }
    };
}
pub(crate) use list_response;

/// A stored resource as the proto API returns it.
pub(crate) trait Rendered: StoredResource {
    type Proto: prost::Message;

    /// The proto of each row, in order. A resource that shows more than its
    /// row (a user's groups, their manager's name) reads it here, once for
    /// the whole page.
    fn render(
        conn: &mut AsyncPgConnection,
        tenant: &TenantRef,
        rows: Vec<Self::Row>,
    ) -> impl Future<Output = Result<Vec<Self::Proto>, Status>> + Send;
}

/// The proto of one row.
pub(crate) async fn render_one<R: Rendered>(
    conn: &mut AsyncPgConnection,
    tenant: &TenantRef,
    row: R::Row,
) -> Result<R::Proto, Status> {
    R::render(conn, tenant, vec![row])
        .await?
        .pop()
        .ok_or_else(|| Status::internal("internal error"))
}

impl<R: Rendered> Api<R> {
    /// Get: the resource `id` of `tenant`, a tombstone only if
    /// `show_deleted`. A malformed id is NOT_FOUND.
    pub(crate) async fn get(
        &self,
        metadata: &MetadataMap,
        tenant: &str,
        id: &str,
        show_deleted: bool,
    ) -> Result<R::Proto, Status>
    where
        AsSelect<R::Row, Pg>: Expression,
        R::Query: SelectDsl<AsSelect<R::Row, Pg>>,
        dsl::Select<R::Query, AsSelect<R::Row, Pg>>: LoadQuery<'static, AsyncPgConnection, R::Row>,
    {
        let (mut conn, tenant) = self.state.tenant_call(metadata, tenant).await?;
        let id = parse_id::<R>(id)?;
        let row = store::get::<R>(&mut conn, tenant.id, id, show_deleted).await?;
        render_one::<R>(&mut conn, &tenant, row).await
    }

    /// List: one page of the tenant's resources, rendered and cut to the
    /// page's byte budget, with the total.
    pub(crate) async fn list(
        &self,
        metadata: &MetadataMap,
        tenant: &str,
        request: ListRequest<'_>,
    ) -> Result<ListPage<R::Proto>, Status>
    where
        for<'a> Segments<'a, R>: Rows<Row = R::Row>,
        R::Query: SelectDsl<dsl::CountStar>,
        dsl::Select<R::Query, dsl::CountStar>: LoadQuery<'static, AsyncPgConnection, i64>,
    {
        let (mut conn, tenant) = self.state.tenant_call(metadata, tenant).await?;
        let mut listing = store::list::<R>(&mut conn, tenant.id, request).await?;
        let items = R::render(&mut conn, &tenant, listing.take_rows()).await?;
        Ok(listing.respond(items))
    }
}
