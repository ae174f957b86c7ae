-- Checked at commit for every lot that changed or was consumed: what remains of it is its
-- points less what every entry took from it and plus what reversals gave back, so every debit
-- is linked to the lots it consumed.
CREATE FUNCTION check_lot_remaining() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_lot lots;
    v_consumed bigint;
BEGIN
    SELECT * INTO v_lot FROM lots l WHERE l.lot_id = NEW.lot_id;
    SELECT coalesce(sum(c.points), 0) INTO v_consumed FROM lot_consumptions c
     WHERE c.lot_id = NEW.lot_id;
    IF v_lot.remaining IS DISTINCT FROM v_lot.points - v_consumed THEN
        RAISE EXCEPTION USING ERRCODE = 'CH106', MESSAGE = format(
            'lot %s has %s of %s points left, but its consumptions took %s',
            NEW.lot_id, v_lot.remaining, v_lot.points, v_consumed);
    END IF;
    RETURN NULL;
END
$$;
