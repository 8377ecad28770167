//! A group's members in a response body: read from ListMembers one page at a
//! time (never the whole set in one gRPC message) and written out as each
//! page arrives, so a 100,000-member group costs one page of memory, not
//! the group. The body is pulled by the HTTP connection, so a slow client
//! slows the paging down instead of piling pages up.
//!
//! Once the status line is sent an error can no longer become a SCIM Error;
//! the body then ends with an error, which aborts the response (the client
//! sees a truncated transfer, never a short list that looks complete).

use std::sync::Arc;

use axum::body::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use identity_proto::v1::group_service_client::GroupServiceClient;
use identity_proto::v1::{ListMembersRequest, Member};
use serde_json::{Map, Value as Json};
use tonic::transport::Channel;

use crate::http::Bearer;
use crate::list::LIST_TAIL;
use crate::wire::projection::AttributeRule;
use crate::wire::schema::Resource;

/// Members per ListMembers call: big enough to keep calls few, small enough
/// to stay far below gRPC message limits.
pub const MEMBER_PAGE_SIZE: i32 = 5000;

/// A response body made of chunks; errors abort it.
pub type BodyStream = BoxStream<'static, Result<Bytes, tonic::Status>>;

/// The SCIM form of one member (RFC 7643 §4.2 `members`).
pub fn member_to_scim(member: &Member, base_url: &str) -> Json {
    let mut out = Map::new();
    out.insert("value".into(), member.user_id.clone().into());
    if !member.display.is_empty() {
        out.insert("display".into(), member.display.clone().into());
    }
    out.insert("type".into(), "User".into());
    out.insert(
        "$ref".into(),
        Resource::User.location(base_url, &member.user_id).into(),
    );
    Json::Object(out)
}

/// A member with every sub-attribute set: what a projection is tested
/// against to know whether members are wanted at all.
pub fn sample_member() -> Json {
    member_to_scim(
        &Member {
            user_id: "u".into(),
            display: "d".into(),
            user_name: "n".into(),
        },
        "",
    )
}

/// Reads one group's members, page after page.
pub struct MemberPages {
    client: GroupServiceClient<Channel>,
    bearer: Bearer,
    group_id: String,
    /// The token of the next page; `None` once the last page was read.
    next_token: Option<String>,
}

impl MemberPages {
    pub fn new(client: GroupServiceClient<Channel>, bearer: Bearer, group_id: String) -> Self {
        MemberPages {
            client,
            bearer,
            group_id,
            next_token: Some(String::new()),
        }
    }

    /// The next page, `None` after the last.
    async fn next(&mut self) -> Result<Option<Vec<Member>>, tonic::Status> {
        let Some(token) = self.next_token.take() else {
            return Ok(None);
        };
        let request = ListMembersRequest {
            tenant: self.bearer.tenant(),
            group_id: self.group_id.clone(),
            page_size: Some(MEMBER_PAGE_SIZE),
            page_token: token.clone(),
        };
        let page = self
            .client
            .list_members(self.bearer.request(request))
            .await?
            .into_inner();
        if !page.next_page_token.is_empty() {
            if page.next_page_token == token {
                // Following it would never end.
                return Err(tonic::Status::internal(
                    "ListMembers answered with the page token it was given",
                ));
            }
            self.next_token = Some(page.next_page_token);
        }
        Ok(Some(page.members))
    }
}

/// Where a group document's members come from and how they are written.
pub struct MemberSource {
    pages: MemberPages,
    rule: AttributeRule,
    base_url: Arc<str>,
    /// A page read ahead of the response (see [`MemberSource::prefetch`]).
    first_page: Option<Vec<Member>>,
}

impl MemberSource {
    pub fn new(pages: MemberPages, rule: AttributeRule, base_url: Arc<str>) -> Self {
        MemberSource {
            pages,
            rule,
            base_url,
            first_page: None,
        }
    }

    /// Reads the first page now, so that the usual failures (no such group,
    /// service down) still get a proper status and SCIM Error.
    pub async fn prefetch(mut self) -> Result<Self, tonic::Status> {
        self.first_page = self.pages.next().await?;
        Ok(self)
    }

    /// Appends `members`, projected, as array elements.
    fn write(&self, members: &[Member], out: &mut Vec<u8>, wrote_any: &mut bool) {
        for member in members {
            let Some(member) = self.rule.apply(member_to_scim(member, &self.base_url)) else {
                continue;
            };
            if *wrote_any {
                out.push(b',');
            }
            out.extend_from_slice(member.to_string().as_bytes());
            *wrote_any = true;
        }
    }
}

/// `document` as JSON text with its closing brace removed and a
/// `"members":[` opened in its place.
fn open_members(document: &Map<String, Json>) -> Vec<u8> {
    let mut text = Json::Object(document.clone()).to_string();
    text.pop();
    if !document.is_empty() {
        text.push(',');
    }
    text.push_str("\"members\":[");
    text.into_bytes()
}

