-- Records contract.version_effective once for every contract version whose effective_from has
-- passed on the ledger clock (the dedupe key makes a second run a no-op). Run when contracts
-- are loaded and by the maintenance loop of serve; returns how many it announced.
CREATE FUNCTION contract_versions_announce() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_count integer;
BEGIN
    SELECT count(outbox_record('contract.version_effective', c.partner_id, c.effective_from,
                   jsonb_build_object('version', c.version, 'effective_from', c.effective_from,
                                      'sha256', c.sha256),
                   format('contract:%s:%s', c.partner_id, c.version)))
      INTO v_count
      FROM contract_versions c
     WHERE c.effective_from <= ledger_now()
       AND NOT EXISTS (SELECT 1 FROM events e
                        WHERE e.dedupe_key = format('contract:%s:%s', c.partner_id, c.version));
    RETURN v_count;
END
$$;
