//! `POST /Bulk` (RFC 7644 §3.7): many operations in one request, each run
//! through the same code as its own endpoint and each atomic on its own
//! (there is no transaction across operations, as §3.7 allows).
//!
//! `bulkId` references: a POST may carry a `bulkId`, and later (or earlier)
//! operations may name the created resource as `bulkId:<id>`, either as a
//! whole string value anywhere in `data` (a group member's `value`) or as the
//! id in `path` (`/Users/bulkId:qwerty`). Operations run in request order,
//! except that one referring to a bulkId whose POST has not run yet waits
//! until it has. A reference to a bulkId that failed, that no operation
//! defines, or that is part of a cycle fails with 409 (§3.7.3).
//!
//! Limits, advertised in /ServiceProviderConfig: at most [`MAX_OPERATIONS`]
//! operations and the adapter's body limit as `maxPayloadSize`; over either,
//! the whole request gets 413 (§3.7.4). `failOnErrors` stops processing
//! after that many errors; the response lists the operations processed.

use std::collections::{HashMap, HashSet};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde_json::{Map, Value as Json, json};

use crate::AppState;
use crate::error::{ScimError, ScimType};
use crate::http::{Bearer, ScimJson, bare_etag, scim_json, weak_etag};
use crate::resource::{self, Groups, ScimResource, Stored, Users};
use crate::scope::Scope;
use crate::wire::schema::{BASE_PATH, Resource};

pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// Most operations one bulk request may carry.
pub const MAX_OPERATIONS: usize = 1000;

/// Prefix of a reference to a resource created in the same request.
const BULK_ID_PREFIX: &str = "bulkId:";

pub fn routes() -> Router<AppState> {
    Router::new().route(&format!("{BASE_PATH}/Bulk"), post(bulk))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn parse(text: &str) -> Option<Self> {
        [
            ("POST", Method::Post),
            ("PUT", Method::Put),
            ("PATCH", Method::Patch),
            ("DELETE", Method::Delete),
        ]
        .into_iter()
        .find(|(name, _)| text.eq_ignore_ascii_case(name))
        .map(|(_, method)| method)
    }

    fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// One entry of `Operations`, as sent.
#[derive(Debug)]
struct Operation {
    /// `method` as sent, echoed in the response even when unknown.
    method_text: String,
    method: Option<Method>,
    bulk_id: Option<String>,
    version: Option<String>,
    path: String,
    data: Option<Json>,
}

/// A whole bulk request.
#[derive(Debug)]
struct BulkRequest {
    fail_on_errors: Option<u64>,
    operations: Vec<Operation>,
}

fn get_ignore_case<'a>(map: &'a Map<String, Json>, key: &str) -> Option<&'a Json> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn optional_text(map: &Map<String, Json>, key: &str) -> Result<Option<String>, ScimError> {
    match get_ignore_case(map, key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ScimError::invalid_value(format!(
            "{key} must be a string, not {other}"
        ))),
    }
}

