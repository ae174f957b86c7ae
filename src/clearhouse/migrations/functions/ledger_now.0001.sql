-- The one clock of the ledger: the database's, plus the sandbox offset (zero outside sandbox).
CREATE FUNCTION ledger_now() RETURNS timestamptz
LANGUAGE sql VOLATILE AS $$
    SELECT clock_timestamp() + offset_interval FROM ledger_clock
$$;
