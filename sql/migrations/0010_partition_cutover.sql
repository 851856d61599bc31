-- The event log (events, deliveries, attempts) becomes time-partitioned in 0012, with each
-- table as it is now kept as its first partition: rows before the cutover stay where they are,
-- never copied. Attaching a table as a partition must know that it holds only rows below its
-- bound; this CHECK says so, and 0011 validates it without blocking writes, so that 0012, which
-- holds its locks until it commits, reads no rows at all.
--
-- The cutover lies ahead, so that writes made between here and 0012 still fall below it: two
-- hours on a log that holds data (the validation in between may take a while), one to two
-- minutes on an empty one (a new installation, whose first partition should expire soon; at
-- least a minute, so that an ingest running while 0011 and 0012 are applied is not refused).
CREATE TABLE log_partitioning (
    id         integer PRIMARY KEY CHECK (id = 1),
    cutover_ms bigint NOT NULL
);
INSERT INTO log_partitioning (id, cutover_ms)
SELECT 1, (extract(epoch FROM date_trunc('minute', now())
           + CASE WHEN EXISTS (SELECT FROM events) OR EXISTS (SELECT FROM deliveries)
                  THEN interval '2 hours' ELSE interval '2 minutes' END) * 1000)::bigint;

DO $$
DECLARE
    cutover text := lpad(to_hex((SELECT cutover_ms FROM log_partitioning)), 12, '0');
BEGIN
    EXECUTE format('ALTER TABLE events ADD CONSTRAINT events_before_cutover'
                   ' CHECK (id < %L) NOT VALID', 'evt_' || cutover);
    EXECUTE format('ALTER TABLE deliveries ADD CONSTRAINT deliveries_before_cutover'
                   ' CHECK (id < %L) NOT VALID', 'dlv_' || cutover);
    EXECUTE format('ALTER TABLE attempts ADD CONSTRAINT attempts_before_cutover'
                   ' CHECK (delivery_id < %L) NOT VALID', 'dlv_' || cutover);
END
$$;

-- The smallest id with `prefix` that retention keeps: ids made within the retention period
-- (hookrelay.retention_s, which each connection of hookrelay sets from HOOKRELAY_RETENTION).
-- Retention drops whole partitions (0012), so rows older than this may remain in a partition
-- that still holds newer ones: the API's reads compare ids with this and never serve them.
-- Unset, every id is kept. Made here, before the log is partitioned, so that this version of
-- hookrelay runs while 0011 and 0012 are applied. Inlined by the planner: an index condition, and a bound that prunes
-- partitions when a scan starts.
CREATE FUNCTION kept_since(prefix text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT prefix || coalesce(lpad(to_hex(floor(
        (extract(epoch FROM now())
         - nullif(current_setting('hookrelay.retention_s', true), '')::float8) * 1000)::bigint),
        12, '0'), '')
$$;
