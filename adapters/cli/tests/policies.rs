//! Every provisioning-policy rule of the five vendor docs in
//! ../shared/reference, end to end: the policy is set with the real
//! `identityctl` binary, then the vendor's identity-provider traffic is
//! replayed over HTTP through the real SCIM adapter, and the outcome is read
//! back over gRPC, on a real Postgres database of the test's own.

use identity_lifecycle_tests::{ADMIN_TOKEN, Stack, Tenant, USER_SCHEMA, json, user};
use identity_proto::v1::{
    CreateUserRequest, DeleteUserRequest, GetUserRequest, GroupMapping, GroupMappings,
    PolicyUpdate, ReplaceUserRequest, UpdateTenantRequest, User, UserSource,
};
use reqwest::StatusCode;
use serde_json::Value;

const IDENTITYCTL: &str = env!("CARGO_BIN_EXE_identityctl");

/// Creates a tenant with a SCIM token and applies `policy` flags with
/// `identityctl tenants update`, returning the tenant and the policy it printed.
async fn tenant_with_policy(stack: &Stack, slug: &str, policy: &[&str]) -> (Tenant, Value) {
    let tenant = stack.tenant(slug).await;
    let mut args = vec!["tenants", "update", slug];
    args.extend_from_slice(policy);
    let updated = stack.identityctl(IDENTITYCTL, &args).await;
    (tenant, updated["policy"].clone())
}

async fn grpc_user(stack: &Stack, tenant: &str, id: &str) -> User {
    stack
        .users(ADMIN_TOKEN)
        .get_user(GetUserRequest {
            tenant: tenant.into(),
            id: id.into(),
            show_deleted: true,
        })
        .await
        .unwrap_or_else(|e| panic!("GetUser {id}: {e}"))
        .into_inner()
}

/// An Okta create (integration-wizard shape).
fn okta_user(user_name: &str, given: &str, family: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "externalId": "00u1abcd",
        "name": {"givenName": given, "familyName": family, "formatted": format!("{given} {family}")},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "password": "hunter2-Secret",
        "locale": "en-US",
        "groups": [],
        "active": true
    })
}

/// Okta's deactivation: a pathless replace of `active`.
fn okta_active(active: bool) -> Value {
    json!([{"op": "replace", "value": {"active": active}}])
}

#[tokio::test(flavor = "multi_thread")]
async fn aviator_lowercased_identifiers_fresh_names_and_soft_delete_on_deactivation() {
    let stack = Stack::start().await;
    let (aviator, policy) = tenant_with_policy(
        &stack,
        "aviator",
        &[
            "--lowercase-identifiers",
            "true",
            "--name-policy",
            "given-family-first",
            "--deprovision",
            "soft-delete",
        ],
    )
    .await;
    assert_eq!(policy["lowercase_identifiers"], true);
    assert_eq!(policy["deprovision"], "soft-delete");
    let scim = stack.scim(&aviator.token);

    // userName is stored lowercased; Okta's stale name.formatted loses to given + family.
    let mut body = okta_user("Ada.Lovelace@Example.COM", "Ada", "Lovelace");
    body["name"]["formatted"] = json!("Ada Byron");
    let created = scim.post("/Users", body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["userName"], "ada.lovelace@example.com");
    assert_eq!(
        created.body["emails"][0]["value"],
        "ada.lovelace@example.com"
    );
    let id = created.body["id"].as_str().unwrap_or_default().to_owned();
    let ada = grpc_user(&stack, "aviator", &id).await;
    assert_eq!(ada.full_name, "Ada Lovelace");
    assert_eq!(ada.login_email, "ada.lovelace@example.com");

    // name.formatted is the fallback when given and family are both empty.
    let formatted_only = scim
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "grace@example.com",
                   "name": {"formatted": "Grace Hopper"}}),
        )
        .await;
    assert_eq!(formatted_only.status, StatusCode::CREATED);
    let grace_id = formatted_only.body["id"].as_str().unwrap_or_default();
    assert_eq!(
        grpc_user(&stack, "aviator", grace_id).await.full_name,
        "Grace Hopper"
    );

    // Okta's lookup before create matches whatever case it sends.
    let found = scim
        .filter_users("userName eq \"ADA.LOVELACE@EXAMPLE.COM\"")
        .await;
    assert_eq!(found.body["totalResults"], 1);

    // Unassigning in Okta soft-deletes: gone from SCIM, address obfuscated.
    let deactivated = scim
        .patch(&format!("/Users/{id}"), okta_active(false))
        .await;
    assert_eq!(deactivated.status, StatusCode::OK, "{}", deactivated.body);
    scim.get(&format!("/Users/{id}"))
        .await
        .assert_error(404, None);
    let found = scim
        .filter_users("userName eq \"ada.lovelace@example.com\"")
        .await;
    assert_eq!(found.body["totalResults"], 0);
    let tombstone = grpc_user(&stack, "aviator", &id).await;
    assert!(tombstone.delete_time.is_some());
    assert!(
        !tombstone.user_name.contains("ada"),
        "{}",
        tombstone.user_name
    );
    assert!(tombstone.emails.iter().all(|e| !e.value.contains("ada")));

    // ... so the same address can be provisioned again.
    let again = scim
        .post(
            "/Users",
            okta_user("ada.lovelace@example.com", "Ada", "Lovelace"),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_ne!(again.body["id"], json!(id));
}

