//! Group and membership tests on a real Postgres (TEST_DATABASE_URL),
//! through real gRPC.

mod common;

use std::collections::HashSet;

use common::{OPERATOR, TestService, call, reason};
use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression;
use identity_proto::v1::member_change::Change;
use identity_proto::v1::patch_operation::Op;
use identity_proto::v1::{
    AddMembersRequest, AttributePath, Comparison, CreateGroupRequest, CreateUserRequest,
    DeleteGroupRequest, DeleteUserRequest, Filter, GetGroupRequest, GetUserRequest, Group,
    ListGroupsRequest, ListMembersRequest, ListUserGroupsRequest, ListUsersRequest, Member,
    MemberChange, MemberIds, Name, PatchGroupRequest, PatchOperation, PatchUserRequest,
    RemoveAllMembers, RemoveMembersRequest, ReplaceGroupRequest, User, ValuePath,
};
use serde_json::json;
use tonic::{Code, Status};

fn path(attribute: &str, sub: &str) -> AttributePath {
    AttributePath {
        schema: String::new(),
        attribute: attribute.into(),
        sub_attribute: sub.into(),
        value_filter: None,
    }
}

fn cmp(attribute: &str, sub: &str, value: serde_json::Value) -> Filter {
    Filter {
        expression: Some(Expression::Comparison(Box::new(Comparison {
            path: Some(Box::new(path(attribute, sub))),
            operator: Operator::Eq as i32,
            value: Some(identity_proto::json_to_value(value)),
        }))),
    }
}

/// A typed membership change of these users, as the adapter sends what
/// Okta and Entra write as `members` operations.
fn members_change(change: fn(MemberIds) -> Change, ids: &[&str]) -> MemberChange {
    MemberChange {
        change: Some(change(MemberIds {
            user_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        })),
    }
}

fn replace_op(attribute: &str, value: serde_json::Value) -> PatchOperation {
    PatchOperation {
        op: Op::Replace as i32,
        path: Some(path(attribute, "")),
        value: Some(identity_proto::json_to_value(value)),
    }
}

/// A started service with one tenant and its token.
struct Fixture {
    svc: TestService,
    token: String,
}

impl Fixture {
    async fn start(slug: &str) -> Fixture {
        let svc = TestService::start().await;
        let token = svc.tenant_with_token(slug).await;
        Fixture { svc, token }
    }

    async fn user(&self, user_name: &str) -> User {
        self.svc
            .users()
            .create_user(call(
                &self.token,
                CreateUserRequest {
                    tenant: String::new(),
                    user: Some(User {
                        user_name: user_name.into(),
                        ..User::default()
                    }),
                },
            ))
            .await
            .unwrap_or_else(|e| panic!("create user {user_name}: {e}"))
            .into_inner()
    }

