-- Records one entry in one call: idempotency key, the period still open, for a capture the hold
-- it ends (hold_take), the contract version in force and its limits, an erased member refused,
-- the member's lapsed holds released, the member's conditional balance update on its available
-- points (balance - held; a capture releases its hold's points in the same update), the entry
-- (with the partner's signature base, so its evidence verifies alone), its postings, and the
-- member's lots: an issue or a positive adjustment is a new lot expiring by the coalition's
-- policy (p_lot_months, p_lot_align: lot_expires_at); a debit takes the earliest lots no hold
-- reserves (lots_take); the reversal of a redeem gives back the lots it took (lots_give_back,
-- an expired one as a new lot p_reinstate_days long).
-- The postings come from the domain's posting rules; this function only checks what needs the
-- database and writes. Its refusals carry SQLSTATEs of class CH, which
-- clearhouse.storage.sqlstates maps to domain errors.
CREATE FUNCTION ledger_post(
    p_entry_id uuid,
    p_kind text,
    p_partner_id text,
    p_member_id text,
    p_points bigint,
    p_member_delta bigint,
    p_contract_version integer,
    p_occurred_at timestamptz,
    p_reference text,
    p_reversal_of uuid,
    p_accounts text[],
    p_assets text[],
    p_amounts numeric[],
    p_idempotency_key text,
    p_request_sha256 bytea,
    p_signature_input text,
    p_signature text,
    p_content_digest text,
    p_zone text,
    p_signature_base text DEFAULT NULL,
    p_hold_id uuid DEFAULT NULL,
    p_lot_months integer DEFAULT NULL,
    p_lot_align text DEFAULT 'exact',
    p_reinstate_days integer DEFAULT 30
) RETURNS TABLE (recorded_at timestamptz, member_balance_after bigint, member_held_after bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_remaining bigint;
    v_balance bigint;
    v_held bigint;
    v_now timestamptz;
    v_terms contract_versions;
    v_period text;
    v_hold holds;
    v_release bigint := 0;
    v_back bigint := 0;
BEGIN
    IF p_idempotency_key IS NOT NULL THEN
        -- A concurrent twin waits here until the first commits, then fails on the key.
        INSERT INTO idempotency_keys (partner_id, idempotency_key, request_sha256, entry_id,
                                      hold_id)
        VALUES (p_partner_id, p_idempotency_key, p_request_sha256, p_entry_id, p_hold_id);
    END IF;

    v_now := ledger_now();
    -- The period of this entry is open, and stays open until it commits: closing takes this
    -- lock exclusively, so it waits for entries in flight, and every one after it sees the
    -- period closed. Shared with every other posting, so postings never queue on each other.
    v_period := to_char(v_now AT TIME ZONE p_zone, 'YYYY-MM');
    PERFORM pg_advisory_xact_lock_shared(
        period_lock_class(), to_char(v_now AT TIME ZONE p_zone, 'YYYYMM')::integer);
    IF EXISTS (SELECT 1 FROM periods pr WHERE pr.period = v_period) THEN
        RAISE EXCEPTION USING ERRCODE = 'CH419', MESSAGE = format('period %s is closed', v_period);
    END IF;
    -- Locks are taken in one order by every writer: the member's holds by their expiry (the
    -- lapsed ones, then a capture's own, which has not lapsed), then the member's daily row,
    -- then the member's balance row. So the lapsed holds are released here, first.
    IF p_member_id IS NOT NULL AND p_member_delta < 0 THEN
        v_release := hold_release_lapsed(p_member_id, v_now);
    END IF;
    IF p_hold_id IS NOT NULL THEN
        -- A capture: the hold ends here or the call says why (its state, or more than it holds).
        v_hold := hold_take(p_hold_id, p_partner_id, 'captured', v_now, p_points, p_entry_id);
        v_release := v_release + v_hold.points;
    END IF;
    IF p_kind IN ('issue', 'redeem') THEN
        -- The version in force is decided here, at the ledger clock, never from a stale cache:
        -- the caller names the version it checked purposes and limits against.
        v_terms := contract_in_force(p_partner_id, p_contract_version, v_now);
        IF p_points > v_terms.max_points_per_transaction THEN
            RAISE EXCEPTION USING ERRCODE = 'CH422', MESSAGE = format(
                'the contract allows at most %s points per transaction',
                v_terms.max_points_per_transaction);
        END IF;
        IF EXISTS (SELECT 1 FROM members m
                    WHERE m.member_id = p_member_id AND m.erased_at IS NOT NULL) THEN
            RAISE EXCEPTION USING ERRCODE = 'CH410', MESSAGE = 'the member was erased';
        END IF;
        -- One row per member, partner, day and kind: spread like the members, never hot.
        INSERT INTO member_daily_points AS d (member_id, partner_id, day, kind, points)
        VALUES (p_member_id, p_partner_id, (v_now AT TIME ZONE p_zone)::date, p_kind, p_points)
        ON CONFLICT (member_id, partner_id, day, kind)
        DO UPDATE SET points = d.points + excluded.points
         WHERE d.points + excluded.points <= v_terms.max_points_per_member_per_day
        RETURNING d.points INTO v_remaining;
        IF NOT FOUND OR v_remaining > v_terms.max_points_per_member_per_day THEN
            RAISE EXCEPTION USING ERRCODE = 'CH423', MESSAGE = format(
                'the contract allows at most %s points per member and day',
                v_terms.max_points_per_member_per_day);
        END IF;
    END IF;

    IF p_reversal_of IS NOT NULL THEN
        PERFORM 1 FROM entries e
         WHERE e.entry_id = p_reversal_of AND e.partner_id IS NOT DISTINCT FROM p_partner_id
           FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'CH404', MESSAGE = 'entry to reverse not found';
        END IF;
        SELECT e.points - coalesce((SELECT sum(r.points) FROM entries r
                                     WHERE r.reversal_of = e.entry_id), 0)
          INTO v_remaining FROM entries e WHERE e.entry_id = p_reversal_of;
        IF v_remaining < p_points THEN
            RAISE EXCEPTION USING ERRCODE = 'CH003',
                MESSAGE = format('only %s points of the entry remain to reverse', v_remaining);
        END IF;
    END IF;

    IF p_member_id IS NOT NULL THEN
        -- Points held for open holds are not available; the lapsed holds' points and a
        -- capture's own hold are released here, in the one update of the balance row.
        UPDATE member_balances b
           SET balance_points = b.balance_points + p_member_delta,
               held_points = b.held_points - v_release
         WHERE b.member_id = p_member_id
           AND b.balance_points + p_member_delta - (b.held_points - v_release) >= 0
        RETURNING b.balance_points, b.held_points INTO v_balance, v_held;
        IF NOT FOUND THEN
            IF EXISTS (SELECT 1 FROM member_balances b WHERE b.member_id = p_member_id) THEN
                RAISE EXCEPTION USING ERRCODE = 'CH001',
                    MESSAGE = 'the member does not have enough points available';
            END IF;
            RAISE EXCEPTION USING ERRCODE = 'CH002', MESSAGE = 'unknown member';
        END IF;
    END IF;

    INSERT INTO entries (entry_id, kind, partner_id, member_id, points, member_balance_after,
                         contract_version, occurred_at, recorded_at, reference, reversal_of,
                         idempotency_key, signature_input, signature, content_digest, signature_base,
                         hold_id)
    VALUES (p_entry_id, p_kind, p_partner_id, p_member_id, p_points, v_balance,
            p_contract_version, p_occurred_at, v_now, p_reference, p_reversal_of,
            p_idempotency_key, p_signature_input, p_signature, p_content_digest,
            p_signature_base, p_hold_id);

    INSERT INTO postings (entry_id, seq, account, asset, amount)
    SELECT p_entry_id, t.seq, t.account, t.asset, t.amount
      FROM unnest(p_accounts, p_assets, p_amounts) WITH ORDINALITY
           AS t(account, asset, amount, seq);

    -- The lots, last: under the lock of the member's balance row, updated above.
    IF p_member_id IS NOT NULL AND p_member_delta < 0 THEN
        PERFORM lots_take(p_entry_id, p_member_id, -p_member_delta, v_held,
                          CASE WHEN p_kind = 'reversal' THEN p_reversal_of END);
    ELSIF p_member_id IS NOT NULL AND p_member_delta > 0 THEN
        IF p_kind = 'reversal' THEN
            v_back := lots_give_back(p_entry_id, p_reversal_of, p_member_id, p_member_delta,
                                     v_now, p_reinstate_days);
        END IF;
        IF v_back < p_member_delta THEN
            INSERT INTO lots (member_id, entry_id, partner_id, contract_version, points,
                              remaining, recorded_at, cohort_at, expires_at)
            VALUES (p_member_id, p_entry_id, CASE WHEN p_kind = 'issue' THEN p_partner_id END,
                    CASE WHEN p_kind = 'issue' THEN p_contract_version END,
                    p_member_delta - v_back, p_member_delta - v_back, v_now, v_now,
                    lot_expires_at(v_now, p_zone, p_lot_months, p_lot_align));
        END IF;
    END IF;

    IF p_hold_id IS NOT NULL THEN
        INSERT INTO hold_events (hold_id, event, recorded_at, points, released_points,
                                 member_balance_after, member_held_after, entry_id)
        VALUES (p_hold_id, 'captured', v_now, p_points, v_hold.points - p_points, v_balance,
                v_held, p_entry_id);
    END IF;

    RETURN QUERY SELECT v_now, v_balance, v_held;
END
$$;
