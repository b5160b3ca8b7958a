// One portable schema for both backends (see migrations/{sqlite,postgres}).

diesel::table! {
    gateways (id) {
        id -> BigInt,
        name -> Text,
        host -> Text,
        port -> Integer,
        tls -> Bool,
        allow_insecure_tls -> Bool,
        token_enc -> Nullable<Binary>,
        device_token_enc -> Nullable<Binary>,
        is_primary -> Bool,
        status -> Text,
        last_seen -> Nullable<BigInt>,
        latency -> Nullable<BigInt>,
        sessions_count -> BigInt,
        agents_count -> BigInt,
        workspace_root -> Nullable<Text>,
        disable_device_pairing -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        gateway_agent_id -> Nullable<Text>,
        suspension_id -> Nullable<Text>,
        cordoned -> Bool,
        approvals -> Nullable<Bool>,
        labels -> Text,
        maintenance_reason -> Nullable<Text>,
        maintenance_by -> Nullable<Text>,
        maintenance_since -> Nullable<BigInt>,
        maintenance_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> BigInt,
        name -> Text,
        role -> Text,
        prefix -> Text,
        key_hash -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
        tenant -> Nullable<Text>,
        selector -> Nullable<Text>,
        verbs -> Nullable<Text>,
        agents -> Nullable<Text>,
        expires_at -> Nullable<BigInt>,
        previous_prefix -> Nullable<Text>,
        previous_hash -> Nullable<Text>,
        previous_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    agents (id) {
        id -> BigInt,
        name -> Text,
        role -> Nullable<Text>,
        status -> Text,
        gateway_id -> Nullable<BigInt>,
        config -> Text,
        source -> Text,
        session_key -> Nullable<Text>,
        last_seen -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    direct_connections (id) {
        id -> BigInt,
        agent_id -> BigInt,
        tool_name -> Text,
        tool_version -> Nullable<Text>,
        connection_id -> Text,
        status -> Text,
        last_heartbeat -> Nullable<BigInt>,
        metadata -> Nullable<Text>,
        input_tokens -> BigInt,
        output_tokens -> BigInt,
        last_model -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    spawns (id) {
        id -> Text,
        gateway_id -> Nullable<BigInt>,
        agent -> Nullable<Text>,
        method -> Text,
        request -> Text,
        idempotency_key -> Nullable<Text>,
        run_id -> Nullable<Text>,
        session_key -> Nullable<Text>,
        status -> Text,
        result -> Nullable<Text>,
        error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        finished_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    gateway_health_samples (id) {
        id -> BigInt,
        gateway_id -> BigInt,
        ts -> BigInt,
        status -> Text,
        latency -> Nullable<BigInt>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    secrets (name) {
        name -> Text,
        value -> Binary,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    alert_deliveries (id) {
        id -> Text,
        kind -> Text,
        state -> Text,
        gateway_id -> Nullable<BigInt>,
        summary -> Text,
        status -> Text,
        attempts -> BigInt,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    operations (id) {
        id -> Text,
        kind -> Text,
        state -> Text,
        params -> Text,
        progress -> Text,
        created_by -> Text,
        api_key_id -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        finished_at -> Nullable<BigInt>,
        version -> BigInt,
        created_ms -> BigInt,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        ts -> BigInt,
        actor -> Text,
        api_key_id -> Nullable<BigInt>,
        action -> Text,
        target_type -> Text,
        target_id -> Nullable<Text>,
        details -> Nullable<Text>,
        tenant -> Nullable<Text>,
    }
}

diesel::table! {
    audit_sink_cursor (name) {
        name -> Text,
        last_id -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    usage_daily (gateway_id, agent_id, day) {
        gateway_id -> BigInt,
        agent_id -> Text,
        day -> Text,
        input_tokens -> BigInt,
        output_tokens -> BigInt,
        cache_read_tokens -> BigInt,
        cache_write_tokens -> BigInt,
        total_tokens -> BigInt,
        cost_micros -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    console_logouts (mac) {
        mac -> Text,
        expires_at -> BigInt,
    }
}

diesel::joinable!(agents -> gateways (gateway_id));
diesel::joinable!(direct_connections -> agents (agent_id));
diesel::joinable!(gateway_health_samples -> gateways (gateway_id));
diesel::joinable!(spawns -> gateways (gateway_id));

diesel::table! {
    approvals (gateway_id, approval_id) {
        gateway_id -> BigInt,
        approval_id -> Text,
        kind -> Text,
        status -> Text,
        reason -> Nullable<Text>,
        decision -> Nullable<Text>,
        command -> Text,
        warning -> Nullable<Text>,
        severity -> Nullable<Text>,
        agent_id -> Nullable<Text>,
        session_key -> Nullable<Text>,
        run_id -> Nullable<Text>,
        host -> Nullable<Text>,
        boot_id -> Nullable<Text>,
        created_at_ms -> BigInt,
        expires_at_ms -> BigInt,
        seen_at_ms -> BigInt,
        resolved_at_ms -> Nullable<BigInt>,
        resolved_by -> Nullable<Text>,
        resolver_key_id -> Nullable<BigInt>,
        resolver_label -> Nullable<Text>,
        escalated_at_ms -> Nullable<BigInt>,
        offered -> Nullable<Text>,
        whole -> Bool,
    }
}

diesel::table! {
    config_profiles (name) {
        name -> Text,
        selector -> Text,
        patch -> Text,
        secrets_enc -> Nullable<Binary>,
        replace_paths -> Text,
        note -> Nullable<Text>,
        updated_at_ms -> BigInt,
        updated_by -> Text,
    }
}

diesel::table! {
    config_rollouts (operation_id) {
        operation_id -> Text,
        profile -> Nullable<Text>,
        selector -> Text,
        patch -> Text,
        secrets_enc -> Nullable<Binary>,
        replace_paths -> Text,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    config_rollout_saved (operation_id, gateway_id) {
        operation_id -> Text,
        gateway_id -> BigInt,
        previous_enc -> Binary,
        saved_at_ms -> BigInt,
    }
}

diesel::table! {
    disruption_budgets (name) {
        name -> Text,
        selector -> Text,
        max_unavailable -> Nullable<Integer>,
        min_available -> Nullable<Integer>,
        note -> Nullable<Text>,
        updated_at_ms -> BigInt,
        updated_by -> Text,
    }
}

diesel::table! {
    disruptions (gateway_id) {
        gateway_id -> BigInt,
        kind -> Text,
        operation_id -> Nullable<Text>,
        admitted_by -> Text,
        since_ms -> BigInt,
        expires_ms -> BigInt,
    }
}

diesel::table! {
    config_drift (gateway_id) {
        gateway_id -> BigInt,
        state -> Text,
        detail -> Text,
        checked_at_ms -> BigInt,
    }
}

diesel::table! {
    hosts (host_id) {
        host_id -> Text,
        info -> Text,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    managed_gateways (gateway_id) {
        gateway_id -> BigInt,
        host_id -> Text,
        version -> Text,
        source -> Text,
        config -> Text,
        port -> Integer,
        desired -> Text,
        state -> Text,
        pid -> Nullable<BigInt>,
        restarts -> Integer,
        crashes -> Integer,
        last_exit -> Nullable<Text>,
        detail -> Nullable<Text>,
        started_at_ms -> Nullable<BigInt>,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    spend_budgets (subject) {
        subject -> Text,
        time_window -> Text,
        time_zone -> Text,
        anchor_day -> Text,
        max_spend_micros -> Nullable<BigInt>,
        soft_spend_micros -> Nullable<BigInt>,
        max_runs -> Nullable<BigInt>,
        max_parallel_runs -> Nullable<BigInt>,
        estimate_micros -> BigInt,
        agent_estimates -> Text,
        fail_closed -> Bool,
        updated_at -> BigInt,
        updated_by -> Text,
    }
}

diesel::table! {
    spend_entries (id) {
        id -> BigInt,
        spawn_id -> Text,
        key_id -> Nullable<BigInt>,
        tenant -> Text,
        agent -> Nullable<Text>,
        gateway_id -> BigInt,
        state -> Text,
        estimate_micros -> BigInt,
        cost_micros -> Nullable<BigInt>,
        estimated -> Bool,
        created_at -> BigInt,
        settled_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    cron_lists (gateway_id) {
        gateway_id -> BigInt,
        snapshot_revision -> Nullable<Text>,
        scheduler_enabled -> Nullable<Bool>,
        jobs -> BigInt,
        unreadable -> BigInt,
        read_at_ms -> BigInt,
    }
}

diesel::table! {
    cron_jobs (gateway_id, job_id) {
        gateway_id -> BigInt,
        job_id -> Text,
        name -> Text,
        declaration_key -> Nullable<Text>,
        agent -> Nullable<Text>,
        enabled -> Bool,
        gateway_own -> Bool,
        schedule -> Text,
        next_run_at_ms -> Nullable<BigInt>,
        last_run_at_ms -> Nullable<BigInt>,
        last_run_status -> Nullable<Text>,
        config_revision -> Nullable<Text>,
        duplicate_of -> Nullable<Text>,
        seen_at_ms -> BigInt,
        judged_until_ms -> Nullable<BigInt>,
    }
}

diesel::table! {
    cron_misses (gateway_id, job_id, slot_ms) {
        gateway_id -> BigInt,
        job_id -> Text,
        slot_ms -> BigInt,
        job_name -> Text,
        cause -> Text,
        found_at_ms -> BigInt,
        recovery -> Nullable<Text>,
        recovery_detail -> Nullable<Text>,
        recovered_at_ms -> Nullable<BigInt>,
    }
}

diesel::table! {
    cron_declarations (name) {
        name -> Text,
        selector -> Text,
        job -> Text,
        single -> Nullable<Text>,
        owner_gateway_id -> Nullable<BigInt>,
        revision -> BigInt,
        deleted -> Bool,
        operation_id -> Nullable<Text>,
        updated_by -> Text,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    cron_declared (name, gateway_id) {
        name -> Text,
        gateway_id -> BigInt,
        revision -> BigInt,
        job_id -> Nullable<Text>,
        enabled -> Bool,
        config_revision -> Nullable<Text>,
        drift -> Text,
        error -> Nullable<Text>,
        checked_at_ms -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    cron_declarations,
    cron_declared,
    cron_lists,
    cron_jobs,
    cron_misses,
    spend_budgets,
    spend_entries,
    hosts,
    managed_gateways,
    approvals,
    config_profiles,
    config_rollouts,
    config_rollout_saved,
    disruption_budgets,
    disruptions,
    config_drift,
    console_logouts,
    alert_deliveries,
    usage_daily,
    operations,
    gateways,
    api_keys,
    agents,
    direct_connections,
    spawns,
    gateway_health_samples,
    secrets,
    audit_log,
    audit_sink_cursor,
);
