-- Expires, for the next p_limit members after p_after (in member order) that have lots past
-- their expires_at, every such point that no open hold reserves: per member one expiry entry
-- (member:m -> coalition:breakage) whose lot_consumptions list the lots it expired, the lots
-- and the balance updated, in one statement. The members' balance rows are locked first, in
-- member order, in a statement of their own, so the statement that reads their lots sees every
-- redeem that committed before: points just redeemed are never expired, and a rerun finds
-- nothing left to expire. A member's holds reserve its earliest points, and lots past their
-- time come first in the order lots are taken in: the first held points of them stay (they
-- never expire while held; what a void releases is expired by the next run). Returns the last
-- member of the batch (NULL when none was left), the members, entries and points.
CREATE FUNCTION expiry_run_batch(p_after text, p_limit integer, p_zone text)
RETURNS TABLE (batch_last text, batch_members integer, batch_entries integer,
               batch_points bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
    v_period text;
    v_members text[];
BEGIN
    v_now := ledger_now();
    v_period := to_char(v_now AT TIME ZONE p_zone, 'YYYY-MM');
    PERFORM pg_advisory_xact_lock_shared(
        period_lock_class(), to_char(v_now AT TIME ZONE p_zone, 'YYYYMM')::integer);
    IF EXISTS (SELECT 1 FROM periods pr WHERE pr.period = v_period) THEN
        RAISE EXCEPTION USING ERRCODE = 'CH419', MESSAGE = format('period %s is closed', v_period);
    END IF;
    SELECT array_agg(d.member_id ORDER BY d.member_id) INTO v_members
      FROM (SELECT DISTINCT l.member_id FROM lots l
             WHERE l.member_id > p_after AND l.remaining > 0 AND l.expires_at <= v_now
             ORDER BY l.member_id LIMIT p_limit) d;
    IF v_members IS NULL THEN
        RETURN QUERY SELECT NULL::text, 0, 0, 0::bigint;
        RETURN;
    END IF;
    PERFORM 1 FROM member_balances b WHERE b.member_id = ANY (v_members)
      ORDER BY b.member_id FOR UPDATE;
    RETURN QUERY
    WITH due AS (
        SELECT l.lot_id, l.member_id, l.remaining, b.held_points,
               sum(l.remaining) OVER (PARTITION BY l.member_id
                                      ORDER BY l.expires_at, l.recorded_at, l.entry_id, l.lot_id)
                   - l.remaining AS before
          FROM lots l JOIN member_balances b ON b.member_id = l.member_id
         WHERE l.member_id = ANY (v_members) AND l.remaining > 0 AND l.expires_at <= v_now
    ), taken AS (
        SELECT d.lot_id, d.member_id,
               d.remaining - greatest(0, least(d.remaining, d.held_points - d.before)) AS points
          FROM due d WHERE d.before + d.remaining > d.held_points
    ), per_member AS (
        SELECT t.member_id, sum(t.points)::bigint AS points, gen_random_uuid() AS entry_id
          FROM taken t GROUP BY t.member_id
    ), balances AS (
        UPDATE member_balances b SET balance_points = b.balance_points - p.points
          FROM per_member p WHERE b.member_id = p.member_id
        RETURNING b.member_id, b.balance_points
    ), recorded AS (
        INSERT INTO entries (entry_id, kind, member_id, points, member_balance_after, recorded_at)
        SELECT p.entry_id, 'expiry', p.member_id, p.points, b.balance_points, v_now
          FROM per_member p JOIN balances b ON b.member_id = p.member_id
    ), posted AS (
        INSERT INTO postings (entry_id, seq, account, asset, amount)
        SELECT p.entry_id, s.seq,
               CASE s.seq WHEN 1 THEN 'member:' || p.member_id ELSE 'coalition:breakage' END,
               'PTS', CASE s.seq WHEN 1 THEN -p.points ELSE p.points END
          FROM per_member p CROSS JOIN (VALUES (1::smallint), (2::smallint)) AS s(seq)
    ), used AS (
        UPDATE lots l SET remaining = l.remaining - t.points FROM taken t WHERE l.lot_id = t.lot_id
    ), linked AS (
        INSERT INTO lot_consumptions (entry_id, lot_id, points)
        SELECT p.entry_id, t.lot_id, t.points FROM taken t JOIN per_member p USING (member_id)
    )
    SELECT v_members[cardinality(v_members)], cardinality(v_members),
           (SELECT count(*)::integer FROM per_member), (SELECT coalesce(sum(p.points), 0)::bigint
                                                          FROM per_member p);
END
$$;
