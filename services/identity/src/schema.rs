//! Diesel table definitions, written by hand to match `migrations/`.

diesel::table! {
    tenants (tenant_id) {
        tenant_id -> Uuid,
        slug -> Text,
        display_name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        scim_enabled -> Bool,
        policy -> Jsonb,
    }
}

diesel::table! {
    tokens (tenant_id, token_id) {
        tenant_id -> Uuid,
        token_id -> Uuid,
        name -> Text,
        prefix -> Text,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        scope -> Text,
        provider -> Text,
        provider_display_name -> Text,
        scim_override -> Bool,
        last_used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    people (person_id) {
        person_id -> Uuid,
        email -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    users (tenant_id, user_id) {
        tenant_id -> Uuid,
        user_id -> Uuid,
        user_name -> Text,
        external_id -> Nullable<Text>,
        display_name -> Nullable<Text>,
        name_formatted -> Nullable<Text>,
        family_name -> Nullable<Text>,
        given_name -> Nullable<Text>,
        middle_name -> Nullable<Text>,
        honorific_prefix -> Nullable<Text>,
        honorific_suffix -> Nullable<Text>,
        emails -> Jsonb,
        active -> Bool,
        employee_number -> Nullable<Text>,
        cost_center -> Nullable<Text>,
        organization -> Nullable<Text>,
        division -> Nullable<Text>,
        department -> Nullable<Text>,
        manager_id -> Nullable<Uuid>,
        attributes -> Jsonb,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        person_id -> Nullable<Uuid>,
        login_email -> Nullable<Text>,
        source -> Text,
        tenant_member -> Bool,
        roles -> Array<Text>,
        organizations -> Array<Text>,
    }
}

diesel::table! {
    groups (tenant_id, group_id) {
        tenant_id -> Uuid,
        group_id -> Uuid,
        display_name -> Text,
        external_id -> Nullable<Text>,
        attributes -> Jsonb,
        member_count -> Int8,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        synthetic -> Bool,
    }
}

diesel::table! {
    group_members (tenant_id, group_id, user_id) {
        tenant_id -> Uuid,
        group_id -> Uuid,
        user_id -> Uuid,
        added_at -> Timestamptz,
    }
}

diesel::table! {
    event_sequences (tenant_id) {
        tenant_id -> Uuid,
        last_sequence -> Int8,
    }
}

diesel::table! {
    events (tenant_id, sequence) {
        tenant_id -> Uuid,
        sequence -> Int8,
        event_type -> Text,
        resource_type -> Text,
        resource_id -> Uuid,
        actor_kind -> Text,
        actor_token_id -> Nullable<Uuid>,
        actor_token_name -> Text,
        actor_provider -> Text,
        request_id -> Text,
        trace_id -> Text,
        occurred_at -> Timestamptz,
        changes -> Json,
    }
}

diesel::joinable!(tokens -> tenants (tenant_id));
diesel::joinable!(users -> tenants (tenant_id));
diesel::joinable!(groups -> tenants (tenant_id));
diesel::joinable!(users -> people (person_id));
diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    tokens,
    users,
    groups,
    group_members,
    people,
    event_sequences,
    events
);
