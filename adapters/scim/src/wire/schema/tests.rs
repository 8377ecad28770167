use super::*;

fn attr(schema: &str, attribute: &str, sub: &str) -> PathTarget {
    PathTarget::Attribute(AttributePath {
        schema: schema.into(),
        attribute: attribute.into(),
        sub_attribute: sub.into(),
        value_filter: None,
    })
}

#[test]
fn canonicalises_known_names_and_keeps_unknown_ones() {
    assert_eq!(
        parse_attr_path(Resource::User, "UserName"),
        Some(attr("", "userName", ""))
    );
    assert_eq!(
        parse_attr_path(Resource::User, "NAME.givenname"),
        Some(attr("", "name", "givenName"))
    );
    assert_eq!(
        parse_attr_path(Resource::User, "phoneNumbers"),
        Some(attr("", "phoneNumbers", ""))
    );
    assert_eq!(
        parse_attr_path(Resource::User, "META.LASTMODIFIED"),
        Some(attr("", "meta", "lastModified"))
    );
}

#[test]
fn splits_schema_urns() {
    assert_eq!(
        parse_attr_path(
            Resource::User,
            "urn:ietf:params:scim:schemas:core:2.0:User:userName"
        ),
        Some(attr("", "userName", ""))
    );
    assert_eq!(
        parse_attr_path(
            Resource::User,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
        ),
        Some(attr(ENTERPRISE_USER, "manager", "value"))
    );
    assert_eq!(
        parse_attr_path(
            Resource::User,
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:EMPLOYEENUMBER"
        ),
        Some(attr(ENTERPRISE_USER, "employeeNumber", ""))
    );
    assert_eq!(
        parse_attr_path(Resource::User, "urn:example:custom:1.0:User:badge"),
        Some(attr("urn:example:custom:1.0:User", "badge", ""))
    );
    assert_eq!(
        parse_attr_path(Resource::User, ENTERPRISE_USER),
        Some(PathTarget::Schema(ENTERPRISE_USER.into()))
    );
}

#[test]
fn unqualified_enterprise_names_resolve_to_the_extension() {
    assert_eq!(
        parse_attr_path(Resource::User, "Manager.Value"),
        Some(attr(ENTERPRISE_USER, "manager", "value"))
    );
    assert_eq!(
        parse_attr_path(Resource::User, "department"),
        Some(attr(ENTERPRISE_USER, "department", ""))
    );
    assert_eq!(
        parse_attr_path(
            Resource::User,
            "urn:ietf:params:scim:schemas:core:2.0:User:department"
        ),
        Some(attr("", "department", ""))
    );
}

#[test]
fn group_paths_use_the_group_schema() {
    let group = |text| parse_attr_path(Resource::Group, text);
    assert_eq!(group("DISPLAYNAME"), Some(attr("", "displayName", "")));
    assert_eq!(group("Members.Value"), Some(attr("", "members", "value")));
    assert_eq!(
        group("urn:ietf:params:scim:schemas:core:2.0:Group:members.$REF"),
        Some(attr("", "members", "$ref"))
    );
    assert_eq!(group(CORE_GROUP), Some(PathTarget::Schema(String::new())));
    // Enterprise names mean nothing special on a group.
    assert_eq!(group("manager"), Some(attr("", "manager", "")));
    assert_eq!(
        group("urn:ietf:params:scim:schemas:core:2.0:User:userName"),
        Some(attr(CORE_USER, "userName", ""))
    );
    assert_eq!(
        kind_of(Resource::Group, "", "members", "value"),
        Some(Kind::String)
    );
    assert_eq!(kind_of(Resource::Group, "", "userName", ""), None);
    assert_eq!(kind_of(Resource::Group, "", "password", ""), None);
    assert_eq!(
        Resource::Group.location("https://h", "g1"),
        "https://h/scim/v2/Groups/g1"
    );
}

#[test]
fn user_groups_are_known_and_read_only() {
    let groups = attribute_def(Resource::User, "", "Groups");
    assert!(groups.is_some_and(|d| matches!(d.mutability, Mutability::ReadOnly)));
    assert_eq!(
        parse_attr_path(Resource::User, "groups.display"),
        Some(attr("", "groups", "display"))
    );
}

#[test]
fn value_readers_check_types() {
    assert_eq!(text(Json::from("a"), "x"), Ok("a".to_owned()));
    assert!(text(Json::from(1), "x").is_err());
    assert_eq!(boolean(Json::from("FALSE"), "x"), Ok(false));
    assert!(boolean(Json::from("no"), "x").is_err());
    assert!(object(Json::from("a"), "x").is_err());
    assert!(object(Json::Object(Map::new()), "x").is_ok());
}

#[test]
fn rejects_malformed_paths() {
    for bad in ["", ".", "name.", "a.b.c", "na me", "emails[", "urn:"] {
        assert_eq!(parse_attr_path(Resource::User, bad), None, "{bad}");
    }
}

#[test]
fn knows_the_booleans() {
    assert_eq!(
        kind_of(Resource::User, "", "active", ""),
        Some(Kind::Boolean)
    );
    assert_eq!(
        kind_of(Resource::User, "", "emails", "PRIMARY"),
        Some(Kind::Boolean)
    );
    assert_eq!(
        kind_of(Resource::User, "", "userName", ""),
        Some(Kind::String)
    );
    assert_eq!(
        kind_of(Resource::User, "", "nickName", ""),
        Some(Kind::String)
    );
    assert_eq!(
        kind_of(Resource::User, "", "x509Certificates", "value"),
        Some(Kind::Binary)
    );
    assert_eq!(kind_of(Resource::User, "", "shoeSize", ""), None);
    assert_eq!(bool_from_text("False"), Some(false));
    assert_eq!(bool_from_text("TRUE"), Some(true));
    assert_eq!(bool_from_text("yes"), None);
}
