//! Hostile callers of the public SCIM edge, as the identity service sees
//! them: credentials that must never work there.

use identity_lifecycle_tests::*;

/// The operator credential is the key to every tenant: it must never work
/// over the IdP-facing HTTP edge. Needs the adapter to send the
/// `x-identity-edge: scim` marker on every call.
#[tokio::test]
async fn operator_token_on_the_scim_edge_is_401() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let as_operator = stack.scim(ADMIN_TOKEN);
    as_operator.get("/Users").await.assert_error(401, None);
    let reply = stack
        .http
        .get(
            stack
                .scim_base
                .replace("/scim/v2", "/tenants/acme/scim/v2/Users"),
        )
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(
        reply.status().as_u16(),
        401,
        "operator token on /tenants/acme/scim/v2/Users"
    );
    stack.assert_serving().await;
    // The tenant's own SCIM token still works there.
    assert_eq!(stack.scim(&acme.token).get("/Users").await.status, 200);
}

/// A service token is for internal callers over gRPC, not for an IdP.
#[tokio::test]
async fn service_token_on_the_scim_edge_is_401() {
    let stack = Stack::start().await;
    stack.tenant("acme").await;
    let service_token = stack
        .tokens(ADMIN_TOKEN)
        .issue_token(identity_proto::v1::IssueTokenRequest {
            tenant: "acme".into(),
            name: "internal".into(),
            scope: identity_proto::v1::TokenScope::Service as i32,
            ..Default::default()
        })
        .await
        .expect("issue service token")
        .into_inner()
        .secret;
    stack
        .scim(&service_token)
        .get("/Users")
        .await
        .assert_error(401, None);
    stack.assert_serving().await;
}
