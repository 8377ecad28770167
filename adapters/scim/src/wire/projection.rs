//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9): which
//! parts of a resource a response carries. Names go through the same path
//! parser as filters, so `name.givenName`, `NAME.GIVENNAME`, unqualified
//! enterprise names and URN-qualified names all select the same thing.
//!
//! `returned` from the published schema (RFC 7643 §7) decides what the
//! parameters cannot change: `always` attributes (`id`, `schemas`,
//! `meta.resourceType`) are in every response, `never` ones (`password`) in
//! none, `request` ones only when `attributes` names them. Attributes the
//! schema does not define are `default`.
//!
//! A projection works on the JSON document, one top-level attribute at a
//! time, so a group's members can be projected as they stream by without the
//! whole document ever existing.

use serde_json::{Map, Value as Json};

use crate::wire::bounds::{MAX_ATTRIBUTE_NAMES, MAX_PATH_BYTES};
use crate::wire::error::ScimError;
use crate::wire::query::ScimQuery;
use crate::wire::schema::{self, AttributeDef, PathTarget, Resource, Returned};

/// What the client asked to see of each resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    resource: Resource,
    /// `None`: every attribute (no `attributes` parameter).
    include: Option<Vec<Selector>>,
    exclude: Vec<Selector>,
    /// Either parameter was present, even empty.
    requested: bool,
}

/// One name from `attributes`/`excludedAttributes`, canonicalised.
#[derive(Debug, Clone, PartialEq)]
enum Selector {
    /// A whole schema: "" for the core one, else an extension URN.
    Schema(String),
    Attribute {
        /// "" for the core schema, as in the proto.
        schema: String,
        attribute: String,
        sub_attribute: String,
    },
}

