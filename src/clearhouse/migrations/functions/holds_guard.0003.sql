-- The trigger of holds: a hold is never deleted, and changes once, from 'open' to its final
-- state, with what that state records (closed_at; for a capture its points and entry) and its
-- metadata dropped; nothing it was authorized with changes. An open hold may lose its metadata
-- alone (the member's erasure takes it).
CREATE FUNCTION holds_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.status = 'open' AND NEW.metadata IS NULL
       AND (NEW.status <> 'open' OR (NEW.closed_at, NEW.captured_points, NEW.capture_entry_id)
                                    IS NOT DISTINCT FROM (NULL::timestamptz, NULL::bigint, NULL::uuid))
       AND (NEW.hold_id, NEW.partner_id, NEW.member_id, NEW.points, NEW.contract_version,
            NEW.reference, NEW.occurred_at, NEW.created_at, NEW.expires_at,
            NEW.signature_input, NEW.signature, NEW.content_digest, NEW.signature_base)
           IS NOT DISTINCT FROM
           (OLD.hold_id, OLD.partner_id, OLD.member_id, OLD.points, OLD.contract_version,
            OLD.reference, OLD.occurred_at, OLD.created_at, OLD.expires_at,
            OLD.signature_input, OLD.signature, OLD.content_digest, OLD.signature_base) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'CH100',
        MESSAGE = format('holds change only from open to a final state: %s refused', TG_OP),
        HINT = 'capture, void or let the hold expire';
END
$$;