impl BulkRequest {
    fn parse(body: Json) -> Result<Self, ScimError> {
        let Json::Object(body) = body else {
            return Err(ScimError::invalid_syntax(
                "a BulkRequest must be a JSON object",
            ));
        };
        if let Some(schemas) = get_ignore_case(&body, "schemas") {
            let listed = schemas.as_array().is_some_and(|urns| {
                urns.iter().any(|u| {
                    u.as_str()
                        .is_some_and(|u| u.eq_ignore_ascii_case(BULK_REQUEST))
                })
            });
            if !listed {
                return Err(ScimError::invalid_value(format!(
                    "schemas must list {BULK_REQUEST}"
                )));
            }
        }
        let fail_on_errors = match get_ignore_case(&body, "failOnErrors") {
            None | Some(Json::Null) => None,
            Some(Json::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => n.as_u64(),
            Some(other) => {
                return Err(ScimError::invalid_value(format!(
                    "failOnErrors must be a positive integer, not {other}"
                )));
            }
        };
        let Some(Json::Array(items)) = get_ignore_case(&body, "Operations") else {
            return Err(ScimError::invalid_syntax(
                "a BulkRequest needs an \"Operations\" array",
            ));
        };
        if items.len() > MAX_OPERATIONS {
            return Err(ScimError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                format!(
                    "the request has {} operations; maxOperations is {MAX_OPERATIONS}",
                    items.len()
                ),
            ));
        }
        let operations = items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                Operation::parse(item).map_err(|e| ScimError {
                    detail: format!("Operations[{index}]: {}", e.detail),
                    ..e
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut seen = HashSet::new();
        for op in &operations {
            if let Some(id) = &op.bulk_id
                && !seen.insert(id.as_str())
            {
                return Err(ScimError::invalid_value(format!(
                    "bulkId \"{id}\" is used by more than one operation"
                )));
            }
        }
        Ok(BulkRequest {
            fail_on_errors,
            operations,
        })
    }
}

impl Operation {
    fn parse(item: &Json) -> Result<Self, ScimError> {
        let Json::Object(map) = item else {
            return Err(ScimError::invalid_syntax(
                "each operation must be an object",
            ));
        };
        let method_text = optional_text(map, "method")?
            .ok_or_else(|| ScimError::invalid_syntax("\"method\" is required"))?;
        let path = optional_text(map, "path")?
            .ok_or_else(|| ScimError::invalid_syntax("\"path\" is required"))?;
        Ok(Operation {
            method: Method::parse(&method_text),
            method_text,
            bulk_id: optional_text(map, "bulkId")?.filter(|id| !id.is_empty()),
            version: optional_text(map, "version")?,
            path,
            data: get_ignore_case(map, "data").cloned(),
        })
    }

    /// The bulkIds this operation refers to, in its path and data.
    fn references(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((_, Some(id))) = split_path(&self.path)
            && let Some(reference) = id.strip_prefix(BULK_ID_PREFIX)
        {
            out.push(reference.to_owned());
        }
        if let Some(data) = &self.data {
            collect_references(data, &mut out);
        }
        out
    }
}

fn collect_references(value: &Json, out: &mut Vec<String>) {
    match value {
        Json::String(s) => {
            if let Some(reference) = s.strip_prefix(BULK_ID_PREFIX) {
                out.push(reference.to_owned());
            }
        }
        Json::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        Json::Object(map) => map.values().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

/// Replaces every `bulkId:<id>` string with the id it was resolved to.
fn substitute(value: Json, resolved: &HashMap<String, String>) -> Json {
    match value {
        Json::String(s) => match s
            .strip_prefix(BULK_ID_PREFIX)
            .and_then(|reference| resolved.get(reference))
        {
            Some(id) => Json::String(id.clone()),
            None => Json::String(s),
        },
        Json::Array(items) => {
            Json::Array(items.into_iter().map(|v| substitute(v, resolved)).collect())
        }
        Json::Object(map) => Json::Object(
            map.into_iter()
                .map(|(k, v)| (k, substitute(v, resolved)))
                .collect(),
        ),
        other => other,
    }
}

/// `/Users`, `Users/abc`, `/Groups/abc`: the resource type and id, if any.
fn split_path(path: &str) -> Option<(Resource, Option<&str>)> {
    let path = path.trim().trim_start_matches('/');
    let path = path
        .strip_prefix(BASE_PATH.trim_start_matches('/'))
        .map_or(path, |rest| rest.trim_start_matches('/'));
    let (endpoint, id) = match path.split_once('/') {
        Some((endpoint, id)) => (endpoint, Some(id)),
        None => (path, None),
    };
    let resource = Resource::ALL
        .into_iter()
        .find(|r| endpoint.eq_ignore_ascii_case(r.endpoint().trim_start_matches('/')))?;
    match id {
        Some(id) if id.is_empty() || id.contains('/') => None,
        id => Some((resource, id)),
    }
}

/// What an operation did: HTTP status, and the resource it touched.
struct Outcome {
    status: StatusCode,
    resource: Resource,
    id: String,
    /// The new version; none after a DELETE.
    etag: Option<String>,
}

/// Where a bulkId stands while the request is processed.
enum Resolution {
    /// Its POST has not run yet.
    Pending,
    Created(String),
    Failed,
}

async fn bulk(
    State(state): State<AppState>,
    bearer: Bearer,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimError> {
    let request = BulkRequest::parse(body)?;
    let responses = run(&state, &bearer, request).await;
    Ok(scim_json(
        StatusCode::OK,
        &json!({"schemas": [BULK_RESPONSE], "Operations": responses}),
    ))
}

/// Runs the operations (see the module docs for the order) and returns
/// their responses in request order.
async fn run(state: &AppState, bearer: &Bearer, request: BulkRequest) -> Vec<Json> {
    let mut bulk_ids: HashMap<String, Resolution> = request
        .operations
        .iter()
        .filter(|op| op.method == Some(Method::Post))
        .filter_map(|op| op.bulk_id.clone())
        .map(|id| (id, Resolution::Pending))
        .collect();
    let mut pending: Vec<(usize, Operation)> = request.operations.into_iter().enumerate().collect();
    let mut responses: Vec<(usize, Json)> = Vec::new();
    let mut errors = 0u64;
    while !pending.is_empty() {
        let ready = pending.iter().position(|(_, op)| {
            op.references()
                .iter()
                .all(|r| !matches!(bulk_ids.get(r), Some(Resolution::Pending)))
        });
        // Nothing ready: the rest refer to each other in a cycle.
        let (index, op) = pending.remove(ready.unwrap_or(0));
        let result = match ready {
            Some(_) => execute(state, bearer, &op, &bulk_ids).await,
            None => Err(ScimError::new(
                StatusCode::CONFLICT,
                Some(ScimType::InvalidValue),
                "the operation's bulkId references form a cycle",
            )),
        };
        if let Some(bulk_id) = op.bulk_id.clone()
            && op.method == Some(Method::Post)
        {
            let resolution = match &result {
                Ok(outcome) => Resolution::Created(outcome.id.clone()),
                Err(_) => Resolution::Failed,
            };
            bulk_ids.insert(bulk_id, resolution);
        }
        if result.is_err() {
            errors += 1;
        }
        responses.push((index, operation_response(bearer.scope(), &op, result)));
        if request.fail_on_errors.is_some_and(|limit| errors >= limit) {
            break;
        }
    }
    responses.sort_by_key(|(index, _)| *index);
    responses
        .into_iter()
        .map(|(_, response)| response)
        .collect()
}

async fn execute(
    state: &AppState,
    bearer: &Bearer,
    op: &Operation,
    bulk_ids: &HashMap<String, Resolution>,
) -> Result<Outcome, ScimError> {
    let mut resolved = HashMap::new();
    for reference in op.references() {
        match bulk_ids.get(&reference) {
            Some(Resolution::Created(id)) => {
                resolved.insert(reference, id.clone());
            }
            Some(Resolution::Failed) => {
                return Err(unresolved(&reference, "its operation failed"));
            }
            Some(Resolution::Pending) | None => {
                return Err(unresolved(&reference, "no POST in this request has it"));
            }
        }
    }
    let method = op.method.ok_or_else(|| {
        ScimError::invalid_syntax(format!(
            "unknown method \"{}\"; expected POST, PUT, PATCH or DELETE",
            op.method_text
        ))
    })?;
    let (resource, id) = split_path(&op.path)
        .ok_or_else(|| ScimError::not_found(format!("no such endpoint \"{}\"", op.path)))?;
    let id = id.map(|id| match id.strip_prefix(BULK_ID_PREFIX) {
        Some(reference) => resolved
            .get(reference)
            .cloned()
            .unwrap_or_else(|| id.to_owned()),
        None => id.to_owned(),
    });
    let data = op.data.clone().map(|d| substitute(d, &resolved));
    let etag = op.version.as_deref().map(bare_etag).unwrap_or_default();
    if method == Method::Post && id.is_none() && op.bulk_id.is_none() {
        return Err(ScimError::invalid_value("bulkId is required on POST"));
    }
    let (status, id, etag) = match resource {
        Resource::User => apply::<Users>(state, bearer, method, id, data, etag).await?,
        Resource::Group => apply::<Groups>(state, bearer, method, id, data, etag).await?,
    };
    Ok(Outcome {
        status,
        resource,
        id,
        etag,
    })
}

/// Runs one operation on a resource of type `R`: the status it answers
/// with, the id it touched and the new version (none after a DELETE).
async fn apply<R: ScimResource>(
    state: &AppState,
    bearer: &Bearer,
    method: Method,
    id: Option<String>,
    data: Option<Json>,
    etag: String,
) -> Result<(StatusCode, String, Option<String>), ScimError> {
    let data = || data.ok_or_else(|| ScimError::invalid_syntax("\"data\" is required"));
    let written = |status, message: R::Message| {
        let meta = message.meta();
        (status, meta.id.to_owned(), Some(meta.etag.to_owned()))
    };
    match (method, id) {
        (Method::Post, None) => {
            let created = resource::create_from::<R>(state, bearer, data()?).await?;
            Ok(written(StatusCode::CREATED, created))
        }
        (Method::Put, Some(id)) => {
            let replaced = resource::replace_from::<R>(state, bearer, id, data()?, etag).await?;
            Ok(written(StatusCode::OK, replaced))
        }
        (Method::Patch, Some(id)) => {
            let patched = resource::patch_from::<R>(state, bearer, id, data()?, etag).await?;
            // As on PATCH /{Type}/{id}: a type that does not echo answers 204.
            let status = if R::PATCH_ECHOES {
                StatusCode::OK
            } else {
                StatusCode::NO_CONTENT
            };
            Ok(written(status, patched))
        }
        (Method::Delete, Some(id)) => {
            R::delete(state, bearer, id.clone(), etag).await?;
            Ok((StatusCode::NO_CONTENT, id, None))
        }
        (Method::Post, Some(_)) => Err(ScimError::method_not_allowed()),
        (_, None) => Err(ScimError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            format!("{} needs a path naming one resource", method.as_str()),
        )),
    }
}

fn unresolved(reference: &str, why: &str) -> ScimError {
    ScimError::new(
        StatusCode::CONFLICT,
        Some(ScimType::InvalidValue),
        format!("bulkId \"{reference}\" cannot be resolved: {why}"),
    )
}

/// One entry of the BulkResponse `Operations` (RFC 7644 §3.7.3): status as
/// a string; `location` and `version` on success, `response` (a SCIM
/// Error) on failure.
fn operation_response(scope: &Scope, op: &Operation, result: Result<Outcome, ScimError>) -> Json {
    let mut out = Map::new();
    out.insert("method".into(), op.method_text.clone().into());
    if let Some(bulk_id) = &op.bulk_id {
        out.insert("bulkId".into(), bulk_id.clone().into());
    }
    match result {
        Ok(outcome) => {
            out.insert(
                "location".into(),
                outcome
                    .resource
                    .location(&scope.base_url, &outcome.id)
                    .into(),
            );
            if let Some(etag) = outcome.etag {
                out.insert("version".into(), weak_etag(&etag).into());
            }
            out.insert("status".into(), outcome.status.as_u16().to_string().into());
        }
        Err(error) => {
            out.insert("status".into(), error.status.as_u16().to_string().into());
            out.insert("response".into(), error.body());
        }
    }
    Json::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Json) -> Result<BulkRequest, ScimError> {
        BulkRequest::parse(body)
    }

    #[test]
    fn paths() {
        assert_eq!(split_path("/Users"), Some((Resource::User, None)));
        assert_eq!(split_path("groups/g1"), Some((Resource::Group, Some("g1"))));
        assert_eq!(
            split_path("/scim/v2/Users/bulkId:q"),
            Some((Resource::User, Some("bulkId:q")))
        );
        for bad in ["/Schemas", "/Users/", "/Users/a/b", ""] {
            assert_eq!(split_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn references_and_substitution() {
        let op = Operation {
            method_text: "PATCH".into(),
            method: Some(Method::Patch),
            bulk_id: None,
            version: None,
            path: "/Groups/bulkId:g".into(),
            data: Some(json!({"Operations": [{"op": "add", "path": "members",
                "value": [{"value": "bulkId:u1"}, {"value": "u2"}, {"value": "xbulkId:no"}]}]})),
        };
        assert_eq!(op.references(), ["g", "u1"]);
        let resolved: HashMap<String, String> = [("u1".to_owned(), "id-1".to_owned())].into();
        assert_eq!(
            substitute(op.data.clone().unwrap_or_default(), &resolved)["Operations"][0]["value"],
            json!([{"value": "id-1"}, {"value": "u2"}, {"value": "xbulkId:no"}])
        );
    }

    #[test]
    fn request_limits_and_shape() {
        let op = json!({"method": "DELETE", "path": "/Users/x"});
        let many = json!({"Operations": vec![op.clone(); MAX_OPERATIONS + 1]});
        assert_eq!(
            request(many).err().map(|e| e.status),
            Some(StatusCode::PAYLOAD_TOO_LARGE)
        );
        let ok = request(json!({"schemas": [BULK_REQUEST], "failOnErrors": 2, "Operations": [op]}));
        assert_eq!(ok.as_ref().map(|r| r.fail_on_errors), Ok(Some(2)));
        for bad in [
            json!([]),
            json!({"Operations": {}}),
            json!({"schemas": ["x"], "Operations": []}),
            json!({"failOnErrors": 0, "Operations": []}),
            json!({"Operations": [{"path": "/Users"}]}),
            json!({"Operations": [{"method": "POST"}]}),
            json!({"Operations": [{"method": "POST", "path": "/Users", "bulkId": 7}]}),
            json!({"Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "a"},
                {"method": "POST", "path": "/Users", "bulkId": "a"}
            ]}),
        ] {
            assert_eq!(
                request(bad.clone()).err().map(|e| e.status),
                Some(StatusCode::BAD_REQUEST),
                "{bad}"
            );
        }
        let unknown = request(json!({"Operations": [{"method": "merge", "path": "/Users"}]}));
        assert_eq!(
            unknown.map(|r| r.operations[0].method),
            Ok(None),
            "an unknown method fails that operation only"
        );
    }
}