/// One group document: `document` (already projected, without members),
/// then, with a source, its members appended as a `members` array.
pub fn group_document(document: Map<String, Json>, members: Option<MemberSource>) -> BodyStream {
    let Some(mut source) = members else {
        let text = Json::Object(document).to_string();
        return stream::once(async move { Ok(Bytes::from(text)) }).boxed();
    };
    struct Progress {
        source: MemberSource,
        head: Option<Vec<u8>>,
        wrote_any: bool,
        done: bool,
    }
    let pending = source.first_page.take();
    let start = Progress {
        head: Some(open_members(&document)),
        source,
        wrote_any: false,
        done: false,
    };
    stream::unfold((start, pending), |(mut progress, mut pending)| async move {
        if progress.done {
            return None;
        }
        let mut chunk = progress.head.take().unwrap_or_default();
        loop {
            let page = match pending.take() {
                Some(page) => Ok(Some(page)),
                None => progress.source.pages.next().await,
            };
            match page {
                Ok(Some(members)) => {
                    progress
                        .source
                        .write(&members, &mut chunk, &mut progress.wrote_any);
                    if !chunk.is_empty() {
                        return Some((Ok(Bytes::from(chunk)), (progress, None)));
                    }
                }
                Ok(None) => {
                    chunk.extend_from_slice(b"]}");
                    progress.done = true;
                    return Some((Ok(Bytes::from(chunk)), (progress, None)));
                }
                Err(status) => {
                    tracing::warn!(
                        group_id = %progress.source.pages.group_id,
                        code = ?status.code(),
                        message = status.message(),
                        "reading members failed mid-response; aborting the body",
                    );
                    progress.done = true;
                    return Some((Err(status), (progress, None)));
                }
            }
        }
    })
    .boxed()
}

/// A ListResponse body: `head` (from [`crate::list::list_head`]), then each
/// group document with its members streamed in turn.
pub fn list_body(
    head: String,
    groups: Vec<(Map<String, Json>, Option<MemberSource>)>,
) -> BodyStream {
    let documents =
        stream::iter(groups.into_iter().enumerate()).flat_map(|(index, (document, members))| {
            let separator = stream::iter((index > 0).then(|| Ok(Bytes::from_static(b","))));
            separator.chain(group_document(document, members))
        });
    stream::once(async move { Ok(Bytes::from(head)) })
        .chain(documents)
        .chain(stream::once(async {
            Ok(Bytes::from_static(LIST_TAIL.as_bytes()))
        }))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::{PageInfo, list_head};
    use serde_json::json;

    async fn collect(body: BodyStream) -> Result<Json, String> {
        let chunks: Vec<Result<Bytes, tonic::Status>> = body.collect().await;
        let mut bytes = Vec::new();
        for chunk in chunks {
            bytes.extend_from_slice(&chunk.map_err(|s| s.message().to_owned())?);
        }
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    }

    fn document(value: Json) -> Map<String, Json> {
        match value {
            Json::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn members_render_with_type_and_ref() {
        let member = Member {
            user_id: "u1".into(),
            display: "Ann Lee".into(),
            user_name: "ann".into(),
        };
        assert_eq!(
            member_to_scim(&member, "https://h"),
            json!({"value": "u1", "display": "Ann Lee", "type": "User", "$ref": "https://h/scim/v2/Users/u1"})
        );
        let nameless = Member {
            user_id: "u2".into(),
            ..Member::default()
        };
        assert!(member_to_scim(&nameless, "").get("display").is_none());
    }

    #[test]
    fn opened_members_array_continues_the_document() {
        let text = open_members(&document(json!({"id": "g"})));
        let mut text = String::from_utf8(text).unwrap_or_default();
        text.push_str("{\"value\":\"u\"}]}");
        let parsed: Result<Json, _> = serde_json::from_str(&text);
        assert_eq!(
            parsed.ok(),
            Some(json!({"id": "g", "members": [{"value": "u"}]}))
        );
        assert_eq!(open_members(&Map::new()), b"{\"members\":[");
    }

    #[tokio::test]
    async fn group_without_members_source_is_the_document() {
        let body = group_document(document(json!({"id": "g", "displayName": "Ops"})), None);
        assert_eq!(
            collect(body).await,
            Ok(json!({"id": "g", "displayName": "Ops"}))
        );
    }

    #[tokio::test]
    async fn list_of_groups_without_members_is_valid_json() {
        let groups = vec![
            (document(json!({"id": "a"})), None),
            (document(json!({"id": "b"})), None),
        ];
        let body = list_body(list_head(&PageInfo::whole(2), 2), groups);
        let out = collect(body).await;
        assert_eq!(
            out.as_ref().map(|o| o["Resources"].clone()),
            Ok(json!([{"id": "a"}, {"id": "b"}]))
        );
        assert_eq!(out.map(|o| o["totalResults"].clone()), Ok(json!(2)));
        let empty = collect(list_body(list_head(&PageInfo::whole(0), 0), Vec::new())).await;
        assert_eq!(empty.map(|o| o["Resources"].clone()), Ok(json!([])));
    }
}
