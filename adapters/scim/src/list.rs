//! List requests and ListResponse bodies (RFC 7644 §3.4.2), shared by
//! `/Users`, `/Groups` and their `.search` forms: filter, sorting
//! (§3.4.2.3), and either index pagination (`startIndex`, §3.4.2.4) or
//! cursor pagination (RFC 9865: `cursor`, `nextCursor`, `previousCursor`),
//! whose cursors are the service's keyset page tokens. A SearchRequest body
//! (§3.4.3) is read into the same query parameters here.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use identity_proto::v1::{Filter, SortOrder};
use serde_json::{Map, Value as Json, json};

use crate::AppState;
use crate::error::ScimError;
use crate::http::{ScimJson, scim_json};
use crate::wire::bounds::{self, MAX_CURSOR_BYTES, MAX_PATH_BYTES};
use crate::wire::filter::parse_filter;
use crate::wire::query::ScimQuery;
use crate::wire::schema::{self, LIST_RESPONSE, MAX_PAGE_SIZE, PathTarget, Resource};
use crate::wire::urns::SEARCH_REQUEST;

/// How the client pages through results.
#[derive(Debug, PartialEq)]
pub enum Page {
    /// 1-based `startIndex`; below 1 is treated as 1.
    Index(i64),
    /// An RFC 9865 cursor; empty asks for the first page.
    Cursor(String),
}

/// `filter`, sorting, paging and `count` of a list request.
#[derive(Debug, PartialEq)]
pub struct ListParams {
    pub filter: Option<Filter>,
    pub order_by: Option<SortOrder>,
    pub page: Page,
    /// `None` lets the service pick its default page size; negative is 0.
    pub count: Option<i32>,
}

impl ListParams {
    /// Reads the parameters; the filter and sortBy name attributes of `resource`.
    pub fn parse(resource: Resource, query: &ScimQuery) -> Result<Self, ScimError> {
        let filter = match query.get("filter") {
            Some(text) if !text.is_empty() => Some(
                parse_filter(resource, text)
                    .map_err(|e| ScimError::invalid_filter(format!("invalid filter: {e}")))?,
            ),
            _ => None,
        };
        let integer = |name: &str| -> Result<Option<i64>, ScimError> {
            query
                .get(name)
                .filter(|v| !v.is_empty())
                .map(|v| {
                    v.parse::<i64>().map_err(|_| {
                        ScimError::invalid_value(format!("{name} must be an integer, not \"{v}\""))
                    })
                })
                .transpose()
        };
        let start_index = integer("startIndex")?;
        let page = match query.get("cursor") {
            Some(_) if start_index.is_some() => {
                return Err(ScimError::invalid_value(
                    "startIndex and cursor are two ways of paging; send one of them",
                ));
            }
            Some(cursor) => Page::Cursor(cursor_text(cursor)?),
            None => Page::Index(start_index.unwrap_or(1).max(1)),
        };
        let count = integer("count")?
            .map(|c| c.clamp(0, i64::from(MAX_PAGE_SIZE)))
            .and_then(|c| i32::try_from(c).ok());
        Ok(ListParams {
            filter,
            order_by: sort_order(resource, query)?,
            page,
            count,
        })
    }

    /// The 0-based offset for the service; cursors carry their own position.
    pub fn offset(&self) -> i64 {
        match self.page {
            Page::Index(start_index) => start_index - 1,
            Page::Cursor(_) => 0,
        }
    }

    /// The service page token a cursor stands for ("" for the first page).
    pub fn page_token(&self) -> String {
        match &self.page {
            Page::Index(_) => String::new(),
            Page::Cursor(cursor) => cursor.clone(),
        }
    }

    /// Whether the page may come without `totalResults`: RFC 9865 lets
    /// cursor pages omit a total the server cannot give cheaply.
    pub fn total_optional(&self) -> bool {
        matches!(self.page, Page::Cursor(_))
    }

