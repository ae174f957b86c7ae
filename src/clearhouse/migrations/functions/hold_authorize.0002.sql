-- Reserves points of a member for a partner in one call: the idempotency key first, the
-- contract version in force and its limits (the hold's points per transaction, its time within
-- limits.max_hold_seconds), an erased member refused, the member's lapsed holds ended, then one
-- conditional update that releases them and holds n more only while balance - held >= n, the
-- hold and its event. No ledger entry: the points stay in the member's balance until a capture
-- redeems them.
CREATE FUNCTION hold_authorize(
    p_hold_id uuid,
    p_partner_id text,
    p_member_id text,
    p_points bigint,
    p_hold_seconds integer,
    p_contract_version integer,
    p_occurred_at timestamptz,
    p_reference text,
    p_metadata jsonb,
    p_idempotency_key text,
    p_request_sha256 bytea,
    p_signature_input text,
    p_signature text,
    p_content_digest text,
    p_signature_base text
) RETURNS TABLE (created_at timestamptz, expires_at timestamptz,
                 member_balance bigint, member_held bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
    v_terms contract_versions;
    v_balance bigint;
    v_held bigint;
    v_lapsed bigint;
BEGIN
    -- A concurrent twin waits here until the first commits, then fails on the key.
    INSERT INTO idempotency_keys (partner_id, idempotency_key, request_sha256, hold_id)
    VALUES (p_partner_id, p_idempotency_key, p_request_sha256, p_hold_id);

    v_now := ledger_now();
    v_terms := contract_in_force(p_partner_id, p_contract_version, v_now);
    IF p_points > v_terms.max_points_per_transaction THEN
        RAISE EXCEPTION USING ERRCODE = 'CH422', MESSAGE = format(
            'the contract allows at most %s points per transaction',
            v_terms.max_points_per_transaction);
    END IF;
    IF p_hold_seconds > v_terms.max_hold_seconds THEN
        RAISE EXCEPTION USING ERRCODE = 'CH424', MESSAGE = format(
            'the contract allows holds of at most %s seconds', v_terms.max_hold_seconds);
    END IF;
    IF EXISTS (SELECT 1 FROM members m
                WHERE m.member_id = p_member_id AND m.erased_at IS NOT NULL) THEN
        RAISE EXCEPTION USING ERRCODE = 'CH410', MESSAGE = 'the member was erased';
    END IF;

    v_lapsed := hold_release_lapsed(p_member_id, v_now);
    UPDATE member_balances b SET held_points = b.held_points - v_lapsed + p_points
     WHERE b.member_id = p_member_id AND b.balance_points - (b.held_points - v_lapsed) >= p_points
    RETURNING b.balance_points, b.held_points INTO v_balance, v_held;
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM member_balances b WHERE b.member_id = p_member_id) THEN
            RAISE EXCEPTION USING ERRCODE = 'CH001',
                MESSAGE = 'the member does not have enough points available';
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'CH002', MESSAGE = 'unknown member';
    END IF;

    INSERT INTO holds (hold_id, partner_id, member_id, points, contract_version, reference,
                       occurred_at, created_at, expires_at, metadata, signature_input,
                       signature, content_digest, signature_base)
    VALUES (p_hold_id, p_partner_id, p_member_id, p_points, v_terms.version, p_reference,
            p_occurred_at, v_now, v_now + make_interval(secs => p_hold_seconds), p_metadata,
            p_signature_input, p_signature, p_content_digest, p_signature_base);
    INSERT INTO hold_events (hold_id, event, recorded_at, points, member_balance_after,
                             member_held_after)
    VALUES (p_hold_id, 'authorized', v_now, p_points, v_balance, v_held);

    RETURN QUERY SELECT v_now, v_now + make_interval(secs => p_hold_seconds), v_balance, v_held;
END
$$;
