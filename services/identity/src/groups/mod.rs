//! Groups of a tenant and their memberships. A membership is one row of
//! `group_members`, so changing one member costs the same in a group of 10
//! or of 100,000, and a group read never loads its members. Storage is in
//! `store`, PATCH interpretation in `patch`, the gRPC surface in `service`.

pub(crate) mod memberships;
pub(crate) mod patch;
pub(crate) mod service;
pub(crate) mod store;

use identity_proto::v1::Group;
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use crate::attr::{check_bag, check_optional, check_resource_size, check_text};
use crate::store::{ResourceError, sent_bag, wraps_resource_error};

/// What a group's write or read can fail with: what every resource can,
/// and what members and memberships add.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error(transparent)]
    Resource(#[from] ResourceError),
    /// ListUserGroups named no live user.
    #[error("user '{0}' not found")]
    UserNotFound(String),
    /// Member ids that are not live users of the tenant (or not ids at all).
    #[error("{}", unknown_members_message(.0))]
    UnknownMembers(Vec<String>),
}

wraps_resource_error!(GroupError);

/// How many unknown ids an error message names; the rest are counted.
const NAMED_IDS: usize = 5;

fn unknown_members_message(ids: &[String]) -> String {
    let named: Vec<String> = ids
        .iter()
        .take(NAMED_IDS)
        .map(|id| format!("'{id}'"))
        .collect();
    let more = ids.len().saturating_sub(NAMED_IDS);
    let list = if more > 0 {
        format!("{} and {more} more", named.join(", "))
    } else {
        named.join(", ")
    };
    if ids.len() == 1 {
        format!("member {list} is not a user of this tenant")
    } else {
        format!("members {list} are not users of this tenant")
    }
}

/// Every writable part of a group but its members, as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct GroupData {
    pub display_name: String,
    pub external_id: Option<String>,
    /// Every other attribute, as sent.
    pub attributes: Map<String, Json>,
}

/// Attribute names with a typed home (members travel as member ids).
const TYPED_ATTRIBUTES: &[&str] = &["displayName", "externalId", "members"];

/// Read-only or derived names, dropped from `attributes` when sent.
const DROPPED_ATTRIBUTES: &[&str] = &["id", "meta", "schemas"];

impl GroupData {
    /// The writable content of `group` (create and replace); output-only
    /// fields are ignored.
    pub(crate) fn from_proto(group: Group) -> Result<GroupData, GroupError> {
        let attributes = sent_bag(group.attributes, TYPED_ATTRIBUTES, DROPPED_ATTRIBUTES)?;
        let data = GroupData {
            display_name: group.display_name,
            external_id: group.external_id,
            attributes,
        };
        data.validate().map_err(ResourceError::InvalidValue)?;
        Ok(data)
    }

    /// Rules every stored group satisfies, whichever write produced it.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.display_name.trim().is_empty() {
            return Err("displayName is required and must not be empty".into());
        }
        check_text("displayName", &self.display_name)?;
        check_optional("externalId", self.external_id.as_deref())?;
        let bag = check_bag(&self.attributes)?;
        let typed = self.display_name.len() + self.external_id.as_ref().map_or(0, String::len);
        check_resource_size("group", typed + bag)
    }
}

/// Member ids as sent, sorted and without duplicates; any that is not a
/// UUID names no user of the tenant.
pub(crate) fn parse_member_ids(ids: &[String]) -> Result<Vec<Uuid>, GroupError> {
    let mut parsed = Vec::with_capacity(ids.len());
    let mut malformed = Vec::new();
    for id in ids {
        match Uuid::try_parse(id.trim()) {
            Ok(uuid) => parsed.push(uuid),
            Err(_) => malformed.push(id.clone()),
        }
    }
    if !malformed.is_empty() {
        return Err(GroupError::UnknownMembers(malformed));
    }
    parsed.sort_unstable();
    parsed.dedup();
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(display_name: &str) -> Group {
        Group {
            display_name: display_name.into(),
            ..Group::default()
        }
    }

    #[test]
    fn display_name_is_required() {
        assert!(GroupData::from_proto(group("Admins")).is_ok());
        for bad in ["", "  "] {
            assert!(matches!(
                GroupData::from_proto(group(bad)),
                Err(GroupError::Resource(ResourceError::InvalidValue(_)))
            ));
        }
    }

    #[test]
    fn attributes_keep_unknowns_and_refuse_typed_names() {
        let mut g = group("Admins");
        let serde_json::Value::Object(bag) = serde_json::json!({
            "description": "x", "id": "1", "META": {}, "schemas": [], "nothing": null,
            "urn:example:ext": {"a": 1}
        }) else {
            panic!("object")
        };
        g.attributes = Some(identity_proto::json_to_struct(bag));
        let data = GroupData::from_proto(g).unwrap_or_else(|e| panic!("{e}"));
        let mut keys: Vec<&String> = data.attributes.keys().collect();
        keys.sort();
        assert_eq!(keys, ["description", "urn:example:ext"]);

        for typed in ["members", "DisplayName", "externalId"] {
            let mut g = group("Admins");
            let mut bag = Map::new();
            bag.insert(typed.into(), serde_json::json!([]));
            g.attributes = Some(identity_proto::json_to_struct(bag));
            assert!(GroupData::from_proto(g).is_err(), "{typed}");
        }
    }

    #[test]
    fn member_ids_are_parsed_sorted_and_deduplicated() {
        let a = Uuid::from_u128(2);
        let b = Uuid::from_u128(1);
        let ids = parse_member_ids(&[a.to_string(), b.to_string(), format!(" {a} ")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ids, [b, a]);
        let err = parse_member_ids(&[a.to_string(), "bob".into()])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("member 'bob' is not a user of this tenant")
        );
    }

    #[test]
    fn unknown_member_messages_name_a_few_ids() {
        assert_eq!(
            unknown_members_message(&["a".into(), "b".into()]),
            "members 'a', 'b' are not users of this tenant"
        );
        let many: Vec<String> = (0..8).map(|i| i.to_string()).collect();
        assert_eq!(
            unknown_members_message(&many),
            "members '0', '1', '2', '3', '4' and 3 more are not users of this tenant"
        );
    }
}