    /// What the ListResponse says about this page.
    pub fn page_info(
        &self,
        total_results: Option<i64>,
        next_token: &str,
        previous_token: &str,
    ) -> PageInfo {
        let present = |token: &str| (!token.is_empty()).then(|| token.to_owned());
        match &self.page {
            Page::Index(start_index) => PageInfo {
                total_results,
                start_index: Some(*start_index),
                next_cursor: None,
                previous_cursor: None,
            },
            Page::Cursor(_) => PageInfo {
                total_results,
                start_index: None,
                next_cursor: present(next_token),
                previous_cursor: present(previous_token),
            },
        }
    }
}

/// RFC 9865 §2: cursors are made of URL-unreserved characters (RFC 3986
/// §2.3); anything else cannot be one of ours.
fn cursor_text(cursor: &str) -> Result<String, ScimError> {
    let valid = cursor.len() <= MAX_CURSOR_BYTES
        && cursor
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'));
    if valid {
        Ok(cursor.to_owned())
    } else {
        Err(ScimError::invalid_cursor(
            "the cursor is not one this server issued; send an empty cursor for the first page \
             and then the nextCursor or previousCursor of a response",
        ))
    }
}

/// `sortBy` and `sortOrder` (ascending, the default, or descending, in any
/// case). Without `sortBy`, `sortOrder` changes nothing.
fn sort_order(resource: Resource, query: &ScimQuery) -> Result<Option<SortOrder>, ScimError> {
    let descending = match query.get("sortOrder").filter(|v| !v.is_empty()) {
        None => false,
        Some(order) if order.eq_ignore_ascii_case("ascending") => false,
        Some(order) if order.eq_ignore_ascii_case("descending") => true,
        Some(order) => {
            return Err(ScimError::invalid_value(format!(
                "sortOrder must be \"ascending\" or \"descending\", not \"{order}\""
            )));
        }
    };
    let Some(sort_by) = query.get("sortBy").filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if sort_by.len() > MAX_PATH_BYTES {
        return Err(ScimError::invalid_path(format!(
            "sortBy is {} bytes long; at most {MAX_PATH_BYTES} are accepted",
            sort_by.len()
        )));
    }
    if sort_by.contains('\0') {
        return Err(ScimError::invalid_path(
            "sortBy contains a NUL character, which no attribute name has",
        ));
    }
    match schema::parse_attr_path(resource, sort_by) {
        Some(PathTarget::Attribute(path)) => Ok(Some(SortOrder {
            path: Some(path),
            descending,
        })),
        _ => Err(ScimError::invalid_path(format!(
            "sortBy \"{}\" is not an attribute path",
            bounds::printable(sort_by)
        ))),
    }
}

/// The counts and cursors of one ListResponse page.
#[derive(Debug, Clone, PartialEq)]
pub struct PageInfo {
    /// Absent only on cursor pages whose total was not counted.
    pub total_results: Option<i64>,
    /// Index pagination only.
    pub start_index: Option<i64>,
    pub next_cursor: Option<String>,
    pub previous_cursor: Option<String>,
}

impl PageInfo {
    /// A page that is the whole result, e.g. the discovery lists.
    pub fn whole(total_results: i64) -> Self {
        PageInfo {
            total_results: Some(total_results),
            start_index: Some(1),
            next_cursor: None,
            previous_cursor: None,
        }
    }

    /// The ListResponse attributes; the counts are JSON numbers, as Okta requires.
    fn head(&self, items_per_page: usize) -> Map<String, Json> {
        let mut head = Map::new();
        head.insert("schemas".into(), json!([LIST_RESPONSE]));
        if let Some(total_results) = self.total_results {
            head.insert("totalResults".into(), total_results.into());
        }
        if let Some(start_index) = self.start_index {
            head.insert("startIndex".into(), start_index.into());
        }
        head.insert("itemsPerPage".into(), items_per_page.into());
        if let Some(next) = &self.next_cursor {
            head.insert("nextCursor".into(), next.clone().into());
        }
        if let Some(previous) = &self.previous_cursor {
            head.insert("previousCursor".into(), previous.clone().into());
        }
        head
    }
}

