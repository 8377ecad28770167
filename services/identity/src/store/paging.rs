//! Pages of ListUsers and ListGroups: by offset (SCIM `startIndex`) or by
//! keyset cursor (RFC 9865 `cursor`), in the order of a [`SortKey`] with
//! ties broken by id.
//!
//! A keyset page is read with `(key, id) > ($key, $id)` over an index
//! whose columns are (tenant_id, key, id), so the 10,000th page costs what
//! the first does. NULL keys sort last when ascending and first when
//! descending: the order is split into the non-NULL and the NULL segment,
//! each one indexed range scan, read one after the other.
//!
//! Page tokens are opaque base64url: the direction, the key and id of the
//! row they continue from, and a check over those and the query (tenant,
//! filter, order, tombstones). A token altered or used with another query
//! fails the check: INVALID_CURSOR. The check is a digest, not a secret:
//! forging a token only ever reaches rows the caller may list anyway.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::sql_types::{Nullable, Text};
use diesel_async::AsyncPgConnection;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::attr::Resource;
use crate::db::StoreError;
use crate::filter::{Param, Sql, SqlFilter};
use crate::rpc::PageError;
use crate::sort::SortKey;

const TOKEN_VERSION: u8 = 1;
/// Bytes of the check at the end of a token.
const CHECK_LEN: usize = 16;

/// Where a row sits in the order: its sort key (as text) and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    pub value: Option<String>,
    pub id: Uuid,
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Start {
    /// The first page, `n` rows in.
    Offset(i64),
    /// The rows following this position (a next_page_token).
    After(Position),
    /// The rows preceding this position (a previous_page_token).
    Before(Position),
}

/// One query of a page: rows matching `predicate` (besides the list's own
/// filter) in `order`, skipping `offset`.
pub(crate) struct Segment {
    pub predicate: Option<SqlFilter>,
    pub order: Sql<Text>,
    pub offset: i64,
}

/// Bytes of encoded items one page carries at most (besides at least one
/// item): below the 4 MiB a gRPC client decodes by default, with room for
/// the response's other fields.
pub(crate) const PAGE_BYTES: usize = 3 * 1024 * 1024;

/// A page of rows and the tokens of its neighbours ("" when none).
#[derive(Debug)]
pub(crate) struct Page<R> {
    pub rows: Vec<R>,
    pub next_page_token: String,
    pub previous_page_token: String,
    /// Where each row sits, for tokens of a page cut by [`Page::fit`].
    positions: Vec<Position>,
    /// Read after its start (else before it, nearest first).
    forward: bool,
}

impl<R> Page<R> {
    /// Cuts `items` (this page's rows rendered, in the same order) to at
    /// most [`PAGE_BYTES`] of `encoded_len`, keeping at least one item and
    /// those nearest the page's start, and moves the token on the cut side
    /// to the last item kept. Nothing is skipped or repeated: the next
    /// (or, read backwards, the previous) page starts where this one ends.
    pub(crate) fn fit<T>(
        &mut self,
        keyset: &Keyset,
        items: &mut Vec<T>,
        encoded_len: impl Fn(&T) -> usize,
    ) {
        let fitting = |sizes: &mut dyn Iterator<Item = usize>| {
            let mut total = 0_usize;
            sizes
                .take_while(|size| {
                    total = total.saturating_add(*size);
                    total <= PAGE_BYTES
                })
                .count()
                .max(1)
        };
        if self.forward {
            let keep = fitting(&mut items.iter().map(&encoded_len));
            if keep < items.len() {
                items.truncate(keep);
                self.positions.truncate(keep);
                if let Some(last) = self.positions.last() {
                    self.next_page_token = keyset.token(false, last);
                }
            }
        } else {
            let keep = fitting(&mut items.iter().rev().map(&encoded_len));
            if keep < items.len() {
                let cut = items.len() - keep;
                items.drain(..cut);
                self.positions.drain(..cut.min(self.positions.len()));
                if let Some(first) = self.positions.first() {
                    self.previous_page_token = keyset.token(true, first);
                }
            }
        }
    }
}

