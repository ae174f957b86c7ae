-- The trigger that writes the events of the ledger's own tables, in the transaction of the
-- write itself (so a rolled-back or refused write leaves none): an entry (entry.recorded, to
-- its partner; an operator's entry to the operator), a hold's event (hold.authorized, ...), a
-- closed period (period.closed, to every partner), a statement (statement.available, to its
-- partner; the coalition's to the operator), a revoked partner key (key.revoked). Payloads are
-- thin: ids, the pseudonymous member id, points, kinds and times, never personal data.
CREATE FUNCTION events_of_ledger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_hold holds;
BEGIN
    IF TG_TABLE_NAME = 'entries' THEN
        PERFORM outbox_record('entry.recorded', NEW.partner_id, NEW.recorded_at,
            jsonb_strip_nulls(jsonb_build_object(
                'entry_id', NEW.entry_id, 'kind', NEW.kind, 'member_id', NEW.member_id,
                'points', NEW.points, 'contract_version', NEW.contract_version,
                'recorded_at', NEW.recorded_at, 'reversal_of', NEW.reversal_of,
                'hold_id', NEW.hold_id)));
    ELSIF TG_TABLE_NAME = 'hold_events' THEN
        SELECT * INTO v_hold FROM holds h WHERE h.hold_id = NEW.hold_id;
        PERFORM outbox_record('hold.' || NEW.event, v_hold.partner_id, NEW.recorded_at,
            jsonb_strip_nulls(jsonb_build_object(
                'hold_id', NEW.hold_id, 'member_id', v_hold.member_id, 'status', NEW.event,
                'points', NEW.points, 'released_points', NEW.released_points,
                'expires_at', v_hold.expires_at, 'entry_id', NEW.entry_id)));
    ELSIF TG_TABLE_NAME = 'periods' THEN
        PERFORM outbox_record('period.closed', p.partner_id, NEW.closed_at,
            jsonb_build_object('period', NEW.period, 'root', encode(NEW.root, 'hex'),
                               'entry_count', NEW.entry_count))
           FROM partners p;
    ELSIF TG_TABLE_NAME = 'statements' THEN
        PERFORM outbox_record('statement.available',
            CASE WHEN NEW.party = 'coalition' THEN NULL ELSE NEW.party END, ledger_now(),
            jsonb_build_object('period', NEW.period, 'party', NEW.party,
                               'sha256', encode(NEW.sha256, 'hex'), 'key_id', NEW.key_id));
    ELSIF TG_TABLE_NAME = 'partner_keys' THEN
        PERFORM outbox_record('key.revoked', NEW.partner_id, NEW.revoked_at,
            jsonb_build_object('key_id', NEW.key_id, 'revoked_at', NEW.revoked_at));
    END IF;
    RETURN NULL;
END
$$;
