-- The transactional outbox: records one event in the caller's transaction, with its body (the
-- Standard Webhooks payload, the exact bytes every delivery signs and sends), and one delivery
-- for each of the partner's endpoints that asked for its type. An event with a dedupe key
-- already recorded is recorded once (its id is returned either way, NULL for a repeat).
-- Operator events have no partner and no partner delivery.
CREATE FUNCTION outbox_record(
    p_type text,
    p_partner_id text,
    p_occurred_at timestamptz,
    p_data jsonb,
    p_dedupe_key text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_event_id text := 'evt_' || replace(gen_random_uuid()::text, '-', '');
BEGIN
    INSERT INTO events (event_id, type, partner_id, occurred_at, data, body, dedupe_key)
    VALUES (v_event_id, p_type, p_partner_id, p_occurred_at, p_data,
            convert_to(jsonb_build_object(
                'type', p_type,
                'timestamp', to_char(p_occurred_at AT TIME ZONE 'UTC',
                                     'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                'data', p_data)::text, 'UTF8'),
            p_dedupe_key)
    ON CONFLICT (dedupe_key) DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF p_partner_id IS NOT NULL THEN
        INSERT INTO webhook_deliveries (event_id, endpoint_id)
        SELECT v_event_id, w.endpoint_id FROM webhook_endpoints w
         WHERE w.partner_id = p_partner_id AND p_type = ANY (w.event_types)
           AND w.disabled_at IS NULL AND w.deleted_at IS NULL;
    END IF;
    RETURN v_event_id;
END
$$;
