//! People: one human across tenants, known by the address they sign in
//! with. A user row is a person's membership of one tenant; claim protection
//! asks which other memberships a person has.

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::StoreError;
use crate::schema::{people, users};

/// A live membership of a person.
#[derive(Debug, Clone, Queryable)]
pub(crate) struct Membership {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// `users.source`: "scim" or "direct".
    pub source: String,
}

/// A person as [`get_or_create`] found or made them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Person {
    pub id: Uuid,
    /// Made by this transaction: nobody else can see them yet, so they have
    /// no membership and claim protection has nothing to ask.
    pub is_new: bool,
}

/// The person signing in with `email` (lowercased by the caller), made on
/// first sight. One statement, so concurrent first sightings agree; it
/// locks the person's row until the transaction ends, which serialises
/// every write that links a user to this person (and so every claim).
pub(crate) async fn get_or_create(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> Result<Person, StoreError> {
    // A row this statement inserted has no deleting transaction (xmax 0);
    // one it updated on conflict carries this transaction's id there.
    let (id, is_new) = diesel::insert_into(people::table)
        .values((
            people::person_id.eq(Uuid::new_v4()),
            people::email.eq(email),
        ))
        .on_conflict(people::email)
        .do_update()
        .set(people::email.eq(excluded(people::email)))
        .returning((
            people::person_id,
            diesel::dsl::sql::<diesel::sql_types::Bool>("xmax = 0"),
        ))
        .get_result(conn)
        .await?;
    Ok(Person { id, is_new })
}

/// The person's live memberships. Call it after [`get_or_create`], whose
/// lock keeps new memberships of the person from appearing meanwhile.
pub(crate) async fn memberships(
    conn: &mut AsyncPgConnection,
    person: Uuid,
) -> Result<Vec<Membership>, StoreError> {
    Ok(users::table
        .filter(users::person_id.eq(person))
        .filter(users::deleted_at.is_null())
        .select((users::tenant_id, users::user_id, users::source))
        .order((users::tenant_id, users::user_id))
        .load(conn)
        .await?)
}

/// Forgets a person nobody is linked to any more (after a hard delete or a
/// tombstone), so no address outlives its last membership. The person's row
/// is locked first, skipping it when a write that links a user to them holds
/// it (that write keeps them): never a wait, so never a deadlock with such a
/// write, and the check that follows (a new statement, a new snapshot) sees
/// every committed link.
pub(crate) async fn forget_if_unlinked(
    conn: &mut AsyncPgConnection,
    person: Uuid,
) -> Result<(), StoreError> {
    let locked: Option<Uuid> = people::table
        .filter(people::person_id.eq(person))
        .select(people::person_id)
        .for_update()
        .skip_locked()
        .get_result(conn)
        .await
        .optional()?;
    if locked.is_none() {
        return Ok(());
    }
    let linked: bool = diesel::select(diesel::dsl::exists(
        users::table.filter(users::person_id.eq(person)),
    ))
    .get_result(conn)
    .await?;
    if !linked {
        diesel::delete(people::table.filter(people::person_id.eq(person)))
            .execute(conn)
            .await?;
    }
    Ok(())
}