    async fn users(&self, prefix: &str, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            ids.push(self.user(&format!("{prefix}{i}@example.com")).await.id);
        }
        ids
    }

    async fn try_create_group(
        &self,
        display_name: &str,
        members: &[&str],
    ) -> Result<Group, Status> {
        self.svc
            .groups()
            .create_group(call(
                &self.token,
                CreateGroupRequest {
                    tenant: String::new(),
                    group: Some(Group {
                        display_name: display_name.into(),
                        ..Group::default()
                    }),
                    member_ids: members.iter().map(|m| (*m).to_owned()).collect(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn group(&self, display_name: &str, members: &[&str]) -> Group {
        self.try_create_group(display_name, members)
            .await
            .unwrap_or_else(|e| panic!("create group {display_name}: {e}"))
    }

    async fn get(&self, id: &str) -> Result<Group, Status> {
        self.svc
            .groups()
            .get_group(call(
                &self.token,
                GetGroupRequest {
                    tenant: String::new(),
                    id: id.into(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn patch(&self, id: &str, operations: Vec<PatchOperation>) -> Result<Group, Status> {
        self.change(id, operations, Vec::new()).await
    }

    async fn change(
        &self,
        id: &str,
        operations: Vec<PatchOperation>,
        member_changes: Vec<MemberChange>,
    ) -> Result<Group, Status> {
        self.svc
            .groups()
            .patch_group(call(
                &self.token,
                PatchGroupRequest {
                    tenant: String::new(),
                    id: id.into(),
                    operations,
                    etag: String::new(),
                    member_changes,
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Every member, read page by page; checks the pages' order and tokens.
    async fn members(&self, group: &str, page_size: i32) -> Vec<Member> {
        let mut all: Vec<Member> = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .svc
                .groups()
                .list_members(call(
                    &self.token,
                    ListMembersRequest {
                        tenant: String::new(),
                        group_id: group.into(),
                        page_size: Some(page_size),
                        page_token: token,
                    },
                ))
                .await
                .unwrap_or_else(|e| panic!("list members: {e}"))
                .into_inner();
            assert!(page.members.len() <= page_size as usize);
            all.extend(page.members);
            if page.next_page_token.is_empty() {
                return all;
            }
            token = page.next_page_token;
        }
    }

    async fn member_ids(&self, group: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .members(group, 1000)
            .await
            .into_iter()
            .map(|m| m.user_id)
            .collect();
        ids.sort();
        ids
    }

    async fn get_user(&self, id: &str) -> Result<User, Status> {
        self.svc
            .users()
            .get_user(call(
                &self.token,
                GetUserRequest {
                    id: id.into(),
                    ..GetUserRequest::default()
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    ids.sort();
    ids
}

fn expect_err<T: std::fmt::Debug>(result: Result<T, Status>, what: &str) -> Status {
    match result {
        Ok(value) => panic!("{what} succeeded: {value:?}"),
        Err(status) => status,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_members_and_non_members_are_no_ops() {
    let f = Fixture::start("noop").await;
    let ids = f.users("m", 3).await;
    let (a, b, c) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    let group = f.group("Admins", &[a]).await;
    assert_eq!((group.member_count, group.etag.as_str()), (1, "1"));

    let added = f
        .change(
            &group.id,
            vec![],
            vec![members_change(Change::Add, &[a, b])],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((added.member_count, added.etag.as_str()), (2, "2"));
    // Adding an existing member changes nothing but the version.
    let again = f
        .change(&group.id, vec![], vec![members_change(Change::Add, &[a])])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.member_count, 2);
    assert_eq!(f.member_ids(&group.id).await, sorted(&[a, b]));

    // Removing a non-member (a user, or an id of nobody) is a no-op.
    let nobody = uuid::Uuid::new_v4().to_string();
    let same = f
        .change(
            &group.id,
            vec![],
            vec![
                members_change(Change::Remove, &[c, &nobody]),
                members_change(Change::Remove, &[c]),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(same.member_count, 2);
    assert_eq!(f.member_ids(&group.id).await, sorted(&[a, b]));

    // Entra's remove with a value list, Okta's remove with a value filter.
    let fewer = f
        .change(
            &group.id,
            vec![],
            vec![members_change(Change::Remove, &[b])],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fewer.member_count, 1);
    let none = f
        .change(
            &group.id,
            vec![],
            vec![members_change(Change::Remove, &[a])],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(none.member_count, 0);
    assert!(f.member_ids(&group.id).await.is_empty());

    // The AddMembers / RemoveMembers RPCs follow the same rules.
    let mut groups = f.svc.groups();
    let via_rpc = groups
        .add_members(call(
            &f.token,
            AddMembersRequest {
                tenant: String::new(),
                group_id: group.id.clone(),
                user_ids: vec![a.into(), b.into(), a.into()],
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(via_rpc.member_count, 2);
    let removed = groups
        .remove_members(call(
            &f.token,
            RemoveMembersRequest {
                tenant: String::new(),
                group_id: group.id.clone(),
                user_ids: vec![b.into(), c.into()],
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(removed.member_count, 1);

    // replace sets exactly the given set; remove without value empties.
    let replaced = f
        .change(
            &group.id,
            vec![],
            vec![members_change(Change::Replace, &[b, c])],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(replaced.member_count, 2);
    assert_eq!(f.member_ids(&group.id).await, sorted(&[b, c]));
    let remove_all = MemberChange {
        change: Some(Change::RemoveAll(RemoveAllMembers {})),
    };
    let emptied = f
        .change(&group.id, vec![], vec![remove_all])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(emptied.member_count, 0);
    assert!(f.member_ids(&group.id).await.is_empty());
    f.svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_members_are_invalid_values_and_change_nothing() {
    let f = Fixture::start("unknown").await;
    let ids = f.users("m", 2).await;
    let (a, b) = (ids[0].as_str(), ids[1].as_str());
    let group = f.group("Admins", &[a]).await;

    let gone = f.user("gone@example.com").await;
    f.svc
        .users()
        .delete_user(call(
            &f.token,
            DeleteUserRequest {
                id: gone.id.clone(),
                ..DeleteUserRequest::default()
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let other_token = f.svc.tenant_with_token("elsewhere").await;
    let stranger = f
        .svc
        .users()
        .create_user(call(
            &other_token,
            CreateUserRequest {
                tenant: String::new(),
                user: Some(User {
                    user_name: "stranger".into(),
                    ..User::default()
                }),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let nobody = uuid::Uuid::new_v4().to_string();

    for bad in [
        nobody.as_str(),
        gone.id.as_str(),
        stranger.id.as_str(),
        "bob",
    ] {
        // A valid rename and a valid add in the same request are not applied either.
        let status = expect_err(
            f.change(
                &group.id,
                vec![replace_op("displayName", json!("Renamed"))],
                vec![
                    members_change(Change::Add, &[b]),
                    members_change(Change::Add, &[bad]),
                ],
            )
            .await,
            "unknown member",
        );
        assert_eq!(
            (status.code(), reason(&status).as_str()),
            (Code::InvalidArgument, "INVALID_VALUE"),
            "{bad}: {status:?}"
        );
        assert!(status.message().contains(bad), "{}", status.message());
        let now = f.get(&group.id).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                now.display_name.as_str(),
                now.etag.as_str(),
                now.member_count
            ),
            ("Admins", "1", 1)
        );
        assert_eq!(f.member_ids(&group.id).await, sorted(&[a]));

        let replace = f
            .svc
            .groups()
            .replace_group(call(
                &f.token,
                ReplaceGroupRequest {
                    tenant: String::new(),
                    group: Some(Group {
                        id: group.id.clone(),
                        display_name: "Admins".into(),
                        ..Group::default()
                    }),
                    member_ids: vec![b.into(), bad.into()],
                    etag: String::new(),
                },
            ))
            .await;
        assert_eq!(
            reason(&expect_err(replace, "replace with unknown member")),
            "INVALID_VALUE"
        );
        let add = f
            .svc
            .groups()
            .add_members(call(
                &f.token,
                AddMembersRequest {
                    tenant: String::new(),
                    group_id: group.id.clone(),
                    user_ids: vec![bad.into()],
                },
            ))
            .await;
        assert_eq!(reason(&expect_err(add, "AddMembers")), "INVALID_VALUE");
    }
    assert_eq!(f.member_ids(&group.id).await, sorted(&[a]));

    // A create with an unknown member creates nothing: the name stays free.
    let create = f.try_create_group("Ops", &[a, &nobody]).await;
    assert_eq!(reason(&expect_err(create, "create")), "INVALID_VALUE");
    let ops = f.group("Ops", &[a]).await;
    assert_eq!(ops.member_count, 1);
    f.svc.stop().await;
}

/// A member id that is not a user id fails the same way on every path that
/// takes member ids: group create and replace, PATCH member changes (add,
/// replace and remove), AddMembers and RemoveMembers. A malformed id
/// names no user, so it is refused like an unknown user id is on create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_member_id_is_the_same_error_on_every_path() {
    let f = Fixture::start("bad-ids").await;
    let ids = f.users("m", 1).await;
    let group = f.group("Admins", &[&ids[0]]).await;
    let bad = ["bob", "not-a-uuid"];
    let user_ids: Vec<String> = bad.map(str::to_owned).to_vec();
    let mut outcomes = vec![("create", f.try_create_group("Ops", &bad).await.map(|_| ()))];
    let replace = f
        .svc
        .groups()
        .replace_group(call(
            &f.token,
            ReplaceGroupRequest {
                tenant: String::new(),
                group: Some(Group {
                    id: group.id.clone(),
                    display_name: "Admins".into(),
                    ..Group::default()
                }),
                member_ids: user_ids.clone(),
                etag: String::new(),
            },
        ))
        .await;
    outcomes.push(("replace", replace.map(|_| ())));
    for (what, change) in [
        ("PATCH add", members_change(Change::Add, &bad)),
        ("PATCH replace", members_change(Change::Replace, &bad)),
        ("PATCH remove", members_change(Change::Remove, &bad)),
    ] {
        let outcome = f.change(&group.id, vec![], vec![change]).await;
        outcomes.push((what, outcome.map(|_| ())));
    }
    let add = f
        .svc
        .groups()
        .add_members(call(
            &f.token,
            AddMembersRequest {
                tenant: String::new(),
                group_id: group.id.clone(),
                user_ids: user_ids.clone(),
            },
        ))
        .await;
    outcomes.push(("AddMembers", add.map(|_| ())));
    let remove = f
        .svc
        .groups()
        .remove_members(call(
            &f.token,
            RemoveMembersRequest {
                tenant: String::new(),
                group_id: group.id.clone(),
                user_ids,
            },
        ))
        .await;
    outcomes.push(("RemoveMembers", remove.map(|_| ())));
    let expected = (
        Code::InvalidArgument,
        "INVALID_VALUE".to_owned(),
        "members 'bob', 'not-a-uuid' are not users of this tenant".to_owned(),
    );
    for (what, outcome) in outcomes {
        let status = expect_err(outcome, what);
        assert_eq!(
            (status.code(), reason(&status), status.message().to_owned()),
            expected,
            "{what}"
        );
    }
    let now = f.get(&group.id).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((now.etag.as_str(), now.member_count), ("1", 1));
    f.svc.stop().await;
}

/// Membership travels typed: an operation naming `members` (with a value
/// list, a value filter or a sub-attribute) is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_in_operations_are_invalid_paths() {
    let f = Fixture::start("members-op").await;
    let ids = f.users("m", 1).await;
    let group = f.group("Admins", &[]).await;
    let by_filter = AttributePath {
        value_filter: Some(Box::new(cmp("value", "", json!(ids[0])))),
        ..path("members", "")
    };
    for members_path in [path("members", ""), path("Members", "value"), by_filter] {
        let status = expect_err(
            f.patch(
                &group.id,
                vec![PatchOperation {
                    op: Op::Add as i32,
                    path: Some(members_path.clone()),
                    value: Some(identity_proto::json_to_value(json!([{"value": ids[0]}]))),
                }],
            )
            .await,
            "members in operations",
        );
        assert_eq!(
            (status.code(), reason(&status).as_str()),
            (Code::InvalidArgument, "INVALID_PATH"),
            "{members_path:?}: {status:?}"
        );
        assert!(status.message().contains("member_changes"), "{status:?}");
    }
    let now = f.get(&group.id).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((now.etag.as_str(), now.member_count), ("1", 0));
    f.svc.stop().await;
}

/// The service takes canonical operations only (the proto's contract): a
/// pathless operation sent straight over gRPC is refused, for users and
/// groups alike, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathless_operations_are_invalid_paths() {
    let f = Fixture::start("pathless").await;
    let ids = f.users("m", 1).await;
    let group = f.group("Admins", &[]).await;
    let pathless = |value: serde_json::Value| PatchOperation {
        op: Op::Add as i32,
        path: None,
        value: Some(identity_proto::json_to_value(value)),
    };
    let on_group = f
        .patch(
            &group.id,
            vec![pathless(json!({"members": [{"value": ids[0]}]}))],
        )
        .await;
    let on_user = f
        .svc
        .users()
        .patch_user(call(
            &f.token,
            PatchUserRequest {
                id: ids[0].clone(),
                operations: vec![pathless(json!({"active": false}))],
                ..PatchUserRequest::default()
            },
        ))
        .await;
    for status in [
        expect_err(on_group, "pathless group patch"),
        expect_err(on_user, "pathless user patch"),
    ] {
        assert_eq!(
            (status.code(), reason(&status).as_str()),
            (Code::InvalidArgument, "INVALID_PATH"),
            "{status:?}"
        );
        assert!(status.message().contains("needs a path"), "{status:?}");
    }
    let now = f.get(&group.id).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((now.etag.as_str(), now.member_count), ("1", 0));
    f.svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_adding_different_members_all_land() {
    const WRITERS: usize = 20;
    let f = Fixture::start("busy").await;
    let ids = f.users("m", WRITERS).await;
    let group = f.group("Busy", &[]).await;
    let writers = ids.iter().map(|id| {
        let mut client = f.svc.groups();
        let token = f.token.clone();
        let group = group.id.clone();
        let id = id.clone();
        tokio::spawn(async move {
            client
                .patch_group(call(
                    &token,
                    PatchGroupRequest {
                        tenant: String::new(),
                        id: group,
                        operations: vec![],
                        etag: String::new(),
                        member_changes: vec![members_change(Change::Add, &[&id])],
                    },
                ))
                .await
        })
    });
    for result in futures::future::join_all(writers).await {
        result
            .unwrap_or_else(|e| panic!("task: {e}"))
            .unwrap_or_else(|e| panic!("patch: {e}"));
    }
    let after = f.get(&group.id).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after.member_count, WRITERS as i64);
    assert_eq!(after.etag, (WRITERS + 1).to_string());
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(f.member_ids(&group.id).await, expected);
    f.svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_removes_its_memberships() {
    let f = Fixture::start("deluser").await;
    let ids = f.users("m", 2).await;
    let (a, b) = (ids[0].as_str(), ids[1].as_str());
    let one = f.group("One", &[a, b]).await;
    let two = f.group("Two", &[a]).await;
    let user = f.get_user(a).await.unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = user
        .groups
        .iter()
        .map(|g| g.display_name.as_str())
        .collect();
    assert_eq!(names, ["One", "Two"]);

    f.svc
        .users()
        .delete_user(call(
            &f.token,
            DeleteUserRequest {
                id: a.into(),
                ..DeleteUserRequest::default()
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let one_after = f.get(&one.id).await.unwrap_or_else(|e| panic!("{e}"));
    let two_after = f.get(&two.id).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((one_after.member_count, two_after.member_count), (1, 0));
    // The groups changed, so their etags did.
    assert_ne!(one_after.etag, one.etag);
    assert_eq!(f.member_ids(&one.id).await, sorted(&[b]));
    assert!(f.member_ids(&two.id).await.is_empty());
    let tombstone = f
        .svc
        .users()
        .get_user(call(
            &f.token,
            GetUserRequest {
                tenant: String::new(),
                id: a.into(),
                show_deleted: true,
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert!(tombstone.groups.is_empty());
    let groups_of = f
        .svc
        .groups()
        .list_user_groups(call(
            &f.token,
            ListUserGroupsRequest {
                tenant: String::new(),
                user_id: a.into(),
            },
        ))
        .await;
    assert_eq!(
        expect_err(groups_of, "groups of a deleted user").code(),
        Code::NotFound
    );
    f.svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_group_keeps_its_users() {
    let f = Fixture::start("delgroup").await;
    let ids = f.users("m", 2).await;
    let (a, b) = (ids[0].as_str(), ids[1].as_str());
    let doomed = f.group("Doomed", &[a, b]).await;
    let kept = f.group("Kept", &[a]).await;

    let stale = f
        .svc
        .groups()
        .delete_group(call(
            &f.token,
            DeleteGroupRequest {
                tenant: String::new(),
                id: doomed.id.clone(),
                etag: "W/\"7\"".into(),
            },
        ))
        .await;
    assert_eq!(
        reason(&expect_err(stale, "delete with a stale etag")),
        "ETAG_MISMATCH"
    );
    f.svc
        .groups()
        .delete_group(call(
            &f.token,
            DeleteGroupRequest {
                tenant: String::new(),
                id: doomed.id.clone(),
                etag: doomed.etag.clone(),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        expect_err(f.get(&doomed.id).await, "get deleted group").code(),
        Code::NotFound
    );
    let members = f
        .svc
        .groups()
        .list_members(call(
            &f.token,
            ListMembersRequest {
                group_id: doomed.id.clone(),
                ..ListMembersRequest::default()
            },
        ))
        .await;
    assert_eq!(
        expect_err(members, "members of a deleted group").code(),
        Code::NotFound
    );
    for id in [a, b] {
        let user = f.get_user(id).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(user.groups.iter().all(|g| g.id != doomed.id));
    }
    let kept_after = f.get(&kept.id).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((kept_after.member_count, kept_after.etag), (1, kept.etag));
    f.svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_members_pages_cover_every_member_exactly_once() {
    const MEMBERS: usize = 57;
    let f = Fixture::start("pages").await;
    let named = f
        .svc
        .users()
        .create_user(call(
            &f.token,
            CreateUserRequest {
                tenant: String::new(),
                user: Some(User {
                    user_name: "ada@example.com".into(),
                    name: Some(Name {
                        given_name: Some("Ada".into()),
                        family_name: Some("Lovelace".into()),
                        ..Name::default()
                    }),
                    ..User::default()
                }),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let mut ids = f.users("m", MEMBERS - 1).await;
    ids.push(named.id.clone());
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let group = f.group("Big", &refs).await;
    assert_eq!(group.member_count, MEMBERS as i64);

    for page_size in [1, 10, 56, 57, 1000] {
        let members = f.members(&group.id, page_size).await;
        let listed: Vec<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
        let unique: HashSet<&str> = listed.iter().copied().collect();
        assert_eq!(listed.len(), MEMBERS, "page size {page_size}");
        assert_eq!(unique.len(), MEMBERS, "page size {page_size}");
        let mut in_order = listed.clone();
        in_order.sort();
        assert_eq!(listed, in_order, "members come in user id order");
    }
    let members = f.members(&group.id, 1000).await;
    let ada = members.iter().find(|m| m.user_id == named.id);
    assert_eq!(
        ada.map(|m| (m.display.as_str(), m.user_name.as_str())),
        Some(("Ada Lovelace", "ada@example.com"))
    );
    let plain = members.iter().find(|m| m.user_id == ids[0]);
    assert_eq!(
        plain.map(|m| m.display.as_str()),
        Some("m0@example.com"),
        "no name: the userName"
    );
    let bad_token = f
        .svc
        .groups()
        .list_members(call(
            &f.token,
            ListMembersRequest {
                group_id: group.id.clone(),
                page_token: "garbage".into(),
                ..ListMembersRequest::default()
            },
        ))
        .await;
    assert_eq!(
        reason(&expect_err(bad_token, "bad token")),
        "INVALID_CURSOR"
    );
    f.svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_names_are_unique_case_insensitively() {
    let f = Fixture::start("names").await;
    let admins = f.group("Admins", &[]).await;
    let clash = f.try_create_group("ADMINS", &[]).await;
    let status = expect_err(clash, "duplicate displayName");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::AlreadyExists, "UNIQUENESS")
    );
    let ops = f.group("Ops", &[]).await;
    let rename = f
        .patch(&ops.id, vec![replace_op("displayName", json!("admins"))])
        .await;
    assert_eq!(reason(&expect_err(rename, "rename clash")), "UNIQUENESS");
    let replace = f
        .svc
        .groups()
        .replace_group(call(
            &f.token,
            ReplaceGroupRequest {
                tenant: String::new(),
                group: Some(Group {
                    id: ops.id.clone(),
                    display_name: "aDmInS".into(),
                    ..Group::default()
                }),
                member_ids: Vec::new(),
                etag: String::new(),
            },
        ))
        .await;
    assert_eq!(reason(&expect_err(replace, "replace clash")), "UNIQUENESS");
    // Changing only the case of one's own name is fine.
    let recased = f
        .patch(&admins.id, vec![replace_op("displayName", json!("ADMINS"))])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(recased.display_name, "ADMINS");
    // Another tenant has its own names.
    let other = f.svc.tenant_with_token("names-2").await;
    f.svc
        .groups()
        .create_group(call(
            &other,
            CreateGroupRequest {
                tenant: String::new(),
                group: Some(Group {
                    display_name: "admins".into(),
                    ..Group::default()
                }),
                member_ids: Vec::new(),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let empty = f.try_create_group(" ", &[]).await;
    assert_eq!(reason(&expect_err(empty, "empty name")), "INVALID_VALUE");
    f.svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_writes_reads_filters_and_tenancy() {
    let f = Fixture::start("groups").await;
    let ids = f.users("m", 3).await;
    let (a, b, c) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    let admins = f.group("Admins", &[a, b]).await;
    let ops = f.group("Ops", &[b]).await;
    f.group("Empty", &[]).await;

    // Okta's pathless replace echoing the id, as the adapter expands it;
    // attributes go to the bag.
    let patched = f
        .change(
            &ops.id,
            vec![
                replace_op("id", json!(ops.id)),
                replace_op("displayName", json!("Operations")),
                replace_op("description", json!("on call")),
                replace_op("externalId", json!("OPS-1")),
            ],
            vec![members_change(Change::Add, &[c])],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(patched.display_name, "Operations");
    assert_eq!(patched.external_id.as_deref(), Some("OPS-1"));
    assert_eq!(patched.member_count, 2);
    let bag = patched.attributes.map(identity_proto::struct_to_json);
    assert_eq!(
        bag.and_then(|b| b.get("description").cloned()),
        Some(json!("on call"))
    );
    let other_id = expect_err(
        f.patch(&ops.id, vec![replace_op("id", json!(admins.id))])
            .await,
        "id change",
    );
    assert_eq!(reason(&other_id), "MUTABILITY");

    // User reads carry the user's groups, in lists with one query per page.
    let listed = f
        .svc
        .users()
        .list_users(call(&f.token, ListUsersRequest::default()))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .users;
    let groups_of = |id: &str| -> Vec<String> {
        listed
            .iter()
            .find(|u| u.id == id)
            .map(|u| u.groups.iter().map(|g| g.display_name.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(groups_of(a), ["Admins"]);
    assert_eq!(groups_of(b), ["Admins", "Operations"]);
    assert_eq!(groups_of(c), ["Operations"]);
    let user_groups = f
        .svc
        .groups()
        .list_user_groups(call(
            &f.token,
            ListUserGroupsRequest {
                tenant: String::new(),
                user_id: b.into(),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .groups;
    let pairs: Vec<(&str, &str)> = user_groups
        .iter()
        .map(|g| (g.id.as_str(), g.display_name.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            (admins.id.as_str(), "Admins"),
            (ops.id.as_str(), "Operations")
        ]
    );

    // Filters compile to SQL that Postgres evaluates as SCIM says.
    let list = |filter: Filter| {
        let mut client = f.svc.groups();
        let token = f.token.clone();
        async move {
            client
                .list_groups(call(
                    &token,
                    ListGroupsRequest {
                        filter: Some(filter),
                        ..ListGroupsRequest::default()
                    },
                ))
                .await
                .map(|r| {
                    let mut names: Vec<String> = r
                        .into_inner()
                        .groups
                        .into_iter()
                        .map(|g| g.display_name)
                        .collect();
                    names.sort();
                    names
                })
        }
    };
    let by_name = list(cmp("displayName", "", json!("ADMINS"))).await;
    assert_eq!(by_name.ok(), Some(vec!["Admins".to_owned()]));
    let by_member = list(cmp("members", "value", json!(b))).await;
    assert_eq!(
        by_member.ok(),
        Some(vec!["Admins".to_owned(), "Operations".to_owned()])
    );
    let by_value_path = list(Filter {
        expression: Some(Expression::ValuePath(Box::new(ValuePath {
            path: Some(Box::new(path("members", ""))),
            filter: Some(Box::new(cmp("value", "", json!(c)))),
        }))),
    })
    .await;
    assert_eq!(by_value_path.ok(), Some(vec!["Operations".to_owned()]));
    let case_exact = list(cmp("externalId", "", json!("ops-1"))).await;
    assert_eq!(case_exact.ok(), Some(Vec::new()));
    let recent = list(Filter {
        expression: Some(Expression::Comparison(Box::new(Comparison {
            path: Some(Box::new(path("meta", "lastModified"))),
            operator: Operator::Gt as i32,
            value: Some(identity_proto::json_to_value(json!("2000-01-01T00:00:00Z"))),
        }))),
    })
    .await;
    assert_eq!(recent.map(|names| names.len()).ok(), Some(3));
    let unknown = expect_err(
        list(cmp("userName", "", json!("x"))).await,
        "user attribute in a group filter",
    );
    assert_eq!(reason(&unknown), "INVALID_FILTER");
    assert!(unknown.message().contains("userName"));

    // Paging as for users.
    let page = f
        .svc
        .groups()
        .list_groups(call(
            &f.token,
            ListGroupsRequest {
                page_size: Some(2),
                ..ListGroupsRequest::default()
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!((page.groups.len(), page.total_size), (2, Some(3)));
    let rest = f
        .svc
        .groups()
        .list_groups(call(
            &f.token,
            ListGroupsRequest {
                page_size: Some(2),
                page_token: page.next_page_token,
                ..ListGroupsRequest::default()
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(rest.groups.len(), 1);
    assert!(rest.next_page_token.is_empty());

    // PUT replaces attributes and members; its etag precondition holds.
    let stale = f
        .svc
        .groups()
        .replace_group(call(
            &f.token,
            ReplaceGroupRequest {
                tenant: String::new(),
                group: Some(Group {
                    id: admins.id.clone(),
                    display_name: "Admins".into(),
                    ..Group::default()
                }),
                member_ids: vec![c.into()],
                etag: "W/\"9\"".into(),
            },
        ))
        .await;
    assert_eq!(reason(&expect_err(stale, "stale PUT")), "ETAG_MISMATCH");
    let replaced = f
        .svc
        .groups()
        .replace_group(call(
            &f.token,
            ReplaceGroupRequest {
                tenant: String::new(),
                group: Some(Group {
                    id: admins.id.clone(),
                    display_name: "Admins".into(),
                    external_id: Some("ADM".into()),
                    ..Group::default()
                }),
                member_ids: vec![b.into(), c.into()],
                etag: admins.etag.clone(),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(replaced.member_count, 2);
    assert_eq!(replaced.external_id.as_deref(), Some("ADM"));
    assert_eq!(f.member_ids(&admins.id).await, sorted(&[b, c]));

    // Tenancy: other tenants see nothing; the operator names the tenant.
    let other = f.svc.tenant_with_token("groups-2").await;
    let hidden = f
        .svc
        .groups()
        .get_group(call(
            &other,
            GetGroupRequest {
                tenant: String::new(),
                id: admins.id.clone(),
            },
        ))
        .await;
    assert_eq!(
        expect_err(hidden, "cross-tenant get").code(),
        Code::NotFound
    );
    let cross = f
        .svc
        .groups()
        .list_groups(call(
            &other,
            ListGroupsRequest {
                tenant: "groups".into(),
                ..ListGroupsRequest::default()
            },
        ))
        .await;
    assert_eq!(
        reason(&expect_err(cross, "naming another tenant")),
        "TOKEN_INVALID"
    );
    let cross_add = f
        .svc
        .groups()
        .add_members(call(
            &other,
            AddMembersRequest {
                tenant: String::new(),
                group_id: admins.id.clone(),
                user_ids: Vec::new(),
            },
        ))
        .await;
    assert_eq!(
        expect_err(cross_add, "cross-tenant add").code(),
        Code::NotFound
    );
    let operator = f
        .svc
        .groups()
        .get_group(call(
            OPERATOR,
            GetGroupRequest {
                tenant: "groups".into(),
                id: admins.id.clone(),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(operator.tenant, "groups");
    let unnamed = f
        .svc
        .groups()
        .get_group(call(
            OPERATOR,
            GetGroupRequest {
                tenant: String::new(),
                id: admins.id.clone(),
            },
        ))
        .await;
    assert_eq!(
        expect_err(unnamed, "operator without tenant").code(),
        Code::InvalidArgument
    );
    let malformed = f.get("00919288221112222").await;
    assert_eq!(expect_err(malformed, "malformed id").code(), Code::NotFound);
    f.svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn user_deletes_racing_membership_writes_leave_consistent_groups() {
    const USERS: usize = 12;
    let f = Fixture::start("race").await;
    let doomed = f.users("doomed", USERS).await;
    let extra = f.users("extra", USERS).await;
    let doomed_refs: Vec<&str> = doomed.iter().map(String::as_str).collect();
    let mut groups = Vec::new();
    for name in ["G1", "G2", "G3"] {
        // Every doomed user is in every group, so the deletes share group rows.
        groups.push(f.group(name, &doomed_refs[..USERS / 2]).await.id);
    }
    let mut tasks = Vec::new();
    for (i, user) in doomed.iter().enumerate() {
        let mut users = f.svc.users();
        let token = f.token.clone();
        let user = user.clone();
        tasks.push(tokio::spawn(async move {
            users
                .delete_user(call(
                    &token,
                    DeleteUserRequest {
                        id: user,
                        ..DeleteUserRequest::default()
                    },
                ))
                .await
                .map(|_| ())
        }));
        // Meanwhile: add the doomed user (racing its delete) and an extra one
        // to a group, and remove another doomed user from it.
        let mut client = f.svc.groups();
        let token = f.token.clone();
        let group = groups[i % groups.len()].clone();
        let adds = [doomed[i].clone(), extra[i].clone()];
        let removes = [doomed[(i + 1) % USERS].clone()];
        tasks.push(tokio::spawn(async move {
            let added = client
                .patch_group(call(
                    &token,
                    PatchGroupRequest {
                        tenant: String::new(),
                        id: group.clone(),
                        operations: vec![],
                        etag: String::new(),
                        member_changes: vec![
                            members_change(Change::Add, &[&adds[0], &adds[1]]),
                            members_change(Change::Remove, &[&removes[0]]),
                        ],
                    },
                ))
                .await;
            match added {
                Ok(_) => Ok(()),
                // The doomed user was deleted first: it is no user any more.
                Err(status) if reason(&status) == "INVALID_VALUE" => Ok(()),
                Err(status) => Err(status),
            }
        }));
    }
    for task in futures::future::join_all(tasks).await {
        task.unwrap_or_else(|e| panic!("task: {e}"))
            .unwrap_or_else(|e| panic!("a racing write failed: {e:?}"));
    }
    let doomed: HashSet<String> = doomed.into_iter().collect();
    for group in &groups {
        let members = f.member_ids(group).await;
        assert!(
            members.iter().all(|m| !doomed.contains(m)),
            "a deleted user is still a member"
        );
        let now = f.get(group).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            now.member_count,
            members.len() as i64,
            "member_count drifted"
        );
    }
    f.svc.stop().await;
}
