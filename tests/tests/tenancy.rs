//! Tenant isolation and the token lifecycle: issue, rotate, revoke, expire.

use identity_lifecycle_tests::*;
use identity_proto::v1::{
    GetUserRequest, IssueTokenRequest, ListTokensRequest, ListUsersRequest, PolicyUpdate,
    RevokeTokenRequest, UpdateTenantRequest, VerifiedDomains, revoke_token_request,
};
use reqwest::StatusCode;
use tonic::Code;

#[tokio::test]
async fn tenant_b_never_sees_or_changes_tenant_a() {
    let stack = Stack::start().await;
    let a = stack.tenant("tenant-a").await;
    let b = stack.tenant("tenant-b").await;
    let scim_a = stack.scim(&a.token);
    let scim_b = stack.scim(&b.token);
    let id = scim_a.create_user(user("shared@example.com")).await;
    let path = format!("/Users/{id}");

    scim_b.get(&path).await.assert_error(404, None);
    scim_b
        .patch(
            &path,
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await
        .assert_error(404, None);
    scim_b
        .put(&path, user("shared@example.com"))
        .await
        .assert_error(404, None);
    scim_b.delete(&path).await.assert_error(404, None);
    assert_eq!(scim_b.get("/Users").await.body["totalResults"], 0);
    assert_eq!(
        scim_b
            .filter_users(r#"userName eq "shared@example.com""#)
            .await
            .body["totalResults"],
        0
    );

    // The address is tenant A's person: B's identity provider may not claim
    // it until B has verified the domain. Then the same userName is free in B.
    scim_b
        .post("/Users", user("shared@example.com"))
        .await
        .assert_error(409, Some("uniqueness"));
    stack
        .tenants(ADMIN_TOKEN)
        .update_tenant(UpdateTenantRequest {
            slug: b.slug.clone(),
            policy: Some(PolicyUpdate {
                verified_domains: Some(VerifiedDomains {
                    domains: vec!["example.com".into()],
                }),
                ..PolicyUpdate::default()
            }),
            ..UpdateTenantRequest::default()
        })
        .await
        .expect("the operator verifies B's domain");
    scim_b.create_user(user("shared@example.com")).await;

    // Tenant A's user is untouched.
    let still = scim_a.get(&path).await;
    assert_eq!(still.status, StatusCode::OK);
    assert_eq!(still.body["active"], true);
    assert_eq!(still.body["meta"]["version"], "W/\"1\"");

    // Over gRPC, naming the other tenant is refused as unauthenticated (the
    // token is no credential there), and tenant tokens cannot manage tokens.
    let denied = stack
        .users(&b.token)
        .get_user(GetUserRequest {
            tenant: a.slug.clone(),
            id: id.clone(),
            show_deleted: false,
        })
        .await
        .expect_err("tenant B must not read tenant A");
    assert_eq!(denied.code(), Code::Unauthenticated);
    assert_eq!(
        denied.message(),
        format!("this token is not valid for tenant '{}'", a.slug)
    );
    let denied = stack
        .users(&b.token)
        .list_users(ListUsersRequest {
            tenant: a.slug.clone(),
            ..Default::default()
        })
        .await
        .expect_err("tenant B must not list tenant A");
    assert_eq!(denied.code(), Code::Unauthenticated);
    let denied = stack
        .tokens(&a.token)
        .issue_token(IssueTokenRequest {
            tenant: a.slug.clone(),
            name: "escalate".into(),
            ..IssueTokenRequest::default()
        })
        .await
        .expect_err("a tenant token cannot issue tokens");
    assert_eq!(denied.code(), Code::PermissionDenied);

    // The operator sees tenant A's user when naming the tenant.
    let seen = stack
        .users(ADMIN_TOKEN)
        .get_user(GetUserRequest {
            tenant: a.slug.clone(),
            id,
            show_deleted: false,
        })
        .await
        .expect("operator reads any tenant")
        .into_inner();
    assert_eq!(seen.user_name, "shared@example.com");
}

#[tokio::test]
async fn rotation_without_gap_then_revocation_is_immediate() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let old = acme.token.clone();
    let new = stack.issue_token("acme", "rotated").await;
    assert!(
        new.starts_with("idl_"),
        "tokens carry a recognisable prefix"
    );
    assert_ne!(old, new);

    // Both live tokens work at once.
    assert_eq!(stack.scim(&old).get("/Users").await.status, StatusCode::OK);
    assert_eq!(stack.scim(&new).get("/Users").await.status, StatusCode::OK);

    // Listing never shows a secret.
    let listed = stack
        .tokens(ADMIN_TOKEN)
        .list_tokens(ListTokensRequest {
            tenant: "acme".into(),
            show_revoked: false,
        })
        .await
        .expect("list tokens")
        .into_inner();
    assert_eq!(listed.tokens.len(), 2);
    let rendered = format!("{listed:?}");
    assert!(
        !rendered.contains(&old) && !rendered.contains(&new),
        "a secret leaked: {rendered}"
    );
    assert!(
        listed
            .tokens
            .iter()
            .all(|t| t.prefix.starts_with("idl_") && t.prefix.len() < 20)
    );

    // Revoke the old one by name: refused on the very next request.
    stack
        .tokens(ADMIN_TOKEN)
        .revoke_token(RevokeTokenRequest {
            tenant: "acme".into(),
            token: Some(revoke_token_request::Token::Name("e2e".into())),
        })
        .await
        .expect("revoke");
    stack.scim(&old).get("/Users").await.assert_error(401, None);
    assert_eq!(stack.scim(&new).get("/Users").await.status, StatusCode::OK);

    // Revoke by id too.
    let rotated = listed
        .tokens
        .iter()
        .find(|t| t.name == "rotated")
        .expect("rotated token listed");
    stack
        .tokens(ADMIN_TOKEN)
        .revoke_token(RevokeTokenRequest {
            tenant: "acme".into(),
            token: Some(revoke_token_request::Token::Id(rotated.id.clone())),
        })
        .await
        .expect("revoke by id");
    stack.scim(&new).get("/Users").await.assert_error(401, None);

    // Only hashes are stored: no column of the tokens table holds a secret.
    let stored = stack
        .query_strings("SELECT concat_ws('|', name, prefix, encode(token_hash, 'hex')) FROM tokens")
        .await;
    assert_eq!(stored.len(), 2);
    for row in stored {
        assert!(
            !row.contains(&old) && !row.contains(&new),
            "secret stored in clear: {row}"
        );
    }
}
