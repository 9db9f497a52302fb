-- Readings on plain PostgreSQL: native daily range partitions (UTC days) with BRIN on ts. Partitions are created
-- ahead by sentinel_ensure_partitions() and dropped by sentinel_drop_partitions_before(); a default partition
-- catches a reading for a day that has none yet, so nothing is ever refused for lack of a partition.
CREATE TABLE readings (
    ts        timestamptz NOT NULL,
    device_id integer NOT NULL,
    metric_id smallint NOT NULL,
    value     double precision NOT NULL
) PARTITION BY RANGE (ts);

CREATE TABLE readings_default PARTITION OF readings DEFAULT;
CREATE INDEX readings_ts_brin ON readings USING brin (ts);

-- Create the daily partition for every UTC day in [first_day, last_day]. A day whose rows already sit in the
-- default partition gets them moved into its new partition. Returns the number of partitions created.
CREATE FUNCTION sentinel_ensure_partitions(first_day date, last_day date) RETURNS integer
LANGUAGE plpgsql AS $$
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
            EXECUTE format('CREATE TABLE %I (LIKE readings INCLUDING DEFAULTS)', part);
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
$$;

-- Retention: drop every daily partition that ends on or before cutoff, and old rows in the default partition.
-- Returns the names of the dropped partitions.
CREATE FUNCTION sentinel_drop_partitions_before(cutoff date) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    cut timestamptz := (cutoff::timestamp AT TIME ZONE 'UTC');
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'readings'::regclass
          AND c.relname ~ '^readings_p[0-9]{8}$'
          AND to_date(substr(c.relname, 11), 'YYYYMMDD') + 1 <= cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        RETURN NEXT part.relname;
    END LOOP;
    DELETE FROM readings_default WHERE ts < cut;
    RETURN;
END;
$$;

SELECT sentinel_ensure_partitions((now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + 7);

-- One-minute rollups. TimescaleDB keeps these as a continuous aggregate; here a plain view computes them, with the
-- same name and columns so every query above it is the same on both dialects.
CREATE VIEW readings_1m AS
SELECT date_bin('1 minute', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       device_id,
       metric_id,
       count(*)   AS n,
       avg(value) AS avg_value,
       min(value) AS min_value,
       max(value) AS max_value
FROM readings
GROUP BY 1, 2, 3;

INSERT INTO sentinel_meta (key, value) VALUES ('readings_dialect', 'native');
