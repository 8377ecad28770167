//! One list request, whatever the resource: the filter and the order
//! compiled for it, the page size and start checked, then one page, its
//! total, and the rendered page cut to its byte budget.
//!
//! The total costs a read of every match, so it is counted only when
//! the page itself cannot tell it: a page from the start (or, with rows,
//! from an offset) that is shorter than asked ends the matches, so its
//! total is exact for free; that is the common lookup (`userName eq`),
//! answered by one statement. A caller that can do without the total (RFC
//! 9865 cursor paging) gets none instead of a count.

use std::marker::PhantomData;

use diesel::dsl::{self, AsSelect};
use diesel::pg::Pg;
use diesel::query_dsl::methods::{FilterDsl, LimitDsl, OffsetDsl, OrderDsl, SelectDsl};
use diesel::sql_types::{Nullable, Text};
use diesel::{Expression, SelectableHelper};
use diesel_async::methods::LoadQuery;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use identity_proto::v1::{Filter, SortOrder};
use prost::Message;
use uuid::Uuid;

use super::paging::{self, Fetched, Keyset, Page, Rows, Segment, Start};
use super::{ResourceError, StoredResource};
use crate::filter::{self, Sql, SqlFilter};
use crate::rpc::page_size;
use crate::sort;

/// What a List call asks for, as its request says it.
pub(crate) struct ListRequest<'a> {
    pub filter: Option<&'a Filter>,
    pub order_by: Option<&'a SortOrder>,
    pub page_size: Option<i32>,
    pub offset: i64,
    pub page_token: &'a str,
    pub show_deleted: bool,
    /// The caller can do without a total that would have to be counted.
    pub total_optional: bool,
}

/// One page of rows, its total and what its tokens are bound to.
pub(crate) struct Listing<Row> {
    page: Page<Row>,
    keyset: Keyset,
    total: Option<i64>,
}

/// A rendered page, ready for the List response.
pub(crate) struct ListPage<T> {
    pub items: Vec<T>,
    pub total_size: Option<i64>,
    pub next_page_token: String,
    pub previous_page_token: String,
}

impl<Row> Listing<Row> {
    /// The page's rows, to render (resources render whole pages at once).
    pub(crate) fn take_rows(&mut self) -> Vec<Row> {
        std::mem::take(&mut self.page.rows)
    }

    /// The response of `items`, this page's rows rendered in order, cut to
    /// the page's byte budget (see [`Page::fit`]).
    pub(crate) fn respond<T: Message>(mut self, mut items: Vec<T>) -> ListPage<T> {
        self.page
            .fit(&self.keyset, &mut items, Message::encoded_len);
        ListPage {
            items,
            total_size: self.total,
            next_page_token: self.page.next_page_token,
            previous_page_token: self.page.previous_page_token,
        }
    }
}

/// The request's page of `R` in `tenant`. Its parts are checked in order:
/// filter, order, page size, then offset or token.
pub(crate) async fn list<R>(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    request: ListRequest<'_>,
) -> Result<Listing<R::Row>, ResourceError>
where
    R: StoredResource,
    for<'a> Segments<'a, R>: Rows<Row = R::Row>,
    R::Query: SelectDsl<dsl::CountStar>,
    dsl::Select<R::Query, dsl::CountStar>: LoadQuery<'static, AsyncPgConnection, i64>,
{
    let filter = request
        .filter
        .map(|f| filter::compile(f, R::RESOURCE))
        .transpose()?;
    let key = sort::compile(request.order_by, R::RESOURCE)?;
    let size = page_size(request.page_size)?;
    let keyset = Keyset::new(
        key,
        R::RESOURCE,
        tenant,
        request.show_deleted,
        filter.as_ref(),
    );
    let start = keyset.start(request.offset, request.page_token)?;
    let source = Segments::<R> {
        tenant,
        show_deleted: request.show_deleted,
        filter: filter.as_ref(),
        key: keyset.key_text(),
        resource: PhantomData,
    };
    let page = paging::page(conn, &source, &keyset, &start, size).await?;
    let shown = page.rows.len() as i64;
    let total = match start {
        // Nothing follows a short page: the matches end on it.
        Start::Offset(offset) if shown < size && (offset == 0 || shown > 0) => Some(offset + shown),
        _ if request.total_optional && size > 0 => None,
        _ => {
            let counted: i64 = SelectDsl::select(source.matching(), dsl::count_star())
                .get_result(conn)
                .await?;
            // Counted by a statement of its own: rows written in between
            // never make the total contradict the page.
            let before = match start {
                Start::Offset(offset) if shown > 0 => offset,
                _ => 0,
            };
            let beyond = i64::from(!page.next_page_token.is_empty());
            Some(counted.max(before + shown + beyond))
        }
    };
    Ok(Listing {
        page,
        keyset,
        total,
    })
}

/// The rows a list reads, and the sort key selected next to each.
pub(crate) struct Segments<'a, R> {
    tenant: Uuid,
    show_deleted: bool,
    filter: Option<&'a SqlFilter>,
    key: Sql<Nullable<Text>>,
    resource: PhantomData<fn() -> R>,
}

/// A row with its sort key as text.
type Keyed<R> = (
    AsSelect<<R as StoredResource>::Row, Pg>,
    Sql<Nullable<Text>>,
);
type KeyedQuery<R> = dsl::Select<<R as StoredResource>::Query, Keyed<R>>;

impl<R: StoredResource> Segments<'_, R> {
    fn matching(&self) -> R::Query {
        let rows = R::scoped(self.tenant, self.show_deleted);
        match self.filter {
            Some(filter) => FilterDsl::filter(rows, filter.clone()),
            None => rows,
        }
    }
}

impl<R> Rows for Segments<'_, R>
where
    R: StoredResource,
    Keyed<R>: Expression,
    R::Query: SelectDsl<Keyed<R>>,
    KeyedQuery<R>: OrderDsl<Sql<Text>, Output = KeyedQuery<R>>
        + OffsetDsl<Output = KeyedQuery<R>>
        + LimitDsl<Output = KeyedQuery<R>>
        + LoadQuery<'static, AsyncPgConnection, (R::Row, Option<String>)>,
{
    type Row = R::Row;

    fn id(row: &R::Row) -> Uuid {
        R::id(row)
    }

    async fn fetch(
        &self,
        conn: &mut AsyncPgConnection,
        segment: &Segment,
        limit: i64,
    ) -> Fetched<R::Row> {
        let mut rows = self.matching();
        if let Some(predicate) = &segment.predicate {
            rows = FilterDsl::filter(rows, predicate.clone());
        }
        let rows = SelectDsl::select(rows, (R::Row::as_select(), self.key.clone()));
        let rows = OrderDsl::order(rows, segment.order.clone());
        let rows = LimitDsl::limit(OffsetDsl::offset(rows, segment.offset), limit);
        Ok(rows.load(conn).await?)
    }
}
