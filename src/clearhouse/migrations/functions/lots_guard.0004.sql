-- A lot is never removed, and of its columns only remaining changes (what consumptions took
-- and gave back): who issued it, its points and when it expires are fixed at issue.
CREATE FUNCTION lots_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION USING ERRCODE = 'CH100', MESSAGE = 'lots are never removed';
    END IF;
    IF (NEW.lot_id, NEW.member_id, NEW.entry_id, NEW.partner_id, NEW.contract_version,
        NEW.origin_lot_id, NEW.points, NEW.recorded_at, NEW.cohort_at, NEW.expires_at)
       IS DISTINCT FROM
       (OLD.lot_id, OLD.member_id, OLD.entry_id, OLD.partner_id, OLD.contract_version,
        OLD.origin_lot_id, OLD.points, OLD.recorded_at, OLD.cohort_at, OLD.expires_at) THEN
        RAISE EXCEPTION USING ERRCODE = 'CH100',
            MESSAGE = 'a lot changes only in what remains of it';
    END IF;
    RETURN NEW;
END
$$;
