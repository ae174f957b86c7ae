-- Checked at commit for every hold that ended: its final event says how it ended, and a
-- captured hold's entry is a redeem of the hold's member and partner, for exactly the captured
-- points, naming this hold. So no write can end a hold without its record.
CREATE FUNCTION check_hold_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM hold_events ev
                    WHERE ev.hold_id = NEW.hold_id AND ev.final AND ev.event = NEW.status) THEN
        RAISE EXCEPTION USING ERRCODE = 'CH104', MESSAGE = format(
            'hold %s is %s without its %s event', NEW.hold_id, NEW.status, NEW.status);
    END IF;
    IF NEW.status = 'captured' AND NOT EXISTS (
        SELECT 1 FROM entries e
         WHERE e.entry_id = NEW.capture_entry_id AND e.hold_id = NEW.hold_id
           AND e.kind = 'redeem' AND e.points = NEW.captured_points
           AND e.member_id = NEW.member_id AND e.partner_id = NEW.partner_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'CH104', MESSAGE = format(
            'hold %s is captured without its redeem entry of %s points',
            NEW.hold_id, NEW.captured_points);
    END IF;
    RETURN NULL;
END
$$;
