-- Gives back p_points of the redeem p_redeem to the lots it consumed, for its reversal
-- p_entry_id: what the redeem took from each lot, less what its earlier reversals gave back,
-- latest-expiring lot first (the reverse of the order they were taken in). A lot that has not
-- expired at p_now gets its points back (a consumption of negative points); one that has comes
-- back as a new lot of the same issuer, contract version and cohort, expiring p_reinstate_days
-- after p_now. Returns the points given back: less than p_points only for a redeem recorded
-- before lots existed, whose rest the caller records as a new lot. Set-based, under the lock of
-- the member's balance row.
CREATE FUNCTION lots_give_back(
    p_entry_id uuid,
    p_redeem uuid,
    p_member_id text,
    p_points bigint,
    p_now timestamptz,
    p_reinstate_days integer
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_back bigint;
BEGIN
    WITH consumed AS (
        SELECT c.lot_id,
               c.points
               + coalesce((SELECT sum(g.points) FROM lot_consumptions g
                             JOIN entries r ON r.entry_id = g.entry_id
                            WHERE r.reversal_of = p_redeem AND g.lot_id = c.lot_id), 0)
               - coalesce((SELECT sum(n.points) FROM lots n
                             JOIN entries r ON r.entry_id = n.entry_id
                            WHERE r.reversal_of = p_redeem AND n.origin_lot_id = c.lot_id), 0)
                   AS outstanding
          FROM lot_consumptions c WHERE c.entry_id = p_redeem
    ), ordered AS (
        SELECT k.lot_id, k.outstanding, l.expires_at, l.partner_id, l.contract_version,
               l.cohort_at,
               sum(k.outstanding) OVER (ORDER BY l.expires_at DESC NULLS FIRST,
                                        l.recorded_at DESC, l.entry_id DESC, l.lot_id DESC)
                   - k.outstanding AS before
          FROM consumed k JOIN lots l ON l.lot_id = k.lot_id
         WHERE k.outstanding > 0
    ), back AS (
        SELECT o.lot_id, o.expires_at, o.partner_id, o.contract_version, o.cohort_at,
               least(o.outstanding, p_points - o.before) AS points,
               o.expires_at IS NULL OR o.expires_at > p_now AS live
          FROM ordered o WHERE o.before < p_points
    ), restored AS (
        UPDATE lots l SET remaining = l.remaining + b.points
          FROM back b WHERE l.lot_id = b.lot_id AND b.live
    ), linked AS (
        INSERT INTO lot_consumptions (entry_id, lot_id, points)
        SELECT p_entry_id, b.lot_id, -b.points FROM back b WHERE b.live
    ), reinstated AS (
        INSERT INTO lots (member_id, entry_id, partner_id, contract_version, origin_lot_id,
                          points, remaining, recorded_at, cohort_at, expires_at)
        SELECT p_member_id, p_entry_id, b.partner_id, b.contract_version, b.lot_id, b.points,
               b.points, p_now, b.cohort_at, p_now + make_interval(days => p_reinstate_days)
          FROM back b WHERE NOT b.live
    )
    SELECT coalesce(sum(b.points), 0) INTO v_back FROM back b;
    RETURN v_back;
END
$$;
