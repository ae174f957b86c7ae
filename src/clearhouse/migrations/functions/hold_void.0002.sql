-- Voids an open hold of the partner in one call: the idempotency key first, then the hold ended
-- by hold_take (which decides expiry and names the state of a hold that is not open), its
-- points released from the member's held points, and its event.
CREATE FUNCTION hold_void(
    p_hold_id uuid,
    p_partner_id text,
    p_reason text,
    p_idempotency_key text,
    p_request_sha256 bytea
) RETURNS TABLE (closed_at timestamptz, member_balance bigint, member_held bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
    v_hold holds;
    v_balance bigint;
    v_held bigint;
BEGIN
    INSERT INTO idempotency_keys (partner_id, idempotency_key, request_sha256, hold_id)
    VALUES (p_partner_id, p_idempotency_key, p_request_sha256, p_hold_id);

    v_now := ledger_now();
    v_hold := hold_take(p_hold_id, p_partner_id, 'voided', v_now);
    UPDATE member_balances b SET held_points = b.held_points - v_hold.points
     WHERE b.member_id = v_hold.member_id
    RETURNING b.balance_points, b.held_points INTO v_balance, v_held;
    INSERT INTO hold_events (hold_id, event, recorded_at, points, member_balance_after,
                             member_held_after, reason)
    VALUES (p_hold_id, 'voided', v_now, v_hold.points, v_balance, v_held, p_reason);

    RETURN QUERY SELECT v_now, v_balance, v_held;
END
$$;
