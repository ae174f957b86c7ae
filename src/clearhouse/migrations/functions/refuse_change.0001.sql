-- The trigger of every append-only table: entries, postings, contract versions, consents,
-- disclosures, member links, statements.
CREATE FUNCTION refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'CH100',
        MESSAGE = format('%s is append-only: %s refused', TG_TABLE_NAME, TG_OP),
        HINT = 'correct the ledger with a new entry (reversal or adjustment)';
END
$$;