/// Rows of one segment, each with its sort key as text.
pub(crate) type Fetched<R> = Result<Vec<(R, Option<String>)>, StoreError>;

/// How a store reads the rows of one segment.
pub(crate) trait Rows {
    type Row;

    fn id(row: &Self::Row) -> Uuid;

    /// Up to `limit` rows of `segment`, each with its sort key as text
    /// ([`Keyset::key_text`]). `Send`, so that a page read generically
    /// over resources can run inside an RPC.
    fn fetch(
        &self,
        conn: &mut AsyncPgConnection,
        segment: &Segment,
        limit: i64,
    ) -> impl Future<Output = Fetched<Self::Row>> + Send;
}

/// The order of one list query and the identity of the query its tokens
/// are bound to.
pub(crate) struct Keyset {
    key: SortKey,
    id_column: &'static str,
    query: [u8; 32],
}

impl Keyset {
    pub(crate) fn new(
        key: SortKey,
        resource: Resource,
        tenant: Uuid,
        show_deleted: bool,
        filter: Option<&SqlFilter>,
    ) -> Keyset {
        let id_column = match resource {
            Resource::User => "users.user_id",
            Resource::Group => "groups.group_id",
        };
        let mut hasher = Sha256::new();
        hasher.update(b"identity.v1 page_token\0");
        hasher.update(id_column.as_bytes());
        hasher.update(tenant.as_bytes());
        hasher.update([u8::from(show_deleted)]);
        match filter {
            Some(filter) => {
                hasher.update(b"F");
                filter.digest(&mut hasher);
            }
            None => hasher.update(b"-"),
        }
        key.digest(&mut hasher);
        Keyset {
            key,
            id_column,
            query: hasher.finalize().into(),
        }
    }

    /// Where a request's page starts: its token, else its offset.
    pub(crate) fn start(&self, offset: i64, token: &str) -> Result<Start, PageError> {
        if !token.is_empty() {
            return self.decode(token);
        }
        if offset < 0 {
            return Err(PageError::Invalid(format!(
                "offset must not be negative, got {offset}"
            )));
        }
        Ok(Start::Offset(offset))
    }

    fn check(&self, payload: &[u8]) -> [u8; CHECK_LEN] {
        let digest = Sha256::new()
            .chain_update(self.query)
            .chain_update(payload)
            .finalize();
        let mut check = [0; CHECK_LEN];
        check.copy_from_slice(&digest[..CHECK_LEN]);
        check
    }

    fn token(&self, before: bool, position: &Position) -> String {
        let mut bytes = vec![TOKEN_VERSION, if before { b'<' } else { b'>' }];
        bytes.extend_from_slice(position.id.as_bytes());
        match &position.value {
            Some(value) => {
                bytes.push(1);
                bytes.extend_from_slice(value.as_bytes());
            }
            None => bytes.push(0),
        }
        let check = self.check(&bytes);
        bytes.extend_from_slice(&check);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn decode(&self, token: &str) -> Result<Start, PageError> {
        let malformed = || PageError::Cursor("the page_token is malformed".into());
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| malformed())?;
        if bytes.len() < 2 + 16 + 1 + CHECK_LEN {
            return Err(malformed());
        }
        let (payload, check) = bytes.split_at(bytes.len() - CHECK_LEN);
        if payload[0] != TOKEN_VERSION || self.check(payload) != check {
            return Err(PageError::Cursor(
                "the page_token was altered or belongs to another query: \
                 send it with the filter and order of the list that returned it"
                    .into(),
            ));
        }
        let id = Uuid::from_slice(&payload[2..18]).map_err(|_| malformed())?;
        let value = match (payload[18], &payload[19..]) {
            (0, []) => None,
            // A NUL never comes from a stored key: Postgres cannot hold it.
            (1, text) if !text.contains(&0) => {
                Some(String::from_utf8(text.to_vec()).map_err(|_| malformed())?)
            }
            _ => return Err(malformed()),
        };
        let position = Position { value, id };
        match payload[1] {
            b'>' => Ok(Start::After(position)),
            b'<' => Ok(Start::Before(position)),
            _ => Err(malformed()),
        }
    }

