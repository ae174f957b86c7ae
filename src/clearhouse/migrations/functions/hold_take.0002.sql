-- Ends an open hold of p_partner_id as p_status ('captured' or 'voided') in one conditional
-- update that decides expiry itself (expires_at after p_now), never by waiting for a sweeper.
-- When the hold cannot end so, says why: CH404 unknown or another partner's (the same answer),
-- CH430 captured already, CH431 voided already, CH432 expired (or past its time), and for a
-- capture CH433 when it asks for more points than the hold reserved.
CREATE FUNCTION hold_take(
    p_hold_id uuid,
    p_partner_id text,
    p_status text,
    p_now timestamptz,
    p_captured_points bigint DEFAULT NULL,
    p_entry_id uuid DEFAULT NULL
) RETURNS holds
LANGUAGE plpgsql AS $$
DECLARE
    v_hold holds;
BEGIN
    UPDATE holds h
       SET status = p_status, closed_at = p_now, metadata = NULL,
           captured_points = p_captured_points, capture_entry_id = p_entry_id
     WHERE h.hold_id = p_hold_id AND h.partner_id = p_partner_id
       AND h.status = 'open' AND h.expires_at > p_now
       AND (p_captured_points IS NULL OR p_captured_points <= h.points)
    RETURNING h.* INTO v_hold;
    IF FOUND THEN
        RETURN v_hold;
    END IF;
    SELECT * INTO v_hold FROM holds h WHERE h.hold_id = p_hold_id AND h.partner_id = p_partner_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CH404', MESSAGE = format('no hold %s', p_hold_id);
    ELSIF v_hold.status = 'captured' THEN
        RAISE EXCEPTION USING ERRCODE = 'CH430', MESSAGE = 'the hold was captured already';
    ELSIF v_hold.status = 'voided' THEN
        RAISE EXCEPTION USING ERRCODE = 'CH431', MESSAGE = 'the hold was voided already';
    ELSIF v_hold.status = 'expired' OR v_hold.expires_at <= p_now THEN
        RAISE EXCEPTION USING ERRCODE = 'CH432', MESSAGE = format(
            'the hold expired at %s', to_char(v_hold.expires_at AT TIME ZONE 'UTC',
                                              'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'CH433', MESSAGE = format(
        'the capture asks for %s points; the hold reserved %s', p_captured_points, v_hold.points);
END
$$;
