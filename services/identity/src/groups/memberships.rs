//! The groups of users, by membership: read by user pages, GETs and the
//! access computation of events, so it depends on nothing else of groups.

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

crate::db::prepared_statement!(
    /// The query of [`groups_of_users`]; prepared once per connection, as
    /// planning it anew cost more than running it on every GET of a user.
    GroupsOfUsers<'a> -> (sql_types::Uuid, sql_types::Uuid, Text) {
        user_ids: &'a [Uuid] as sql_types::Array<sql_types::Uuid>,
        tenant: Uuid as sql_types::Uuid,
    }
    [
        "SELECT m.user_id, m.group_id, m.display_name FROM unnest(",
        ") AS member(id) \
         CROSS JOIN LATERAL ( \
             SELECT gm.user_id, gm.group_id, \
                    (SELECT g.display_name FROM groups AS g \
                     WHERE g.tenant_id = gm.tenant_id AND g.group_id = gm.group_id) \
                        AS display_name \
             FROM group_members AS gm \
             WHERE gm.tenant_id = ",
        " AND gm.user_id = member.id \
             OFFSET 0) AS m \
         ORDER BY m.display_name, m.group_id",
    ]
);
