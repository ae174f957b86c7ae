-- Takes p_points of member p_member_id's lots for entry p_entry_id (a redeem, a capture, an
-- expiry, a negative adjustment, the reversal of an issue) and links each to the entry in
-- lot_consumptions, set-based: one statement over the member's open lots, however many.
-- Lots are taken in the order (expires_at, recorded_at, entry_id, lot_id), points that never
-- expire last. The member's open holds reserve the first p_skip points of that order (its held
-- points after this entry), so a debit takes the earliest points no hold reserves; the reversal
-- of an issue (p_own_entry) takes from that issue's own lot first. Called under the lock of the
-- member's balance row, which the caller has just updated: no other writer touches these lots.
CREATE FUNCTION lots_take(
    p_entry_id uuid,
    p_member_id text,
    p_points bigint,
    p_skip bigint,
    p_own_entry uuid DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_own bigint := 0;
    v_lot bigint;
    v_taken bigint;
BEGIN
    IF p_own_entry IS NOT NULL THEN
        SELECT l.lot_id, least(l.remaining, p_points) INTO v_lot, v_own FROM lots l
         WHERE l.entry_id = p_own_entry AND l.member_id = p_member_id AND l.remaining > 0
           AND l.origin_lot_id IS NULL;
        IF v_own > 0 THEN
            UPDATE lots l SET remaining = l.remaining - v_own WHERE l.lot_id = v_lot;
            INSERT INTO lot_consumptions (entry_id, lot_id, points)
            VALUES (p_entry_id, v_lot, v_own);
        ELSE
            v_own := 0;
        END IF;
    END IF;
    IF v_own = p_points THEN
        RETURN;
    END IF;
    WITH ordered AS (
        SELECT l.lot_id, l.remaining,
               sum(l.remaining) OVER (ORDER BY l.expires_at, l.recorded_at, l.entry_id, l.lot_id)
                   - l.remaining AS before
          FROM lots l WHERE l.member_id = p_member_id AND l.remaining > 0
    ), taken AS (
        SELECT o.lot_id, least(o.before + o.remaining, p_skip + p_points - v_own)
                         - greatest(o.before, p_skip) AS points
          FROM ordered o
         WHERE o.before < p_skip + p_points - v_own AND o.before + o.remaining > p_skip
    ), used AS (
        UPDATE lots l SET remaining = l.remaining - t.points FROM taken t WHERE l.lot_id = t.lot_id
    ), linked AS (
        INSERT INTO lot_consumptions (entry_id, lot_id, points)
        SELECT p_entry_id, t.lot_id, t.points FROM taken t
    )
    SELECT coalesce(sum(t.points), 0) INTO v_taken FROM taken t;
    IF v_own + v_taken <> p_points THEN
        RAISE EXCEPTION USING ERRCODE = 'CH105', MESSAGE = format(
            'the lots of member %s hold %s of the %s points to take',
            p_member_id, v_own + v_taken, p_points);
    END IF;
END
$$;