impl Selector {
    /// The path inside the top-level attribute `key` this selector names
    /// (empty: all of it), or `None` when it does not touch `key`.
    fn within(&self, resource: Resource, key: &str) -> Option<Vec<String>> {
        let core_qualified = strip_prefix_ignore_case(key, resource.core_schema())
            .and_then(|rest| rest.strip_prefix(':'));
        match self {
            Selector::Schema(urn) if urn.is_empty() => {
                (!schema::is_urn(key) || core_qualified.is_some()).then(Vec::new)
            }
            Selector::Schema(urn) => key.eq_ignore_ascii_case(urn).then(Vec::new),
            Selector::Attribute {
                schema,
                attribute,
                sub_attribute,
            } => {
                let sub = || -> Vec<String> {
                    if sub_attribute.is_empty() {
                        Vec::new()
                    } else {
                        vec![sub_attribute.clone()]
                    }
                };
                if schema.is_empty() {
                    return core_qualified
                        .unwrap_or(key)
                        .eq_ignore_ascii_case(attribute)
                        .then(sub);
                }
                if key.eq_ignore_ascii_case(schema) {
                    // An extension object: `urn:…:enterprise:2.0:User` {"department": …}.
                    let mut path = vec![attribute.clone()];
                    path.extend(sub());
                    return Some(path);
                }
                // A qualified key kept as sent, or an unknown extension named
                // alone (which the path parser splits at its last colon).
                strip_prefix_ignore_case(key, schema)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .is_some_and(|rest| rest.eq_ignore_ascii_case(attribute))
                    .then(sub)
            }
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    schema::starts_with_ignore_case(text, prefix).then(|| &text[prefix.len()..])
}

impl Projection {
    /// Every attribute of a `resource`.
    pub fn all(resource: Resource) -> Self {
        Projection {
            resource,
            include: None,
            exclude: Vec::new(),
            requested: false,
        }
    }

    /// Reads `attributes` and `excludedAttributes` (comma-separated, any
    /// number of times). When both are given, the excluded ones are removed
    /// from the included ones.
    pub fn parse(resource: Resource, query: &ScimQuery) -> Result<Self, ScimError> {
        let include = selectors(resource, query, "attributes")?;
        let exclude = selectors(resource, query, "excludedAttributes")?;
        Ok(Projection {
            resource,
            include: (!include.is_empty()).then_some(include),
            exclude,
            requested: query.get("attributes").is_some()
                || query.get("excludedAttributes").is_some(),
        })
    }

    /// True when the request named `attributes` or `excludedAttributes`.
    pub fn requested(&self) -> bool {
        self.requested
    }

    /// What to keep of the top-level attribute `key`.
    pub fn rule(&self, key: &str) -> AttributeRule {
        let (returned, subs) = definition(self.resource, key);
        let within = |selectors: &[Selector]| -> Vec<Vec<String>> {
            selectors
                .iter()
                .filter_map(|s| s.within(self.resource, key))
                .collect()
        };
        let include = self.include.as_deref().map(within);
        let (mode, exclude) = match returned {
            Returned::Always => (Mode::Everything, Vec::new()),
            Returned::Never => (Mode::Nothing, Vec::new()),
            Returned::Request => match include {
                Some(paths) if !paths.is_empty() => (Mode::Only(paths), within(&self.exclude)),
                _ => (Mode::Nothing, Vec::new()),
            },
            Returned::Default => (
                include.map_or(Mode::Everything, Mode::Only),
                within(&self.exclude),
            ),
        };
        AttributeRule {
            mode,
            exclude,
            subs,
        }
    }

    /// Projects a whole resource document.
    pub fn apply(&self, document: Map<String, Json>) -> Map<String, Json> {
        document
            .into_iter()
            .filter_map(|(key, value)| self.rule(&key).apply(value).map(|v| (key, v)))
            .collect()
    }
}

/// How top-level `key` of a `resource` document is returned, and the
/// definitions of what it contains (an extension object's attributes, a
/// complex attribute's sub-attributes). Undefined keys are `default`.
fn definition(resource: Resource, key: &str) -> (Returned, &'static [AttributeDef]) {
    let core = resource.core_schema();
    let name = strip_prefix_ignore_case(key, core)
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or(key);
    if let Some(def) = schema::attribute_def(resource, "", name) {
        return (def.returned, def.sub_attributes);
    }
    for (urn, defs) in resource.extensions() {
        if key.eq_ignore_ascii_case(urn) {
            return (Returned::Default, *defs);
        }
        let qualified = strip_prefix_ignore_case(key, urn)
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|attribute| schema::attribute_def(resource, urn, attribute));
        if let Some(def) = qualified {
            return (def.returned, def.sub_attributes);
        }
    }
    (Returned::Default, &[])
}

fn selectors(
    resource: Resource,
    query: &ScimQuery,
    parameter: &str,
) -> Result<Vec<Selector>, ScimError> {
    let names: Vec<&str> = query
        .all(parameter)
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .take(MAX_ATTRIBUTE_NAMES + 1)
        .collect();
    if names.len() > MAX_ATTRIBUTE_NAMES {
        return Err(ScimError::invalid_path(format!(
            "{parameter} names more than {MAX_ATTRIBUTE_NAMES} attributes"
        )));
    }
    if let Some(name) = names.iter().find(|name| name.len() > MAX_PATH_BYTES) {
        return Err(ScimError::invalid_path(format!(
            "{parameter}: a name is {} bytes long; at most {MAX_PATH_BYTES} are accepted",
            name.len()
        )));
    }
    if names.iter().any(|name| name.contains('\0')) {
        return Err(ScimError::invalid_path(format!(
            "{parameter}: a name contains a NUL character, which no attribute name has"
        )));
    }
    names
        .into_iter()
        .map(|name| match schema::parse_attr_path(resource, name) {
            Some(PathTarget::Schema(urn)) => Ok(Selector::Schema(urn)),
            Some(PathTarget::Attribute(path)) => Ok(Selector::Attribute {
                schema: path.schema,
                attribute: path.attribute,
                sub_attribute: path.sub_attribute,
            }),
            None => Err(ScimError::invalid_path(format!(
                "{parameter}: \"{name}\" is not a valid attribute name"
            ))),
        })
        .collect()
}

/// What a projection keeps of one top-level attribute; paths are relative
/// to it. The default keeps what is returned by default.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeRule {
    mode: Mode,
    exclude: Vec<Vec<String>>,
    /// Definitions of the attribute's sub-attributes, whose own `returned`
    /// is honoured at every level.
    subs: &'static [AttributeDef],
}

#[derive(Debug, Clone, PartialEq)]
enum Mode {
    /// Not returned at all.
    Nothing,
    /// Everything returned by default (no `attributes` parameter).
    Everything,
    /// Only these paths (none: nothing but what is returned always).
    Only(Vec<Vec<String>>),
}

impl Default for AttributeRule {
    fn default() -> Self {
        AttributeRule {
            mode: Mode::Everything,
            exclude: Vec::new(),
            subs: &[],
        }
    }
}

