-- Native dialect: a day's partition built from rows that waited in the default partition copies the CHECK
-- constraints of readings too. Without them ATTACH PARTITION refused the table ("child table is missing
-- constraint"), and every batch holding that day was refused for good. TimescaleDB has no such function: no-op.
-- depends: 0010_grafana_views

DO $mig$
BEGIN
    IF to_regprocedure('sentinel_ensure_partitions(date, date)') IS NULL THEN
        RETURN;
    END IF;
    EXECUTE $ddl$
CREATE OR REPLACE FUNCTION sentinel_ensure_partitions(first_day date, last_day date) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    day date;
    created integer := 0;
    part text;
    lo timestamptz;
    hi timestamptz;
BEGIN
    IF last_day < first_day THEN
        RETURN 0;
    END IF;
    FOR day IN SELECT generate_series(first_day, last_day, interval '1 day')::date LOOP
        part := 'readings_p' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        lo := (day::timestamp AT TIME ZONE 'UTC');
        hi := ((day + 1)::timestamp AT TIME ZONE 'UTC');
        IF EXISTS (SELECT 1 FROM readings_default WHERE ts >= lo AND ts < hi) THEN
            EXECUTE format('CREATE TABLE %I (LIKE readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
            EXECUTE format('WITH moved AS (DELETE FROM readings_default WHERE ts >= %L AND ts < %L RETURNING *)
                            INSERT INTO %I SELECT * FROM moved', lo, hi, part);
            EXECUTE format('ALTER TABLE readings ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        ELSE
            EXECUTE format('CREATE TABLE %I PARTITION OF readings FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        END IF;
        created := created + 1;
    END LOOP;
    RETURN created;
END;
$fn$;
    $ddl$;
END;
$mig$;
