-- Ends a member's holds whose time ran out (expires_at at or before p_now): each becomes
-- 'expired' with its event. Returns the points they held, which the caller releases from the
-- member's held points in its own balance update: the balance row is locked once, last, as
-- every writer locks it (check_member_held holds the caller to it at commit). Called by every
-- write that needs the member's available points (authorize, redeem, capture) before anything
-- else of the member, so a timeout never waits for the sweeper. Holds another writer has locked
-- are waited for and then skipped when they ended meanwhile.
CREATE FUNCTION hold_release_lapsed(p_member_id text, p_now timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_released bigint;
BEGIN
    -- Locked in the order of their expiry, as every writer locks a member's holds.
    WITH due AS (
        SELECT h.hold_id FROM holds h
         WHERE h.member_id = p_member_id AND h.status = 'open' AND h.expires_at <= p_now
         ORDER BY h.expires_at, h.hold_id
           FOR UPDATE
    ), lapsed AS (
        UPDATE holds h SET status = 'expired', closed_at = h.expires_at, metadata = NULL
          FROM due WHERE h.hold_id = due.hold_id AND h.status = 'open'
        RETURNING h.hold_id, h.points
    ), recorded AS (
        INSERT INTO hold_events (hold_id, event, recorded_at, points)
        SELECT l.hold_id, 'expired', p_now, l.points FROM lapsed l
    )
    SELECT coalesce(sum(l.points), 0) INTO v_released FROM lapsed l;
    RETURN v_released;
END
$$;