impl AttributeRule {
    /// The projected value, `None` when nothing of it is returned. On a
    /// multi-valued attribute it applies to each element, so it can also be
    /// applied to one element at a time.
    pub fn apply(&self, value: Json) -> Option<Json> {
        let value = match &self.mode {
            Mode::Nothing => return None,
            Mode::Everything => by_default(value, self.subs),
            Mode::Only(paths) => keep_only(value, paths, self.subs)?,
        };
        remove(value, &self.exclude, self.subs)
    }

    /// True when anything of `sample`, a fully populated value, would be
    /// returned: lets a caller skip reading what would be thrown away.
    pub fn keeps_any_of(&self, sample: Json) -> bool {
        self.apply(sample).is_some()
    }
}

fn find(defs: &'static [AttributeDef], name: &str) -> Option<&'static AttributeDef> {
    defs.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

fn returned(def: Option<&AttributeDef>) -> Returned {
    def.map_or(Returned::Default, |d| d.returned)
}

fn subs_of(def: Option<&'static AttributeDef>) -> &'static [AttributeDef] {
    def.map_or(&[], |d| d.sub_attributes)
}

/// The sub-paths of an attribute whose first name is `key`, without it.
fn tails(paths: &[Vec<String>], key: &str) -> Vec<Vec<String>> {
    paths
        .iter()
        .filter(|p| {
            p.first()
                .is_some_and(|first| first.eq_ignore_ascii_case(key))
        })
        .map(|p| p[1..].to_vec())
        .collect()
}

/// What is returned without `attributes`: all but `never` and `request`
/// sub-attributes.
fn by_default(value: Json, subs: &'static [AttributeDef]) -> Json {
    if subs.is_empty() {
        return value;
    }
    match value {
        Json::Object(map) => Json::Object(
            map.into_iter()
                .filter_map(|(key, value)| {
                    let def = find(subs, &key);
                    match returned(def) {
                        Returned::Never | Returned::Request => None,
                        _ => Some((key, by_default(value, subs_of(def)))),
                    }
                })
                .collect(),
        ),
        Json::Array(items) => Json::Array(
            items
                .into_iter()
                .map(|item| by_default(item, subs))
                .collect(),
        ),
        other => other,
    }
}

fn keep_only(value: Json, paths: &[Vec<String>], subs: &'static [AttributeDef]) -> Option<Json> {
    if paths.iter().any(Vec::is_empty) {
        return Some(by_default(value, subs));
    }
    match value {
        Json::Object(map) => {
            let kept: Map<String, Json> = map
                .into_iter()
                .filter_map(|(key, value)| {
                    let def = find(subs, &key);
                    match returned(def) {
                        Returned::Always => Some((key, by_default(value, subs_of(def)))),
                        Returned::Never => None,
                        _ => {
                            let tails = tails(paths, &key);
                            if tails.is_empty() {
                                return None;
                            }
                            keep_only(value, &tails, subs_of(def)).map(|v| (key, v))
                        }
                    }
                })
                .collect();
            (!kept.is_empty()).then_some(Json::Object(kept))
        }
        Json::Array(items) => {
            let kept: Vec<Json> = items
                .into_iter()
                .filter_map(|item| keep_only(item, paths, subs))
                .collect();
            (!kept.is_empty()).then_some(Json::Array(kept))
        }
        // A sub-attribute of a simple value does not exist.
        _ => None,
    }
}

/// `value` without `paths`; what is returned always stays.
fn remove(value: Json, paths: &[Vec<String>], subs: &'static [AttributeDef]) -> Option<Json> {
    if paths.is_empty() {
        return Some(value);
    }
    let whole = paths.iter().any(Vec::is_empty);
    match value {
        Json::Object(map) => {
            let kept: Map<String, Json> = map
                .into_iter()
                .filter_map(|(key, value)| {
                    let def = find(subs, &key);
                    if returned(def) == Returned::Always {
                        return Some((key, value));
                    }
                    if whole {
                        return None;
                    }
                    remove(value, &tails(paths, &key), subs_of(def)).map(|v| (key, v))
                })
                .collect();
            (!kept.is_empty()).then_some(Json::Object(kept))
        }
        Json::Array(items) => {
            let kept: Vec<Json> = items
                .into_iter()
                .filter_map(|item| remove(item, paths, subs))
                .collect();
            (!kept.is_empty()).then_some(Json::Array(kept))
        }
        other => (!whole).then_some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::error::ScimType;
    use crate::wire::schema::ENTERPRISE_USER;
    use serde_json::json;

    const CUSTOM: &str = "urn:example:custom:1.0:User";

    fn projection(resource: Resource, pairs: &[(&str, &str)]) -> Result<Projection, ScimError> {
        let query = ScimQuery(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        Projection::parse(resource, &query)
    }

    #[test]
    fn attribute_lists_are_bounded() {
        let names = |n: usize| vec!["userName"; n].join(",");
        for parameter in ["attributes", "excludedAttributes"] {
            assert!(
                projection(Resource::User, &[(parameter, &names(MAX_ATTRIBUTE_NAMES))]).is_ok()
            );
            let error = projection(
                Resource::User,
                &[(parameter, &names(MAX_ATTRIBUTE_NAMES + 1))],
            )
            .expect_err("too many names");
            assert_eq!(error.scim_type, Some(ScimType::InvalidPath));
            let long = "a".repeat(MAX_PATH_BYTES + 1);
            let error = projection(Resource::User, &[(parameter, &long)]).expect_err("too long");
            assert_eq!(error.scim_type, Some(ScimType::InvalidPath));
        }
    }

    fn user(pairs: &[(&str, &str)]) -> Json {
        let Ok(projection) = projection(Resource::User, pairs) else {
            panic!("valid projection rejected: {pairs:?}")
        };
        let Json::Object(document) = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER, CUSTOM],
            "id": "u1",
            "externalId": "x1",
            "userName": "ann",
            "name": {"givenName": "Ann", "familyName": "Lee"},
            "emails": [
                {"value": "a@x", "type": "work", "primary": true},
                {"value": "b@x", "type": "home", "primary": false}
            ],
            "active": true,
            "nickName": "An",
            "groups": [{"value": "g1", "display": "Ops", "$ref": "https://h/scim/v2/Groups/g1"}],
            ENTERPRISE_USER: {"department": "Ops", "manager": {"value": "m1", "$ref": "r"}},
            CUSTOM: {"badge": 7, "flag": true},
            "meta": {"resourceType": "User", "created": "c", "lastModified": "l", "location": "loc", "version": "W/\"1\""},
        }) else {
            panic!("object literal")
        };
        Json::Object(projection.apply(document))
    }

    fn keys(value: &Json) -> Vec<String> {
        value
            .as_object()
            .map(|m| {
                let mut keys: Vec<String> = m.keys().cloned().collect();
                keys.sort();
                keys
            })
            .unwrap_or_default()
    }

    #[test]
    fn no_parameters_return_everything() {
        let out = user(&[]);
        assert_eq!(out["name"]["givenName"], "Ann");
        assert_eq!(keys(&out).len(), 12);
        let Ok(p) = projection(Resource::User, &[]) else {
            panic!("empty query rejected")
        };
        assert!(!p.requested());
        assert_eq!(p, Projection::all(Resource::User));
    }

    #[test]
    fn attributes_keep_only_the_named_and_the_always_returned() {
        let out = user(&[("attributes", "userName,NAME.GIVENNAME")]);
        assert_eq!(
            out,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER, CUSTOM],
                "id": "u1",
                "userName": "ann",
                "name": {"givenName": "Ann"},
                "meta": {"resourceType": "User"},
            })
        );
        let out = user(&[
            ("attributes", "emails.value"),
            ("attributes", "meta.lastModified"),
        ]);
        assert_eq!(out["emails"], json!([{"value": "a@x"}, {"value": "b@x"}]));
        assert_eq!(
            out["meta"],
            json!({"resourceType": "User", "lastModified": "l"})
        );
        let out = user(&[(
            "Attributes",
            "urn:ietf:params:scim:schemas:core:2.0:User:nickName",
        )]);
        assert_eq!(out["nickName"], "An");
        assert!(out.get("userName").is_none());
    }

    #[test]
    fn extension_attributes_by_urn_or_plain_name() {
        let out = user(&[("attributes", &format!("{ENTERPRISE_USER}:department"))]);
        assert_eq!(out[ENTERPRISE_USER], json!({"department": "Ops"}));
        let out = user(&[("attributes", "manager.value")]);
        assert_eq!(out[ENTERPRISE_USER], json!({"manager": {"value": "m1"}}));
        let out = user(&[("attributes", ENTERPRISE_USER)]);
        assert_eq!(out[ENTERPRISE_USER]["department"], "Ops");
        assert!(out.get("userName").is_none());
        let out = user(&[("attributes", CUSTOM)]);
        assert_eq!(out[CUSTOM], json!({"badge": 7, "flag": true}));
        let out = user(&[("attributes", &format!("{CUSTOM}:badge"))]);
        assert_eq!(out[CUSTOM], json!({"badge": 7}));
    }

    #[test]
    fn excluded_attributes_remove_all_but_the_always_returned() {
        let out = user(&[(
            "excludedAttributes",
            "id,schemas,meta,emails.type,name.givenName,name.familyName,groups",
        )]);
        assert_eq!(out["id"], "u1");
        assert!(out["schemas"].is_array());
        assert_eq!(out["meta"], json!({"resourceType": "User"}));
        assert_eq!(
            out["emails"],
            json!([{"value": "a@x", "primary": true}, {"value": "b@x", "primary": false}])
        );
        assert!(out.get("name").is_none(), "an emptied complex is dropped");
        assert!(out.get("groups").is_none());
        assert_eq!(out["userName"], "ann");
        let out = user(&[("excludedAttributes", "department")]);
        assert_eq!(
            out[ENTERPRISE_USER],
            json!({"manager": {"value": "m1", "$ref": "r"}})
        );
    }

    #[test]
    fn both_parameters_exclude_from_the_included() {
        let out = user(&[
            ("attributes", "name,emails"),
            ("excludedAttributes", "name.familyName"),
        ]);
        assert_eq!(out["name"], json!({"givenName": "Ann"}));
        assert!(out["emails"].is_array());
        assert!(out.get("active").is_none());
    }

    #[test]
    fn unknown_names_select_nothing() {
        let out = user(&[("attributes", "nothing,name.nothing")]);
        assert_eq!(keys(&out), ["id", "meta", "schemas"]);
        let out = user(&[("excludedAttributes", "nothing")]);
        assert_eq!(keys(&out).len(), 12);
    }

    #[test]
    fn members_rule_decides_whether_to_read_members() {
        let sample = || json!({"value": "u", "display": "d", "type": "User", "$ref": "r"});
        let rule = |pairs: &[(&str, &str)]| {
            projection(Resource::Group, pairs)
                .map(|p| p.rule("members"))
                .unwrap_or_default()
        };
        assert!(rule(&[]).keeps_any_of(sample()));
        assert!(rule(&[("attributes", "members")]).keeps_any_of(sample()));
        assert!(rule(&[("attributes", "Members.value")]).keeps_any_of(sample()));
        assert!(rule(&[("excludedAttributes", "members.display")]).keeps_any_of(sample()));
        assert!(!rule(&[("excludedAttributes", "members")]).keeps_any_of(sample()));
        assert!(!rule(&[("excludedAttributes", "MEMBERS")]).keeps_any_of(sample()));
        assert!(!rule(&[("attributes", "displayName")]).keeps_any_of(sample()));
        assert!(
            !rule(&[(
                "attributes",
                "urn:ietf:params:scim:schemas:core:2.0:Group:displayName"
            )])
            .keeps_any_of(sample())
        );
        assert_eq!(
            rule(&[("attributes", "members.value")]).apply(sample()),
            Some(json!({"value": "u"}))
        );
        assert_eq!(
            rule(&[("excludedAttributes", "members.$ref,members.type")]).apply(sample()),
            Some(json!({"value": "u", "display": "d"}))
        );
    }

    #[test]
    fn requested_even_when_empty() {
        let p = projection(Resource::Group, &[("excludedAttributes", "")]);
        assert_eq!(p.as_ref().map(Projection::requested), Ok(true));
        let p = projection(Resource::Group, &[("count", "1")]);
        assert_eq!(p.as_ref().map(Projection::requested), Ok(false));
    }

    #[test]
    fn malformed_names_are_invalid_paths() {
        for bad in [
            "emails[type eq \"work\"]",
            "a b",
            "name.",
            "name.givenName.x",
            "urn:",
            ".x",
        ] {
            for parameter in ["attributes", "excludedAttributes"] {
                let err = projection(Resource::User, &[(parameter, bad)]).err();
                assert_eq!(
                    err.as_ref().and_then(|e| e.scim_type),
                    Some(ScimType::InvalidPath),
                    "{parameter}={bad}"
                );
                assert!(err.is_some_and(|e| e.detail.contains(parameter)));
            }
        }
    }
}
