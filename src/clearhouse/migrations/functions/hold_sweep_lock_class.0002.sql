-- The advisory lock class of the holds sweeper: one sweeper runs at a time (holds_expire).
CREATE FUNCTION hold_sweep_lock_class() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 4711002 $$;
