//! The groups of users, by membership: read by user pages, GETs and the
//! access computation of events, so it depends on nothing else of groups.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{self, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::StoreError;

/// (user id, group id, displayName) of every membership of `users_ids`,
/// by displayName: one query for a whole page of users. Each user's
/// memberships are one range of the (tenant_id, user_id) index, and each
/// group's name one primary key probe: the subqueries keep the planner from
/// joining whole groups instead, whatever it believes their sizes are.
pub(crate) async fn groups_of_users(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    user_ids: &[Uuid],
) -> Result<Vec<(Uuid, Uuid, String)>, StoreError> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(GroupsOfUsers { tenant, user_ids }.load(conn).await?)
}

/// The query of [`groups_of_users`] as a type of its own, so each
/// connection prepares and plans it once: diesel plans a `sql_query` anew
/// on every call, which cost more than running it on every GET of a user.
#[derive(Clone, Copy)]
struct GroupsOfUsers<'a> {
    tenant: Uuid,
    user_ids: &'a [Uuid],
}

impl QueryId for GroupsOfUsers<'_> {
    type QueryId = GroupsOfUsers<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for GroupsOfUsers<'_> {
    type SqlType = (sql_types::Uuid, sql_types::Uuid, Text);
}

impl QueryFragment<Pg> for GroupsOfUsers<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT m.user_id, m.group_id, m.display_name FROM unnest(");
        out.push_bind_param::<sql_types::Array<sql_types::Uuid>, _>(&self.user_ids)?;
        out.push_sql(
            ") AS member(id) \
             CROSS JOIN LATERAL ( \
                 SELECT gm.user_id, gm.group_id, \
                        (SELECT g.display_name FROM groups AS g \
                         WHERE g.tenant_id = gm.tenant_id AND g.group_id = gm.group_id) \
                            AS display_name \
                 FROM group_members AS gm \
                 WHERE gm.tenant_id = ",
        );
        out.push_bind_param::<sql_types::Uuid, _>(&self.tenant)?;
        out.push_sql(
            " AND gm.user_id = member.id \
                 OFFSET 0) AS m \
             ORDER BY m.display_name, m.group_id",
        );
        Ok(())
    }
}
