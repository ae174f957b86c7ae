-- The one clock of the ledger: the database's, plus the sandbox offset (zero outside sandbox).
-- PL/pgSQL, not SQL: a SQL function that reads a table is never inlined and is parsed and
-- planned again at every call (about 0.07 ms of every posting); PL/pgSQL keeps its plan.
CREATE FUNCTION ledger_now() RETURNS timestamptz
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN clock_timestamp() + (SELECT c.offset_interval FROM ledger_clock c);
END
$$;
