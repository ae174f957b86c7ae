-- Checked at commit for every member whose balance or lots changed: the member's lot
-- remainders add up to its balance, so no point is held outside a lot or taken twice.
CREATE FUNCTION check_member_lots() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_balance bigint;
    v_lots bigint;
BEGIN
    SELECT b.balance_points INTO v_balance FROM member_balances b WHERE b.member_id = NEW.member_id;
    SELECT coalesce(sum(l.remaining), 0) INTO v_lots FROM lots l
     WHERE l.member_id = NEW.member_id AND l.remaining > 0;
    IF v_balance IS DISTINCT FROM v_lots THEN
        RAISE EXCEPTION USING ERRCODE = 'CH105', MESSAGE = format(
            'member %s has a balance of %s points but its lots hold %s',
            NEW.member_id, v_balance, v_lots);
    END IF;
    RETURN NULL;
END
$$;
