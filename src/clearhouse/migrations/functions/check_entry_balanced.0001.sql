-- Checked at commit, once for the entry and once per posting, so that postings added later to
-- an existing entry are caught as well as an entry committed unbalanced or without postings.
CREATE FUNCTION check_entry_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_postings integer;
    v_unbalanced text;
BEGIN
    SELECT count(*), min(asset) FILTER (WHERE NOT balanced)
      INTO v_postings, v_unbalanced
      FROM (SELECT asset, count(*) AS n, sum(amount) = 0 AS balanced
              FROM postings WHERE entry_id = NEW.entry_id GROUP BY asset) AS per_asset;
    IF v_unbalanced IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CH101',
            MESSAGE = format('entry %s does not balance in %s', NEW.entry_id, v_unbalanced);
    END IF;
    IF TG_TABLE_NAME = 'entries'
       AND (SELECT count(*) FROM postings WHERE entry_id = NEW.entry_id) < 2 THEN
        RAISE EXCEPTION USING ERRCODE = 'CH102',
            MESSAGE = format('entry %s has fewer than two postings', NEW.entry_id);
    END IF;
    RETURN NULL;
END
$$;
