-- The advisory lock class of the expiry run: one run at a time (services/expiry.py takes it).
CREATE FUNCTION expiry_lock_class() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 4711003 $$;