/// The opening of a ListResponse whose `Resources` are written after it;
/// ends with `"Resources":[`.
pub fn list_head(page: &PageInfo, items_per_page: usize) -> String {
    let mut text = Json::Object(page.head(items_per_page)).to_string();
    text.pop();
    text.push_str(",\"Resources\":[");
    text
}

/// The end of a ListResponse begun with [`list_head`].
pub const LIST_TAIL: &str = "]}";

/// A ListResponse with all its resources at hand.
pub fn list_response(page: &PageInfo, resources: Vec<Json>) -> Response {
    let mut body = page.head(resources.len());
    body.insert("Resources".into(), Json::Array(resources));
    scim_json(StatusCode::OK, &Json::Object(body))
}

/// What a list is asked with: the query string of a GET, or the
/// SearchRequest body of a POST to `.search` (RFC 7644 §3.4.3), so that one
/// handler serves both.
pub struct ListRequest(pub ScimQuery);

impl FromRequest<AppState> for ListRequest {
    type Rejection = ScimError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ScimError> {
        if request.method() == Method::POST {
            let ScimJson(body) = ScimJson::from_request(request, state).await?;
            return Ok(ListRequest(search_request(body)?));
        }
        let (mut parts, _) = request.into_parts();
        Ok(ListRequest(
            ScimQuery::from_request_parts(&mut parts, state).await?,
        ))
    }
}