#[tokio::test(flavor = "multi_thread")]
async fn aptible_display_name_first_default_role_and_reversible_deactivation() {
    let stack = Stack::start().await;
    let (aptible, policy) = tenant_with_policy(
        &stack,
        "aptible",
        &[
            "--name-policy",
            "display-name-first",
            "--default-role",
            "member",
        ],
    )
    .await;
    assert_eq!(policy["name_policy"], "display-name-first");
    assert_eq!(policy["default_role"], "member");
    let scim = stack.scim(&aptible.token);

    let mut body = okta_user("ada@aptible.example", "Ada", "Lovelace");
    body["displayName"] = json!("Countess of Lovelace");
    let ada = scim.create_user(body).await;
    let ada = grpc_user(&stack, "aptible", &ada).await;
    assert_eq!(ada.full_name, "Countess of Lovelace");
    assert_eq!(ada.roles, ["member"]);
    assert_eq!(ada.source(), UserSource::Scim);

    // Without a displayName, given + family.
    let grace = scim
        .create_user(okta_user("grace@aptible.example", "Grace", "Hopper"))
        .await;
    assert_eq!(
        grpc_user(&stack, "aptible", &grace).await.full_name,
        "Grace Hopper"
    );

    // Suspend is the default deprovisioning: reversible, the user stays readable.
    let off = scim
        .patch(&format!("/Users/{grace}"), okta_active(false))
        .await;
    assert_eq!(off.status, StatusCode::OK);
    let read = scim.get(&format!("/Users/{grace}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["active"], false);
    let on = scim
        .patch(&format!("/Users/{grace}"), okta_active(true))
        .await;
    assert_eq!(on.body["active"], true);
    assert_eq!(grpc_user(&stack, "aptible", &grace).await.roles, ["member"]);

    // A soft DELETE leaves a tombstone internal services can still read.
    stack
        .identityctl(
            IDENTITYCTL,
            &["tenants", "update", "aptible", "--delete-mode", "soft"],
        )
        .await;
    let deleted = scim.delete(&format!("/Users/{grace}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    scim.get(&format!("/Users/{grace}"))
        .await
        .assert_error(404, None);
    let tombstone = grpc_user(&stack, "aptible", &grace).await;
    assert!(tombstone.delete_time.is_some());
    assert!(tombstone.person_id.is_empty());
    assert!(!tombstone.user_name.contains("grace"));
}

#[tokio::test(flavor = "multi_thread")]
async fn accessiq_required_attributes_default_organization_and_group_mappings() {
    let stack = Stack::start().await;
    let (accessiq, policy) = tenant_with_policy(
        &stack,
        "accessiq",
        &[
            "--required-attributes",
            "email,given-name,family-name",
            "--default-organization",
            "acme-hq",
        ],
    )
    .await;
    assert_eq!(
        policy["required_attributes"],
        json!(["email", "given-name", "family-name"])
    );
    let scim = stack.scim(&accessiq.token);

    // A create missing a required attribute is refused, naming it, and creates nothing.
    let mut no_family = user("jo@accessiq.example");
    no_family["name"] = json!({"givenName": "Jo"});
    let refused = scim.post("/Users", no_family).await;
    refused.assert_error(400, Some("invalidValue"));
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("name.familyName"),
        "{}",
        refused.body
    );
    let none = scim
        .filter_users("userName eq \"jo@accessiq.example\"")
        .await;
    assert_eq!(none.body["totalResults"], 0);

    // A complete user joins the default organization.
    let jo = scim.create_user(user("jo@accessiq.example")).await;
    let read = grpc_user(&stack, "accessiq", &jo).await;
    assert_eq!(read.organizations, ["acme-hq"]);
    assert!(read.roles.is_empty());

    // An update that drops a required attribute is refused too, and changes nothing.
    let mut no_email = user("jo@accessiq.example");
    no_email.as_object_mut().map(|o| o.remove("emails"));
    scim.put(&format!("/Users/{jo}"), no_email)
        .await
        .assert_error(400, Some("invalidValue"));
    assert_eq!(grpc_user(&stack, "accessiq", &jo).await.emails.len(), 1);

    // Okta Group Push: the mapped group's membership grants its organization and role.
    let sales = scim
        .post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                   "displayName": "Sales", "members": []}),
        )
        .await;
    assert_eq!(sales.status, StatusCode::CREATED);
    let sales = sales.body["id"].as_str().unwrap_or_default().to_owned();
    // Groups are named by displayName or by id.
    let role_by_id = format!("{sales}=seller");
    let updated = stack
        .identityctl(
            IDENTITYCTL,
            &[
                "tenants",
                "update",
                "accessiq",
                "--group-organization",
                "Sales=sales-emea",
                "--group-role",
                &role_by_id,
            ],
        )
        .await;
    assert_eq!(
        updated["policy"]["group_mappings"],
        json!([
            {"group": sales, "role": "seller", "organization": ""},
            {"group": "Sales", "role": "", "organization": "sales-emea"}
        ])
    );
    let added = scim
        .patch(
            &format!("/Groups/{sales}"),
            json!([{"op": "add", "path": "members", "value": [{"value": jo, "display": "jo"}]}]),
        )
        .await;
    assert!(added.status.is_success(), "{}", added.body);
    let read = grpc_user(&stack, "accessiq", &jo).await;
    assert_eq!(read.organizations, ["acme-hq", "sales-emea"]);
    assert_eq!(read.roles, ["seller"]);
    let removed = scim
        .patch(
            &format!("/Groups/{sales}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{jo}\"]")}]),
        )
        .await;
    assert!(removed.status.is_success(), "{}", removed.body);
    let read = grpc_user(&stack, "accessiq", &jo).await;
    assert_eq!(read.organizations, ["acme-hq"]);
    assert!(read.roles.is_empty());

    // Deactivate, never delete (the default).
    scim.patch(&format!("/Users/{jo}"), okta_active(false))
        .await;
    let read = scim.get(&format!("/Users/{jo}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["active"], false);

    // A user from before the rule can still be deprovisioned; other updates
    // must bring the missing attribute.
    let set_required = |list: &'static str| {
        let stack = &stack;
        async move {
            stack
                .identityctl(
                    IDENTITYCTL,
                    &[
                        "tenants",
                        "update",
                        "accessiq",
                        "--required-attributes",
                        list,
                    ],
                )
                .await
        }
    };
    set_required("none").await;
    let legacy = scim
        .create_user(json!({"schemas": [USER_SCHEMA], "userName": "legacy@accessiq.example"}))
        .await;
    set_required("email,given-name,family-name").await;
    let off = scim
        .patch(&format!("/Users/{legacy}"), okta_active(false))
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    scim.patch(
        &format!("/Users/{legacy}"),
        json!([{"op": "replace", "path": "displayName", "value": "Legacy"}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
}

#[tokio::test(flavor = "multi_thread")]
async fn aritma_entra_primary_email_is_the_login_email() {
    let stack = Stack::start().await;
    let (aritma, policy) =
        tenant_with_policy(&stack, "aritma", &["--login-email", "primary-email"]).await;
    assert_eq!(policy["login_email"], "primary-email");
    let scim = stack.scim(&aritma.token);

    // Entra's default mapping: userName is the UPN, the mail is emails[type eq "work"].
    let created = scim
        .post(
            "/Users",
            json!({
                "schemas": [USER_SCHEMA],
                "externalId": "jyoung",
                "userName": "jyoung@contoso.onmicrosoft.com",
                "active": true,
                "displayName": "Jo Young",
                "emails": [{"primary": true, "type": "work", "value": "Jo.Young@Contoso.com"}],
                "name": {"formatted": "Jo Young", "familyName": "Young", "givenName": "Jo"}
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        grpc_user(&stack, "aritma", &id).await.login_email,
        "jo.young@contoso.com"
    );

    // Entra changes the mail with its own PATCH dialect; the login email follows.
    let changed = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value",
                    "value": "jo@contoso.com"}]),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(
        grpc_user(&stack, "aritma", &id).await.login_email,
        "jo@contoso.com"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tuist_claim_protection_refuses_people_the_tenant_does_not_manage() {
    let stack = Stack::start().await;
    let (tuist, policy) =
        tenant_with_policy(&stack, "tuist", &["--existing-person", "reject"]).await;
    assert_eq!(policy["existing_person"], "reject");
    let other = stack.tenant("other").await;
    let scim = stack.scim(&tuist.token);

    // A person provisioned by another tenant's identity provider.
    let elsewhere = stack
        .scim(&other.token)
        .create_user(user("shared@example.com"))
        .await;
    let refused = scim.post("/Users", user("shared@example.com")).await;
    refused.assert_error(409, Some("uniqueness"));
    let elsewhere_detail = refused.body["detail"].clone();

    // A person who joined this tenant outside SCIM (created by the operator).
    let direct = stack
        .users(ADMIN_TOKEN)
        .create_user(CreateUserRequest {
            tenant: "tuist".into(),
            user: Some(User {
                user_name: "direct@example.com".into(),
                ..User::default()
            }),
        })
        .await
        .expect("operator creates a user")
        .into_inner();
    assert_eq!(direct.source(), UserSource::Direct);
    let refused = scim.post("/Users", user("direct@example.com")).await;
    refused.assert_error(409, Some("uniqueness"));
    // One answer wherever the person is: an identity provider cannot tell
    // whether an address exists in another tenant.
    assert_eq!(refused.body["detail"], elsewhere_detail);
    let detail = elsewhere_detail.as_str().unwrap_or_default();
    assert!(!detail.contains("another tenant"), "{detail}");
    assert!(!detail.contains("example.com"), "{detail}");
    assert_eq!(
        grpc_user(&stack, "tuist", &direct.id).await.etag,
        direct.etag
    );

    // Every write that changes the login address is a claim: PATCH, PUT and
    // bulk of a user the tenant does manage are refused alike, and change nothing.
    let tmp = scim.create_user(user("tmp@tuist.example")).await;
    let before = grpc_user(&stack, "tuist", &tmp).await;
    let patched = scim
        .patch(
            &format!("/Users/{tmp}"),
            json!([
                {"op": "replace", "path": "userName", "value": "shared@example.com"},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "shared@example.com"}
            ]),
        )
        .await;
    patched.assert_error(409, Some("uniqueness"));
    assert_eq!(patched.body["detail"], elsewhere_detail);
    scim.put(&format!("/Users/{tmp}"), user("direct@example.com"))
        .await
        .assert_error(409, Some("uniqueness"));
    let bulk = scim
        .post(
            "/Bulk",
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "PATCH", "path": format!("/Users/{tmp}"), "data": {
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "userName", "value": "shared@example.com"}]
                    }},
                    {"method": "POST", "path": "/Users", "bulkId": "b", "data": user("shared@example.com")}
                ]
            }),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.body);
    for operation in bulk.body["Operations"].as_array().into_iter().flatten() {
        assert_eq!(operation["status"], "409", "{operation}");
    }
    let after = grpc_user(&stack, "tuist", &tmp).await;
    assert_eq!(after.etag, before.etag);
    assert_eq!(after.user_name, "tmp@tuist.example");
    assert_eq!(after.person_id, before.person_id);

    // Linking without a verified domain: the tenant's own direct user is
    // adopted, but another tenant's person is refused exactly as by reject.
    stack
        .identityctl(
            IDENTITYCTL,
            &["tenants", "update", "tuist", "--existing-person", "link"],
        )
        .await;
    let refused = scim.post("/Users", user("shared@example.com")).await;
    refused.assert_error(409, Some("uniqueness"));
    assert_eq!(refused.body["detail"], elsewhere_detail);
    scim.patch(
        &format!("/Users/{tmp}"),
        json!([{"op": "replace", "path": "userName", "value": "shared@example.com"}]),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    let adopted = scim.post("/Users", user("direct@example.com")).await;
    assert_eq!(adopted.status, StatusCode::CREATED, "{}", adopted.body);
    assert_eq!(adopted.body["id"], json!(direct.id));
    assert_eq!(
        grpc_user(&stack, "tuist", &direct.id).await.source(),
        UserSource::Scim
    );

    // Under a verified domain the same writes link to the existing person.
    let updated = stack
        .identityctl(
            IDENTITYCTL,
            &[
                "tenants",
                "update",
                "tuist",
                "--verified-domains",
                "Example.com,tuist.example",
            ],
        )
        .await;
    assert_eq!(
        updated["policy"]["verified_domains"],
        json!(["example.com", "tuist.example"])
    );
    let renamed = scim
        .patch(
            &format!("/Users/{tmp}"),
            json!([{"op": "replace", "path": "userName", "value": "shared@example.com"}]),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(
        grpc_user(&stack, "tuist", &tmp).await.person_id,
        grpc_user(&stack, "other", &elsewhere).await.person_id
    );
    // A domain that is not verified stays protected.
    stack
        .scim(&other.token)
        .create_user(user("kept@other.example"))
        .await;
    scim.post("/Users", user("kept@other.example"))
        .await
        .assert_error(409, Some("uniqueness"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tuist_deprovisioning_removes_the_membership_and_keeps_the_person() {
    let stack = Stack::start().await;
    let (tuist, _) = tenant_with_policy(
        &stack,
        "tuist",
        &[
            "--deprovision",
            "remove-membership",
            "--delete-mode",
            "hard",
            "--synthetic-groups",
            "true",
            "--default-role",
            "viewer",
        ],
    )
    .await;
    let other = stack.tenant("other").await;
    let scim = stack.scim(&tuist.token);

    // The synthetic groups exist from the start (Okta's Import Groups finds them).
    let admins = scim
        .get("/Groups?filter=displayName%20eq%20%22Admins%22&excludedAttributes=members")
        .await;
    assert_eq!(admins.body["totalResults"], 1, "{}", admins.body);
    let admins = admins.body["Resources"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let users_group = scim
        .get("/Groups?filter=displayName%20eq%20%22Users%22")
        .await;
    assert_eq!(users_group.body["totalResults"], 1);

    let ada = scim
        .create_user(okta_user("ada@tuist.example", "Ada", "Lovelace"))
        .await;
    // The same person in another tenant, where the operator added them
    // (an identity provider could not: tuist.example is not its domain).
    let shared_person = stack
        .users(ADMIN_TOKEN)
        .create_user(CreateUserRequest {
            tenant: other.slug.clone(),
            user: Some(User {
                user_name: "ada@tuist.example".into(),
                ..User::default()
            }),
        })
        .await
        .expect("operator adds the person to another tenant")
        .into_inner()
        .id;

    // Membership of a synthetic group sets the role.
    let added = scim
        .patch(
            &format!("/Groups/{admins}"),
            json!([{"op": "add", "path": "members", "value": [{"value": ada}]}]),
        )
        .await;
    assert!(added.status.is_success(), "{}", added.body);
    assert_eq!(
        grpc_user(&stack, "tuist", &ada).await.roles,
        ["admin", "viewer"]
    );
    // Operators see the same with identityctl.
    let shown = stack
        .identityctl(
            IDENTITYCTL,
            &[
                "users",
                "get",
                "--tenant",
                "tuist",
                "--user-name",
                "ADA@tuist.example",
            ],
        )
        .await;
    assert_eq!(shown["id"], json!(ada));
    assert_eq!(shown["roles"], json!(["admin", "viewer"]));
    assert_eq!(shown["groups"], json!(["Admins"]));
    assert_eq!(shown["source"], "scim");
    let missing = stack
        .identityctl_output(
            IDENTITYCTL,
            ADMIN_TOKEN,
            &[
                "users",
                "get",
                "--tenant",
                "tuist",
                "--user-name",
                "nobody@tuist.example",
            ],
        )
        .await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no user named"),
        "{missing:?}"
    );

    // Synthetic groups cannot be deleted or renamed.
    scim.delete(&format!("/Groups/{admins}"))
        .await
        .assert_error(400, Some("mutability"));
    scim.patch(
        &format!("/Groups/{admins}"),
        json!([{"op": "replace", "value": {"id": admins, "displayName": "Owners"}}]),
    )
    .await
    .assert_error(400, Some("mutability"));
    assert_eq!(
        scim.get(&format!("/Groups/{admins}")).await.body["displayName"],
        "Admins"
    );

    // Deprovisioning ends the membership: no roles, no groups; the person stays.
    let before = grpc_user(&stack, "tuist", &ada).await;
    let off = scim
        .patch(&format!("/Users/{ada}"), okta_active(false))
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let after = grpc_user(&stack, "tuist", &ada).await;
    assert!(!after.tenant_member);
    let shown = stack
        .identityctl(IDENTITYCTL, &["users", "get", "--tenant", "tuist", &ada])
        .await;
    assert_eq!(shown["tenant_member"], false);
    assert_eq!(shown["roles"], json!([]));
    assert!(after.roles.is_empty());
    assert!(after.groups.is_empty());
    assert_eq!(after.person_id, before.person_id);
    assert_eq!(
        scim.get(&format!("/Users/{ada}")).await.body["active"],
        false
    );

    // Reactivation makes them a member again with the default role.
    scim.patch(&format!("/Users/{ada}"), okta_active(true))
        .await;
    let back = grpc_user(&stack, "tuist", &ada).await;
    assert!(back.tenant_member);
    assert_eq!(back.roles, ["viewer"]);

    // DELETE is hard here; the person's other tenant keeps them.
    let deleted = scim.delete(&format!("/Users/{ada}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = stack
        .users(ADMIN_TOKEN)
        .get_user(GetUserRequest {
            tenant: "tuist".into(),
            id: ada.clone(),
            show_deleted: true,
        })
        .await
        .expect_err("hard delete leaves no tombstone");
    assert_eq!(gone.code(), tonic::Code::NotFound);
    assert_eq!(
        grpc_user(&stack, "other", &shared_person).await.person_id,
        before.person_id
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn aptible_scim_managed_users_change_only_through_scim() {
    let stack = Stack::start().await;
    let (aptible, policy) =
        tenant_with_policy(&stack, "aptible", &["--scim-managed-lock", "true"]).await;
    assert_eq!(policy["scim_managed_lock"], true);
    let scim = stack.scim(&aptible.token);
    let ada = scim.create_user(user("ada@aptible.example")).await;

    let issue = |name: &'static str, extra: &'static [&'static str]| {
        let stack = &stack;
        async move {
            let mut args = vec![
                "tokens", "issue", "--tenant", "aptible", "--name", name, "--scope", "service",
            ];
            args.extend_from_slice(extra);
            let issued = stack.identityctl(IDENTITYCTL, &args).await;
            issued["secret"].as_str().unwrap_or_default().to_owned()
        }
    };
    let billing = issue("billing", &[]).await;
    let break_glass = issue("break-glass", &["--scim-override"]).await;

    let replace = |token: String, user: User| {
        let stack = &stack;
        async move {
            stack
                .users(&token)
                .replace_user(ReplaceUserRequest {
                    tenant: String::new(),
                    user: Some(user),
                    etag: String::new(),
                })
                .await
        }
    };

    // An internal service may not change the email of a SCIM-managed user ...
    let current = grpc_user(&stack, "aptible", &ada).await;
    let mut new_email = current.clone();
    new_email.emails[0].value = "ada@elsewhere.example".into();
    let refused = replace(billing.clone(), new_email.clone())
        .await
        .expect_err("the lock refuses an email change");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("scim_managed_lock"),
        "{}",
        refused.message()
    );
    assert_eq!(grpc_user(&stack, "aptible", &ada).await.etag, current.etag);

    // ... nor deactivate or remove them ...
    let mut inactive = current.clone();
    inactive.active = Some(false);
    let refused = replace(billing.clone(), inactive)
        .await
        .expect_err("the lock refuses deactivation");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    let refused = stack
        .users(&billing)
        .delete_user(DeleteUserRequest {
            tenant: String::new(),
            id: ada.clone(),
            etag: String::new(),
        })
        .await
        .expect_err("the lock refuses removal");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);

    // ... but may change what the lock does not protect.
    let mut external = current.clone();
    external.external_id = Some("crm-42".into());
    let changed = replace(billing.clone(), external)
        .await
        .expect("externalId is not SCIM-managed")
        .into_inner();
    assert_eq!(changed.external_id.as_deref(), Some("crm-42"));

    // A token with the override permission may, and so may the SCIM path.
    let mut with_override = changed.clone();
    with_override.emails[0].value = "ada@override.example".into();
    replace(break_glass, with_override)
        .await
        .expect("scim_override lifts the lock");
    let mut body = user("ada@aptible.example");
    body["emails"] = json!([{"value": "ada@scim.example", "primary": true}]);
    let put = scim.put(&format!("/Users/{ada}"), body).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);

    // With the policy off, the service token may change it too.
    stack
        .identityctl(
            IDENTITYCTL,
            &[
                "tenants",
                "update",
                "aptible",
                "--scim-managed-lock",
                "false",
            ],
        )
        .await;
    replace(billing, new_email)
        .await
        .expect("no lock without the policy");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_policy_updates_are_refused_and_change_nothing() {
    let stack = Stack::start().await;
    let (acme, before) = tenant_with_policy(&stack, "acme", &["--default-role", "member"]).await;
    let update = |policy: PolicyUpdate| UpdateTenantRequest {
        slug: "acme".into(),
        display_name: None,
        policy: Some(policy),
    };

    let unknown_enum = stack
        .tenants(ADMIN_TOKEN)
        .update_tenant(update(PolicyUpdate {
            deprovision: Some(42),
            ..PolicyUpdate::default()
        }))
        .await
        .expect_err("an unknown deprovision value");
    assert_eq!(unknown_enum.code(), tonic::Code::InvalidArgument);
    assert!(
        unknown_enum.message().contains("deprovision"),
        "{}",
        unknown_enum.message()
    );

    let empty_mapping = stack
        .tenants(ADMIN_TOKEN)
        .update_tenant(update(PolicyUpdate {
            group_mappings: Some(GroupMappings {
                mappings: vec![GroupMapping {
                    group: "Sales".into(),
                    ..GroupMapping::default()
                }],
            }),
            ..PolicyUpdate::default()
        }))
        .await
        .expect_err("a mapping that gives nothing");
    assert_eq!(empty_mapping.code(), tonic::Code::InvalidArgument);

    let by_tenant = stack
        .tenants(&acme.token)
        .update_tenant(update(PolicyUpdate {
            scim_managed_lock: Some(false),
            ..PolicyUpdate::default()
        }))
        .await
        .expect_err("a tenant token cannot change its policy");
    assert_eq!(by_tenant.code(), tonic::Code::PermissionDenied);

    let unknown_tenant = stack
        .tenants(ADMIN_TOKEN)
        .update_tenant(UpdateTenantRequest {
            slug: "nobody".into(),
            ..UpdateTenantRequest::default()
        })
        .await
        .expect_err("no such tenant");
    assert_eq!(unknown_tenant.code(), tonic::Code::NotFound);

    // identityctl refuses malformed flags before calling: a usage error.
    let usage = stack
        .identityctl_output(
            IDENTITYCTL,
            ADMIN_TOKEN,
            &["tenants", "update", "acme", "--group-role", "Sales"],
        )
        .await;
    assert_eq!(usage.status.code(), Some(2), "{usage:?}");

    // A verified domain must be a domain name; the service says which one is not.
    let bad_domain = stack
        .identityctl_output(
            IDENTITYCTL,
            ADMIN_TOKEN,
            &[
                "tenants",
                "update",
                "acme",
                "--verified-domains",
                "example.com,not a domain",
            ],
        )
        .await;
    assert!(!bad_domain.status.success(), "{bad_domain:?}");
    let stderr = String::from_utf8_lossy(&bad_domain.stderr);
    assert!(stderr.contains("not a domain"), "{stderr}");

    let after = stack
        .identityctl(IDENTITYCTL, &["tenants", "get", "acme"])
        .await;
    assert_eq!(after["policy"], before);
}
