//! List requests and ListResponse bodies (RFC 7644 §3.4.2), shared by
//! `/Users` and `/Groups`.

use axum::http::StatusCode;
use axum::response::Response;
use identity_proto::v1::Filter;
use serde_json::{Value as Json, json};

use crate::error::ScimError;
use crate::filter::parse_filter;
use crate::http::{ScimQuery, scim_json};
use crate::schema::{LIST_RESPONSE, MAX_PAGE_SIZE, Resource};

/// `filter`, `startIndex` and `count` of a list request.
#[derive(Debug, PartialEq)]
pub struct ListParams {
    pub filter: Option<Filter>,
    /// 1-based; below 1 is treated as 1.
    pub start_index: i64,
    /// `None` lets the service pick its default page size; negative is 0.
    pub count: Option<i32>,
}

impl ListParams {
    /// Reads the parameters; the filter names attributes of `resource`.
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
        let start_index = integer("startIndex")?.unwrap_or(1).max(1);
        let count = integer("count")?
            .map(|c| c.clamp(0, i64::from(MAX_PAGE_SIZE)))
            .and_then(|c| i32::try_from(c).ok());
        Ok(ListParams {
            filter,
            start_index,
            count,
        })
    }
}

/// The opening of a ListResponse whose `Resources` are written after it;
/// ends with `"Resources":[`.
pub fn list_head(total_results: i64, start_index: i64, items_per_page: usize) -> String {
    let head = json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total_results,
        "startIndex": start_index,
        "itemsPerPage": items_per_page,
    });
    let mut text = head.to_string();
    text.pop();
    text.push_str(",\"Resources\":[");
    text
}

/// The end of a ListResponse begun with [`list_head`].
pub const LIST_TAIL: &str = "]}";

/// A ListResponse; the counts are JSON numbers, as Okta requires.
pub fn list_response(total_results: i64, start_index: i64, resources: Vec<Json>) -> Response {
    let body = json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total_results,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    });
    scim_json(StatusCode::OK, &body)
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
    fn list_parameters() {
        assert_eq!(
            params(&[]),
            Ok(ListParams {
                filter: None,
                start_index: 1,
                count: None
            })
        );
        let p = params(&[("startIndex", "0"), ("count", "-5")]);
        assert_eq!(
            p.as_ref().map(|p| (p.start_index, p.count)),
            Ok((1, Some(0)))
        );
        let p = params(&[("STARTINDEX", "11"), ("count", "5000")]);
        assert_eq!(
            p.as_ref().map(|p| (p.start_index, p.count)),
            Ok((11, Some(1000)))
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
    fn streamed_list_is_the_same_json() {
        let text = format!("{}{{\"id\":\"a\"}}{LIST_TAIL}", list_head(7, 3, 1));
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
}
