-- The contract version in force for a partner at the ledger clock, checked against the version
-- the caller named (it checked purposes and limits against that one): CH403 when none is in
-- force, CH409 when a newer one took effect meanwhile (the caller asks again once). Shared by
-- ledger_post and hold_authorize, so the rule lives here once.
CREATE FUNCTION contract_in_force(p_partner_id text, p_contract_version integer, p_now timestamptz)
RETURNS contract_versions
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_terms contract_versions;
BEGIN
    SELECT * INTO v_terms FROM contract_versions c
     WHERE c.partner_id = p_partner_id AND c.effective_from <= p_now
     ORDER BY c.effective_from DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CH403',
            MESSAGE = 'the partner has no contract version in force';
    END IF;
    IF v_terms.version IS DISTINCT FROM p_contract_version THEN
        RAISE EXCEPTION USING ERRCODE = 'CH409',
            MESSAGE = format('contract version %s is in force', v_terms.version);
    END IF;
    RETURN v_terms;
END
$$;