    /// The sort key of a row as text, selected next to it for its tokens.
    pub(crate) fn key_text(&self) -> Sql<Nullable<Text>> {
        let mut sql = Sql::<Nullable<Text>>::text("CAST(");
        sql.push(&self.key.expr).push_sql(" AS text)");
        sql
    }

    /// `key, id` ascending or descending (NULLs last ascending, first
    /// descending: Postgres' defaults).
    fn order(&self, ascending: bool) -> Sql<Text> {
        let direction = if ascending { " ASC, " } else { " DESC, " };
        let mut sql = Sql::<Text>::text("");
        sql.push(&self.key.expr)
            .push_sql(direction)
            .push_sql(self.id_column)
            .push_sql(if ascending { " ASC" } else { " DESC" });
        sql
    }

    fn offset_segment(&self, offset: i64) -> Segment {
        Segment {
            predicate: None,
            order: self.order(!self.key.descending),
            offset,
        }
    }

    /// `key IS [NOT] NULL`, optionally with `(key, id)` beyond `from`.
    fn bounded(&self, null: bool, from: Option<&Position>, ascending: bool) -> Option<SqlFilter> {
        let comparison = if ascending { " > " } else { " < " };
        let mut sql = SqlFilter::text("(");
        match (null, from) {
            (true, None) => {
                sql.push(&self.key.expr).push_sql(" IS NULL");
            }
            (true, Some(from)) => {
                sql.push(&self.key.expr)
                    .push_sql(" IS NULL AND ")
                    .push_sql(self.id_column)
                    .push_sql(comparison)
                    .push_bind(Param::Uuid(from.id));
            }
            (false, None) if !self.key.nullable => return None,
            (false, None) => {
                sql.push(&self.key.expr).push_sql(" IS NOT NULL");
            }
            (false, Some(from)) => {
                if self.key.nullable {
                    sql.push(&self.key.expr).push_sql(" IS NOT NULL AND ");
                }
                sql.push_sql("(")
                    .push(&self.key.expr)
                    .push_sql(", ")
                    .push_sql(self.id_column)
                    .push_sql(")")
                    .push_sql(comparison)
                    .push_sql("(CAST(")
                    .push_bind(Param::Text(from.value.clone().unwrap_or_default()))
                    .push_sql(&format!(" AS {}), ", self.key.cast))
                    .push_bind(Param::Uuid(from.id))
                    .push_sql(")");
            }
        }
        sql.push_sql(")");
        Some(sql)
    }

    /// The queries that read, in traversal order, the rows after `from`
    /// (`forward`) or before it, nearest first.
    pub(crate) fn segments(&self, from: Option<&Position>, forward: bool) -> Vec<Segment> {
        // Ascending in the database's order (NULLs last)?
        let ascending = forward != self.key.descending;
        let order = self.order(ascending);
        let segment = |predicate| Segment {
            predicate,
            order: order.clone(),
            offset: 0,
        };
        let non_null_start = from.is_some_and(|p| p.value.is_some());
        let null_start = from.is_some_and(|p| p.value.is_none());
        let mut segments = Vec::with_capacity(2);
        let non_null = || segment(self.bounded(false, from.filter(|_| non_null_start), ascending));
        let null = |from: Option<&Position>| segment(self.bounded(true, from, ascending));
        if ascending {
            // NULLs come after every value.
            if !null_start {
                segments.push(non_null());
            }
            if self.key.nullable {
                segments.push(null(from.filter(|_| null_start)));
            }
        } else {
            if self.key.nullable && !non_null_start {
                segments.push(null(from.filter(|_| null_start)));
            }
            if from.is_none() || non_null_start || self.key.nullable {
                segments.push(non_null());
            }
        }
        segments
    }
}