/// The parameters of a SearchRequest body as list query parameters.
/// `attributes` and `excludedAttributes` are lists of names (a
/// comma-separated string is accepted too); `startIndex` and `count` are
/// integers; unknown members are ignored.
fn search_request(body: Json) -> Result<ScimQuery, ScimError> {
    let Json::Object(body) = body else {
        return Err(ScimError::invalid_syntax(
            "a SearchRequest must be a JSON object",
        ));
    };
    let mut pairs = Vec::new();
    for (key, value) in body {
        if value.is_null() {
            continue;
        }
        let Some(name) = [
            "schemas",
            "attributes",
            "excludedAttributes",
            "filter",
            "sortBy",
            "sortOrder",
            "startIndex",
            "count",
            "cursor",
        ]
        .into_iter()
        .find(|name| key.eq_ignore_ascii_case(name)) else {
            continue;
        };
        let text = match (name, value) {
            ("schemas", value) => {
                check_schemas(&value)?;
                continue;
            }
            ("attributes" | "excludedAttributes", Json::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Json::String(s) => Ok(s),
                    other => Err(ScimError::invalid_value(format!(
                        "{name} must list attribute names, not {other}"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            ("startIndex" | "count", Json::Number(n)) if n.is_i64() => n.to_string(),
            ("startIndex" | "count", other) => {
                return Err(ScimError::invalid_value(format!(
                    "{name} must be an integer, not {other}"
                )));
            }
            (_, Json::String(s)) => s,
            (_, other) => {
                return Err(ScimError::invalid_value(format!(
                    "{name} must be a string, not {other}"
                )));
            }
        };
        pairs.push((name.to_owned(), text));
    }
    Ok(ScimQuery(pairs))
}

fn check_schemas(value: &Json) -> Result<(), ScimError> {
    let listed = value.as_array().is_some_and(|urns| {
        urns.iter().any(|urn| {
            urn.as_str()
                .is_some_and(|u| u.eq_ignore_ascii_case(SEARCH_REQUEST))
        })
    });
    if listed {
        Ok(())
    } else {
        Err(ScimError::invalid_value(format!(
            "schemas must list {SEARCH_REQUEST}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_proto::v1::{comparison, filter::Expression};

    fn params(pairs: &[(&str, &str)]) -> Result<ListParams, ScimError> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ListParams::parse(Resource::User, &ScimQuery(owned))
    }

    #[test]
    fn sort_by_and_cursor_lengths_are_bounded() {
        let scim_type = |pairs: &[(&str, &str)]| params(pairs).err().and_then(|e| e.scim_type);
        let long_sort = "a".repeat(MAX_PATH_BYTES + 1);
        assert_eq!(
            scim_type(&[("sortBy", &long_sort)]),
            Some(crate::error::ScimType::InvalidPath)
        );
        assert!(params(&[("sortBy", &"a".repeat(MAX_PATH_BYTES))]).is_ok());
        let long_cursor = "a".repeat(MAX_CURSOR_BYTES + 1);
        assert_eq!(
            scim_type(&[("cursor", &long_cursor)]),
            Some(crate::error::ScimType::InvalidCursor)
        );
        assert!(params(&[("cursor", &"a".repeat(MAX_CURSOR_BYTES))]).is_ok());
    }

    #[test]
    fn list_parameters() {
        assert_eq!(
            params(&[]),
            Ok(ListParams {
                filter: None,
                order_by: None,
                page: Page::Index(1),
                count: None
            })
        );
        let p = params(&[("startIndex", "0"), ("count", "-5")]);
        assert_eq!(
            p.as_ref().map(|p| (&p.page, p.count)),
            Ok((&Page::Index(1), Some(0)))
        );
        let p = params(&[("STARTINDEX", "11"), ("count", "5000")]);
        assert_eq!(
            p.as_ref().map(|p| (&p.page, p.count, p.offset())),
            Ok((&Page::Index(11), Some(1000), 10))
        );
        let p = params(&[("filter", "userName eq \"A@B.C\"")]);
        let Ok(ListParams {
            filter:
                Some(Filter {
                    expression: Some(Expression::Comparison(c)),
                }),
            ..
        }) = p
        else {
            panic!("filter expected: {p:?}")
        };
        assert_eq!(c.operator, comparison::Operator::Eq as i32);
        let err = params(&[("count", "ten")]).err().and_then(|e| e.scim_type);
        assert_eq!(err, Some(crate::error::ScimType::InvalidValue));
        let err = params(&[("filter", "userName eq")])
            .err()
            .and_then(|e| e.scim_type);
        assert_eq!(err, Some(crate::error::ScimType::InvalidFilter));
    }

    #[test]
    fn sorting() {
        let order = |pairs: &[(&str, &str)]| {
            params(pairs).map(|p| {
                p.order_by.map(|o| {
                    let path = o.path.unwrap_or_default();
                    (
                        path.schema,
                        path.attribute,
                        path.sub_attribute,
                        o.descending,
                    )
                })
            })
        };
        assert_eq!(order(&[("sortOrder", "descending")]), Ok(None));
        assert_eq!(
            order(&[("sortBy", "NAME.familyname")]),
            Ok(Some(("".into(), "name".into(), "familyName".into(), false)))
        );
        assert_eq!(
            order(&[("sortBy", "department"), ("SORTORDER", "DESCENDING")]),
            Ok(Some((
                schema::ENTERPRISE_USER.into(),
                "department".into(),
                "".into(),
                true
            )))
        );
        let err = params(&[("sortBy", "userName"), ("sortOrder", "up")]).err();
        assert_eq!(
            err.and_then(|e| e.scim_type),
            Some(crate::error::ScimType::InvalidValue)
        );
        for bad in ["emails[type eq \"work\"]", "a b", schema::ENTERPRISE_USER] {
            let err = params(&[("sortBy", bad)]).err();
            assert_eq!(
                err.and_then(|e| e.scim_type),
                Some(crate::error::ScimType::InvalidPath),
                "{bad}"
            );
        }
    }

    #[test]
    fn cursors() {
        let p = params(&[("cursor", ""), ("count", "2")]);
        assert_eq!(
            p.as_ref().map(|p| (&p.page, p.offset(), p.page_token())),
            Ok((&Page::Cursor(String::new()), 0, String::new()))
        );
        let p = params(&[("cursor", "b2Zmc2V0OjI-_.~")]);
        assert_eq!(
            p.as_ref().map(ListParams::page_token),
            Ok("b2Zmc2V0OjI-_.~".to_owned())
        );
        let err = params(&[("cursor", "not a cursor!")]).err();
        assert_eq!(
            err.and_then(|e| e.scim_type),
            Some(crate::error::ScimType::InvalidCursor)
        );
        let err = params(&[("cursor", "abc"), ("startIndex", "2")]).err();
        assert_eq!(
            err.and_then(|e| e.scim_type),
            Some(crate::error::ScimType::InvalidValue)
        );
        let Ok(p) = params(&[("cursor", "")]) else {
            panic!("empty cursor rejected")
        };
        assert!(p.total_optional());
        assert_eq!(
            p.page_info(Some(5), "next", ""),
            PageInfo {
                total_results: Some(5),
                start_index: None,
                next_cursor: Some("next".into()),
                previous_cursor: None,
            }
        );
        let text = list_head(&p.page_info(Some(5), "n", "p"), 2);
        assert!(text.contains("\"nextCursor\":\"n\""), "{text}");
        assert!(text.contains("\"previousCursor\":\"p\""), "{text}");
        assert!(!text.contains("startIndex"), "{text}");
        let uncounted = list_head(&p.page_info(None, "n", ""), 2);
        assert!(!uncounted.contains("totalResults"), "{uncounted}");
        assert!(uncounted.contains("\"itemsPerPage\":2"), "{uncounted}");
    }

    #[test]
    fn streamed_list_is_the_same_json() {
        let page = PageInfo {
            start_index: Some(3),
            ..PageInfo::whole(7)
        };
        let text = format!("{}{{\"id\":\"a\"}}{LIST_TAIL}", list_head(&page, 1));
        let parsed: Result<Json, _> = serde_json::from_str(&text);
        assert_eq!(
            parsed.ok(),
            Some(json!({
                "schemas": [LIST_RESPONSE],
                "totalResults": 7,
                "startIndex": 3,
                "itemsPerPage": 1,
                "Resources": [{"id": "a"}],
            }))
        );
    }

    // A SearchRequest body (POST .search) read as list parameters.

    /// The parameters, sorted: a JSON object has no order.
    fn pairs(body: Json) -> Result<Vec<(String, String)>, ScimError> {
        search_request(body).map(|q| {
            let mut pairs = q.0;
            pairs.sort();
            pairs
        })
    }

    #[test]
    fn search_request_becomes_list_parameters() {
        let out = pairs(json!({
            "schemas": [SEARCH_REQUEST],
            "attributes": ["displayName", "userName"],
            "excludedAttributes": "emails",
            "Filter": "userName sw \"a\"",
            "sortBy": "userName",
            "sortOrder": "descending",
            "startIndex": 2,
            "count": 10,
            "unknown": {"ignored": true},
            "cursor": null,
        }));
        assert_eq!(
            out,
            Ok(vec![
                ("attributes".into(), "displayName,userName".into()),
                ("count".into(), "10".into()),
                ("excludedAttributes".into(), "emails".into()),
                ("filter".into(), "userName sw \"a\"".into()),
                ("sortBy".into(), "userName".into()),
                ("sortOrder".into(), "descending".into()),
                ("startIndex".into(), "2".into()),
            ])
        );
        assert_eq!(pairs(json!({})), Ok(Vec::new()));
        assert_eq!(
            pairs(json!({"cursor": ""})),
            Ok(vec![("cursor".into(), String::new())])
        );
    }

    #[test]
    fn malformed_search_requests() {
        let scim_type = |body: Json| pairs(body).err().and_then(|e| e.scim_type);
        assert_eq!(
            scim_type(json!([])),
            Some(crate::error::ScimType::InvalidSyntax)
        );
        for body in [
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]}),
            json!({"count": "ten"}),
            json!({"startIndex": 1.5}),
            json!({"attributes": [1]}),
            json!({"filter": 3}),
        ] {
            assert_eq!(
                scim_type(body.clone()),
                Some(crate::error::ScimType::InvalidValue),
                "{body}"
            );
        }
    }
}
