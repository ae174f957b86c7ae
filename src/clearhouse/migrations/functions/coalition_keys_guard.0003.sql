-- A key is never removed nor changed, except that a current key retires once; what it signs
-- (its purpose: statements and receipts, or webhooks) never changes.
CREATE FUNCTION coalition_keys_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.retired_at IS NOT NULL OR NEW.retired_at IS NULL
       OR (NEW.key_id, NEW.algorithm, NEW.public_key, NEW.not_before, NEW.purpose)
          IS DISTINCT FROM (OLD.key_id, OLD.algorithm, OLD.public_key, OLD.not_before, OLD.purpose) THEN
        RAISE EXCEPTION 'coalition keys are never removed, and change only by retiring';
    END IF;
    RETURN NEW;
END
$$;
