-- Checked at commit for every member whose held points or holds changed: the held points are
-- the sum of the member's open holds, so no write can reserve or release points on its own.
CREATE FUNCTION check_member_held() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_held bigint;
    v_open bigint;
BEGIN
    SELECT b.held_points INTO v_held FROM member_balances b WHERE b.member_id = NEW.member_id;
    SELECT coalesce(sum(h.points), 0) INTO v_open FROM holds h
     WHERE h.member_id = NEW.member_id AND h.status = 'open';
    IF v_held IS DISTINCT FROM v_open THEN
        RAISE EXCEPTION USING ERRCODE = 'CH103', MESSAGE = format(
            'member %s holds %s points but its open holds reserve %s',
            NEW.member_id, v_held, v_open);
    END IF;
    RETURN NULL;
END
$$;
