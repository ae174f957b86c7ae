-- Records the items of a partner's batch in one call, each by ledger_post, in the caller's
-- transaction: item i (1-based in the arrays, answered 0-based as the request numbers them) has
-- the i-th entry id, kind, member, points, member delta, contract version, occurred_at,
-- reference, Idempotency-Key and fingerprint, and the next p_posting_counts[i] postings of the
-- flat arrays; every item carries the batch request's evidence. An item's key recorded before is
-- answered 'taken' without a call (the caller replays it or refuses the reuse). Each call runs
-- in its own subtransaction, so that a refused item leaves nothing behind and the others stand:
-- its refusal (a CH SQLSTATE and its message) is answered in its row; a key's twin still at work
-- is 'in_use', a lock not granted or a deadlock 'busy'. With p_atomic the first refusal ends the
-- call (the caller rolls the whole batch back). A contract version that changed meanwhile
-- (CH409), an invariant (CH1xx) and anything unexpected are raised: the batch fails whole.
CREATE FUNCTION ledger_post_batch(
    p_partner_id text,
    p_atomic boolean,
    p_entry_ids uuid[],
    p_kinds text[],
    p_member_ids text[],
    p_points bigint[],
    p_member_deltas bigint[],
    p_contract_versions integer[],
    p_occurred_at timestamptz[],
    p_references text[],
    p_posting_counts integer[],
    p_accounts text[],
    p_assets text[],
    p_amounts numeric[],
    p_idempotency_keys text[],
    p_request_sha256 bytea[],
    p_signature_input text,
    p_signature text,
    p_content_digest text,
    p_zone text,
    p_signature_base text,
    p_lot_months integer,
    p_lot_align text,
    p_reinstate_days integer
) RETURNS TABLE (item integer, recorded_at timestamptz, member_balance_after bigint,
                 refusal text, message text)
LANGUAGE plpgsql AS $$
DECLARE
    v_first integer := 1;
    v_last integer;
    v_state text;
    v_context text;
    v_constraint text;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_entry_ids, 1), 0) LOOP
        item := i - 1;
        recorded_at := NULL;
        member_balance_after := NULL;
        refusal := NULL;
        message := NULL;
        v_last := v_first + p_posting_counts[i] - 1;
        IF EXISTS (SELECT 1 FROM idempotency_keys k
                    WHERE k.partner_id = p_partner_id
                      AND k.idempotency_key = p_idempotency_keys[i]) THEN
            refusal := 'taken';
        ELSE
            BEGIN
                SELECT r.recorded_at, r.member_balance_after
                  INTO recorded_at, member_balance_after
                  FROM ledger_post(
                      p_entry_ids[i], p_kinds[i], p_partner_id, p_member_ids[i], p_points[i],
                      p_member_deltas[i], p_contract_versions[i], p_occurred_at[i],
                      p_references[i], NULL, p_accounts[v_first:v_last],
                      p_assets[v_first:v_last], p_amounts[v_first:v_last],
                      p_idempotency_keys[i], p_request_sha256[i], p_signature_input,
                      p_signature, p_content_digest, p_zone, p_signature_base, NULL,
                      p_lot_months, p_lot_align, p_reinstate_days) r;
            EXCEPTION
                WHEN unique_violation THEN
                    GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
                    IF v_constraint IS DISTINCT FROM 'idempotency_keys_pkey' THEN
                        RAISE;
                    END IF;
                    refusal := 'taken';
                WHEN lock_not_available THEN
                    GET STACKED DIAGNOSTICS v_context = PG_EXCEPTION_CONTEXT;
                    refusal := CASE WHEN v_context LIKE '%"idempotency_keys%' THEN 'in_use'
                                    ELSE 'busy' END;
                WHEN deadlock_detected OR serialization_failure THEN
                    refusal := 'busy';
                WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
                    IF v_state NOT LIKE 'CH%' OR v_state LIKE 'CH1%' OR v_state = 'CH409' THEN
                        RAISE;
                    END IF;
                    refusal := v_state;
            END;
        END IF;
        v_first := v_last + 1;
        RETURN NEXT;
        EXIT WHEN p_atomic AND refusal IS NOT NULL AND refusal <> 'taken';
    END LOOP;
END
$$;
