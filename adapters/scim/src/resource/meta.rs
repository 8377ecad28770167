//! What every resource document shares on output (RFC 7643 §3.1): the
//! `schemas` list and `meta`.

use serde_json::{Map, Value as Json};

use identity_proto::v1::{Group, User};

use crate::http::weak_etag;
use crate::wire::schema::{self, Resource};

/// A message the service stores: it carries the bookkeeping of `meta`.
pub trait Stored {
    fn meta(&self) -> Meta<'_>;
}

/// Every stored message names its bookkeeping fields alike.
macro_rules! stored {
    ($($message:ty),+) => {$(
        impl Stored for $message {
            fn meta(&self) -> Meta<'_> {
                Meta {
                    id: &self.id,
                    etag: &self.etag,
                    created: self.create_time.as_ref(),
                    last_modified: self.update_time.as_ref(),
                }
            }
        }
    )+};
}

stored!(User, Group);

/// The service's bookkeeping that becomes `meta`.
pub struct Meta<'a> {
    pub id: &'a str,
    pub etag: &'a str,
    pub created: Option<&'a prost_types::Timestamp>,
    pub last_modified: Option<&'a prost_types::Timestamp>,
}

/// `meta` of a resource: type, times, location and version.
pub fn meta(resource: Resource, base_url: &str, meta: &Meta<'_>) -> Json {
    let mut out = Map::new();
    out.insert("resourceType".into(), resource.name().into());
    if let Some(created) = meta.created.and_then(rfc3339) {
        out.insert("created".into(), created.into());
    }
    if let Some(modified) = meta.last_modified.and_then(rfc3339) {
        out.insert("lastModified".into(), modified.into());
    }
    out.insert(
        "location".into(),
        resource.location(base_url, meta.id).into(),
    );
    out.insert("version".into(), weak_etag(meta.etag).into());
    Json::Object(out)
}

/// The URN keys of `document` other than the schemas `resource` always
/// lists: extension objects kept in `attributes`, which the client declared.
pub fn extension_schemas(resource: Resource, document: &Map<String, Json>) -> Vec<Json> {
    document
        .keys()
        .filter(|k| schema::is_urn(k))
        .filter(|k| !schema::known_schemas(resource).any(|urn| k.eq_ignore_ascii_case(urn)))
        .map(|k| Json::from(k.as_str()))
        .collect()
}

fn rfc3339(timestamp: &prost_types::Timestamp) -> Option<String> {
    let nanos = u32::try_from(timestamp.nanos).ok()?;
    chrono::DateTime::from_timestamp(timestamp.seconds, nanos)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn meta_has_every_field_it_can() {
        let created = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        };
        let out = meta(
            Resource::Group,
            "https://h",
            &Meta {
                id: "g1",
                etag: "4",
                created: Some(&created),
                last_modified: None,
            },
        );
        assert_eq!(
            out,
            json!({
                "resourceType": "Group",
                "created": "2023-11-14T22:13:20Z",
                "location": "https://h/scim/v2/Groups/g1",
                "version": "W/\"4\"",
            })
        );
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(rfc3339(&bad), None);
    }

    #[test]
    fn extension_schemas_skip_the_known_ones() {
        let Json::Object(document) = json!({
            "displayName": "x",
            "urn:ietf:params:scim:schemas:core:2.0:Group": {},
            "urn:example:acme:2.0:Group": {"code": 1},
        }) else {
            panic!("object literal")
        };
        assert_eq!(
            extension_schemas(Resource::Group, &document),
            vec![json!("urn:example:acme:2.0:Group")]
        );
    }
}
