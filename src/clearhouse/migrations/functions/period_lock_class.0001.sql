-- The class of the periods' advisory locks: ledger_post holds its period's lock shared while it
-- records, closing takes it exclusively (storage/clearing.py names the same number).
CREATE FUNCTION period_lock_class() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 1128812 $$;
