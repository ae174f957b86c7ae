-- The sweeper: ends up to p_limit holds whose time ran out, oldest first, and releases their
-- points. One sweeper at a time (a second returns 0 at once); holds a posting is releasing
-- itself (hold_release_lapsed) are skipped, not waited for. Returns how many it ended.
CREATE FUNCTION holds_expire(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
    v_count integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hold_sweep_lock_class(), 0) THEN
        RETURN 0;
    END IF;
    v_now := ledger_now();
    WITH due AS (
        SELECT h.hold_id FROM holds h
         WHERE h.status = 'open' AND h.expires_at <= v_now
         ORDER BY h.expires_at, h.hold_id
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    ), lapsed AS (
        UPDATE holds h SET status = 'expired', closed_at = h.expires_at, metadata = NULL
          FROM due WHERE h.hold_id = due.hold_id
        RETURNING h.hold_id, h.member_id, h.points
    ), recorded AS (
        INSERT INTO hold_events (hold_id, event, recorded_at, points)
        SELECT l.hold_id, 'expired', v_now, l.points FROM lapsed l
    ), released AS (
        UPDATE member_balances b SET held_points = b.held_points - per_member.points
          FROM (SELECT l.member_id, sum(l.points) AS points FROM lapsed l GROUP BY l.member_id)
               AS per_member
         WHERE b.member_id = per_member.member_id
    )
    SELECT count(*) INTO v_count FROM lapsed;
    RETURN v_count;
END
$$;
