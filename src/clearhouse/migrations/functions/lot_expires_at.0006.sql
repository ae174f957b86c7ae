-- When points recorded at p_recorded_at expire under the coalition's policy, computed once, at
-- issue, in the coalition's time zone p_zone: p_months later ('exact'); at the end of that
-- month, i.e. local midnight starting the next month ('month_end'); or at local midnight
-- starting the first MM-DD on or after it ('annual:MM-DD'). NULL months: the points never
-- expire. A month added to the 29th-31st lands on the month's last day when it is shorter.
-- clearhouse.domain.expiry.expires_at is the same rule in Python, proved equal by a test.
-- PL/pgSQL, not SQL: the SQL version was parsed and planned again at every issue (about
-- 0.25 ms of each); PL/pgSQL keeps its plan, and never-expiring points return at once.
CREATE FUNCTION lot_expires_at(
    p_recorded_at timestamptz, p_zone text, p_months integer, p_align text
) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_target timestamp;
    v_day timestamp;
BEGIN
    IF p_months IS NULL THEN
        RETURN NULL;
    END IF;
    v_target := (p_recorded_at AT TIME ZONE p_zone) + make_interval(months => p_months);
    IF p_align = 'exact' THEN
        RETURN v_target AT TIME ZONE p_zone;
    ELSIF p_align = 'month_end' THEN
        RETURN (date_trunc('month', v_target) + interval '1 month') AT TIME ZONE p_zone;
    END IF;
    v_day := make_timestamp(extract(year FROM v_target)::integer, substr(p_align, 8, 2)::integer,
                            substr(p_align, 11, 2)::integer, 0, 0, 0);
    IF v_day < v_target THEN
        v_day := v_day + interval '1 year';
    END IF;
    RETURN v_day AT TIME ZONE p_zone;
END
$$;