/// Reads up to `limit` rows over `segments`, in order.
async fn collect<S: Rows>(
    conn: &mut AsyncPgConnection,
    source: &S,
    segments: &[Segment],
    limit: i64,
) -> Result<Vec<(S::Row, Position)>, StoreError> {
    let mut rows = Vec::new();
    for segment in segments {
        let wanted = limit - rows.len() as i64;
        if wanted <= 0 {
            break;
        }
        for (row, value) in source.fetch(conn, segment, wanted).await? {
            let id = S::id(&row);
            rows.push((row, Position { value, id }));
        }
    }
    Ok(rows)
}

/// The page of `size` rows at `start`, with the tokens of the pages around it.
pub(crate) async fn page<S: Rows>(
    conn: &mut AsyncPgConnection,
    source: &S,
    keyset: &Keyset,
    start: &Start,
    size: i64,
) -> Result<Page<S::Row>, StoreError> {
    if size <= 0 {
        return Ok(Page {
            rows: Vec::new(),
            next_page_token: String::new(),
            previous_page_token: String::new(),
            positions: Vec::new(),
            forward: true,
        });
    }
    // One row more than asked tells whether the direction read goes on.
    let (mut rows, forward) = match start {
        Start::Offset(offset) => {
            let segment = keyset.offset_segment(*offset);
            (collect(conn, source, &[segment], size + 1).await?, true)
        }
        Start::After(from) => {
            let segments = keyset.segments(Some(from), true);
            (collect(conn, source, &segments, size + 1).await?, true)
        }
        Start::Before(from) => {
            let segments = keyset.segments(Some(from), false);
            (collect(conn, source, &segments, size + 1).await?, false)
        }
    };
    let more = rows.len() as i64 > size;
    rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    if !forward {
        rows.reverse();
    }
    let first = rows.first().map(|(_, p)| p.clone());
    let last = rows.last().map(|(_, p)| p.clone());
    // A token continues from a row of the page that issued it, so that
    // page lies on the other side: no query asks. (Were its rows deleted
    // since, that page comes back empty, with no token onward.)
    let (before, after) = match start {
        Start::Offset(offset) => (*offset > 0 && first.is_some(), more),
        Start::After(_) => (first.is_some(), more),
        Start::Before(_) => (more, last.is_some()),
    };
    let token = |wanted: bool, before: bool, position: Option<&Position>| match position {
        Some(position) if wanted => keyset.token(before, position),
        _ => String::new(),
    };
    let (rows, positions) = rows.into_iter().unzip();
    Ok(Page {
        next_page_token: token(after, false, last.as_ref()),
        previous_page_token: token(before, true, first.as_ref()),
        rows,
        positions,
        forward,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sort;
    use diesel::pg::Pg;
    use identity_proto::v1::{AttributePath, SortOrder};

    fn keyset(attribute: &str, descending: bool) -> Keyset {
        let order = SortOrder {
            path: Some(AttributePath {
                attribute: attribute.into(),
                ..AttributePath::default()
            }),
            descending,
        };
        let key = sort::compile(Some(&order), Resource::User).unwrap_or_else(|e| panic!("{e}"));
        Keyset::new(key, Resource::User, Uuid::from_u128(1), false, None)
    }

    fn debug<T>(sql: &Sql<T>) -> String {
        diesel::debug_query::<Pg, _>(&sql.clone().typed::<Text>()).to_string()
    }

    fn plan(k: &Keyset, from: Option<&Position>, forward: bool) -> Vec<String> {
        k.segments(from, forward)
            .iter()
            .map(|s| {
                let mut sql = s.predicate.clone().unwrap_or_else(|| SqlFilter::text("-"));
                sql.push_sql(" ORDER BY ").push(&s.order);
                debug(&sql)
            })
            .collect()
    }

    fn at(value: Option<&str>) -> Position {
        Position {
            value: value.map(Into::into),
            id: Uuid::from_u128(9),
        }
    }

    const ID9: &str = "00000000-0000-0000-0000-000000000009";

    #[test]
    fn forged_tokens_with_nul_are_malformed() {
        let k = keyset("userName", false);
        let token = k.token(
            false,
            &Position {
                value: Some("a\u{0}".into()),
                id: Uuid::from_u128(1),
            },
        );
        assert!(matches!(k.start(0, &token), Err(PageError::Cursor(_))));
    }

    #[test]
    fn pages_fit_their_byte_budget_and_continue_where_they_stop() {
        let k = keyset("userName", false);
        let position = |n: u128| Position {
            value: Some(format!("u{n}")),
            id: Uuid::from_u128(n),
        };
        let page = |forward: bool| Page {
            rows: Vec::<()>::new(),
            next_page_token: "next".into(),
            previous_page_token: "previous".into(),
            positions: (1..=5).map(position).collect(),
            forward,
        };
        let mib = |_: &u128| 1024 * 1024;

        let mut forward = page(true);
        let mut items: Vec<u128> = (1..=5).collect();
        forward.fit(&k, &mut items, mib);
        assert_eq!(items, [1, 2, 3]);
        assert_eq!(forward.previous_page_token, "previous");
        assert_eq!(
            k.start(0, &forward.next_page_token).ok(),
            Some(Start::After(position(3)))
        );

        let mut backward = page(false);
        let mut items: Vec<u128> = (1..=5).collect();
        backward.fit(&k, &mut items, mib);
        assert_eq!(items, [3, 4, 5]);
        assert_eq!(backward.next_page_token, "next");
        assert_eq!(
            k.start(0, &backward.previous_page_token).ok(),
            Some(Start::Before(position(3)))
        );

        let mut huge = page(true);
        let mut items: Vec<u128> = (1..=5).collect();
        huge.fit(&k, &mut items, |_| 5 * 1024 * 1024);
        assert_eq!(items, [1], "at least one item");
        let mut small = page(true);
        let mut items: Vec<u128> = (1..=5).collect();
        small.fit(&k, &mut items, |_| 10);
        assert_eq!((items.len(), small.next_page_token.as_str()), (5, "next"));
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let k = keyset("displayName", false);
        for position in [at(Some("ada | lovelace")), at(None), at(Some(""))] {
            for before in [false, true] {
                let token = k.token(before, &position);
                let expected = if before {
                    Start::Before(position.clone())
                } else {
                    Start::After(position.clone())
                };
                assert_eq!(k.start(0, &token).ok(), Some(expected));
            }
        }
        let token = k.token(false, &at(Some("m")));
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap_or_default();
        bytes[19] ^= 1;
        let altered = URL_SAFE_NO_PAD.encode(&bytes);
        for bad in [altered.as_str(), "garbage!", "AAAA"] {
            assert!(
                matches!(k.start(0, bad), Err(PageError::Cursor(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn tokens_belong_to_their_query() {
        let k = keyset("displayName", false);
        let token = k.token(false, &at(Some("m")));
        let other_order = keyset("displayName", true);
        let other_attribute = keyset("userName", false);
        let key = sort::compile(None, Resource::User).unwrap_or_else(|e| panic!("{e}"));
        let filter = SqlFilter::text("TRUE");
        let filtered = Keyset::new(
            key.clone(),
            Resource::User,
            Uuid::from_u128(1),
            false,
            Some(&filter),
        );
        let other_tenant =
            Keyset::new(key.clone(), Resource::User, Uuid::from_u128(2), false, None);
        let deleted = Keyset::new(key.clone(), Resource::User, Uuid::from_u128(1), true, None);
        let groups = Keyset::new(key, Resource::Group, Uuid::from_u128(1), false, None);
        for other in [
            other_order,
            other_attribute,
            filtered,
            other_tenant,
            deleted,
            groups,
        ] {
            assert!(matches!(other.start(0, &token), Err(PageError::Cursor(_))));
        }
    }

    #[test]
    fn offsets_without_token() {
        let k = keyset("displayName", false);
        assert_eq!(k.start(7, "").ok(), Some(Start::Offset(7)));
        assert!(matches!(k.start(-1, ""), Err(PageError::Invalid(_))));
        assert_eq!(
            debug(&k.offset_segment(3).order),
            "lower(users.display_name) ASC, users.user_id ASC -- binds: []"
        );
    }

    #[test]
    fn non_null_keys_read_one_range() {
        let k = keyset("userName", false);
        assert_eq!(
            plan(&k, None, true),
            ["- ORDER BY lower(users.user_name) ASC, users.user_id ASC -- binds: []"]
        );
        assert_eq!(
            plan(&k, Some(&at(Some("m"))), true),
            [format!(
                r#"((lower(users.user_name), users.user_id) > (CAST($1 AS text), $2)) ORDER BY lower(users.user_name) ASC, users.user_id ASC -- binds: ["m", {ID9}]"#
            )]
        );
        assert_eq!(
            plan(&k, Some(&at(Some("m"))), false),
            [format!(
                r#"((lower(users.user_name), users.user_id) < (CAST($1 AS text), $2)) ORDER BY lower(users.user_name) DESC, users.user_id DESC -- binds: ["m", {ID9}]"#
            )]
        );
        // Descending reads the index backwards.
        let desc = keyset("meta.lastModified", true);
        assert!(
            plan(&desc, Some(&at(Some("2025-01-01 00:00:00+00"))), true)[0]
                .contains("< (CAST($1 AS timestamptz), $2)")
        );
    }

    #[test]
    fn nullable_keys_read_values_then_nulls() {
        let k = keyset("displayName", false);
        let key = "lower(users.display_name)";
        let order_asc = format!("ORDER BY {key} ASC, users.user_id ASC");
        let order_desc = format!("ORDER BY {key} DESC, users.user_id DESC");
        // Ascending from the start: values, then NULLs.
        assert_eq!(
            plan(&k, None, true),
            [
                format!("({key} IS NOT NULL) {order_asc} -- binds: []"),
                format!("({key} IS NULL) {order_asc} -- binds: []"),
            ]
        );
        // After a value: the rest of the values, then every NULL.
        let after_value = plan(&k, Some(&at(Some("m"))), true);
        assert_eq!(after_value.len(), 2);
        assert!(after_value[0].starts_with(&format!(
            "({key} IS NOT NULL AND ({key}, users.user_id) > (CAST($1 AS text), $2))"
        )));
        assert!(after_value[1].starts_with(&format!("({key} IS NULL) {order_asc}")));
        // After a NULL: only later NULLs.
        assert_eq!(
            plan(&k, Some(&at(None)), true),
            [format!(
                "({key} IS NULL AND users.user_id > $1) {order_asc} -- binds: [{ID9}]"
            )]
        );
        // Before a NULL: earlier NULLs, then every value, nearest first.
        let before_null = plan(&k, Some(&at(None)), false);
        assert_eq!(
            before_null,
            [
                format!("({key} IS NULL AND users.user_id < $1) {order_desc} -- binds: [{ID9}]"),
                format!("({key} IS NOT NULL) {order_desc} -- binds: []"),
            ]
        );
        // Before a value: only earlier values.
        let before_value = plan(&k, Some(&at(Some("m"))), false);
        assert_eq!(before_value.len(), 1);
        assert!(before_value[0].contains("< (CAST($1 AS text), $2)"));
        // Descending lists NULLs first: its forward is ascending's backward.
        let desc = keyset("displayName", true);
        assert_eq!(plan(&desc, None, true), {
            let mut p = plan(&k, None, true);
            p.reverse();
            p.iter()
                .map(|s| s.replace(" ASC", " DESC"))
                .collect::<Vec<_>>()
        });
        assert_eq!(
            plan(&desc, Some(&at(Some("m"))), true),
            plan(&k, Some(&at(Some("m"))), false)
        );
    }

    #[test]
    fn key_text_casts_the_key() {
        let k = keyset("title", false);
        assert_eq!(
            diesel::debug_query::<Pg, _>(&k.key_text()).to_string(),
            "CAST(lower((users.attributes->>'title')) AS text) -- binds: []"
        );
    }
}
