-- When points recorded at p_recorded_at expire under the coalition's policy, computed once, at
-- issue, in the coalition's time zone p_zone: p_months later ('exact'); at the end of that
-- month, i.e. local midnight starting the next month ('month_end'); or at local midnight
-- starting the first MM-DD on or after it ('annual:MM-DD'). NULL months: the points never
-- expire. A month added to the 29th-31st lands on the month's last day when it is shorter.
-- clearhouse.domain.expiry.expires_at is the same rule in Python, proved equal by a test.
CREATE FUNCTION lot_expires_at(
    p_recorded_at timestamptz, p_zone text, p_months integer, p_align text
) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_months IS NULL THEN NULL
        WHEN p_align = 'exact' THEN t.target AT TIME ZONE p_zone
        WHEN p_align = 'month_end' THEN
            (date_trunc('month', t.target) + interval '1 month') AT TIME ZONE p_zone
        ELSE (SELECT CASE WHEN d.day >= t.target THEN d.day ELSE d.day + interval '1 year' END
                FROM (SELECT make_timestamp(extract(year FROM t.target)::integer,
                                            substr(p_align, 8, 2)::integer,
                                            substr(p_align, 11, 2)::integer, 0, 0, 0) AS day) d)
             AT TIME ZONE p_zone
    END
      FROM (SELECT (p_recorded_at AT TIME ZONE p_zone) + make_interval(months => p_months)
                   AS target) t
$$;
