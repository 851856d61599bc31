-- The event log, partitioned by time: events by their id, deliveries by theirs, attempts by
-- their delivery's (an attempt lives and goes with its delivery). Ids begin with their time, so
-- a range of ids is a range of time, and retention drops whole partitions instead of deleting
-- rows. Each table becomes a partitioned table of the same name, with the same columns,
-- constraints and indexes, and the table as it was becomes its first partition, below the
-- cutover (0010): its rows are not copied, its indexes are attached as they are, and since the
-- CHECK validated by 0011 implies the partition's bound, attaching it reads no row.
-- The partitions after the cutover are made by the worker (storage/partitions.py), ahead of need.

-- The log's tables are locked first, in the order a writer takes them (an event, then its
-- deliveries, then attempts). Locked as each statement below came to them, attempts and
-- deliveries first, an ingest that held the events and waited for the deliveries deadlocked
-- with this migration waiting for the events, and one of the two was aborted.
LOCK TABLE events, deliveries, attempts IN ACCESS EXCLUSIVE MODE;

-- No foreign key between the log's tables. Dropping a partition of a table that others refer
-- to makes Postgres look for referring rows in every partition of those, under a lock that
-- stops all writes to the log; a replay that names an original in a dropped partition would
-- stop it altogether. The log's rows are written together (an event with its deliveries, an
-- attempt by its delivery's worker) and go together (partitions of the same time range, or,
-- when an app or an endpoint is deleted, by that delete, attempts included). Each table keeps
-- its foreign keys to apps and endpoints.
ALTER TABLE attempts DROP CONSTRAINT attempts_delivery_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_replay_of_fkey;
-- A key on a partitioned table holds its partition key: attempts are keyed by delivery and
-- number, and found in id order through attempts_id_idx (0011).
ALTER TABLE attempts DROP CONSTRAINT attempts_pkey;

CREATE FUNCTION pg_temp.partition_by_range(name text, key text, cutover text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    first text := name || '_first';
    index_defs text[];
    index_names text[];
    item record;
BEGIN
    -- The indexes that are no constraint's, as they are defined on the table today.
    SELECT coalesce(array_agg(pg_get_indexdef(i.indexrelid)), '{}'),
           coalesce(array_agg(i.indexrelid::regclass::text), '{}')
    INTO index_defs, index_names
    FROM pg_index AS i
    WHERE i.indrelid = name::regclass
      AND NOT EXISTS (SELECT FROM pg_constraint AS c WHERE c.conindid = i.indexrelid);

    EXECUTE format('ALTER TABLE %I RENAME TO %I', name, first);
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING STORAGE)'
                   ' PARTITION BY RANGE (%I)', name, first, key);
    -- Each constraint is copied up under its name (keys, checks, foreign keys), and attaching
    -- matches the first partition's own to it. A key's name is its index's, which must be
    -- unique in the schema: the first partition's key takes a new one.
    FOR item IN
        SELECT conname, contype, pg_get_constraintdef(oid) AS def FROM pg_constraint
        WHERE conrelid = first::regclass AND conname <> name || '_before_cutover'
    LOOP
        IF item.contype IN ('p', 'u') THEN
            EXECUTE format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I',
                           first, item.conname, item.conname || '_first');
        END IF;
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', name, item.conname, item.def);
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(index_names, 1), 0) LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', index_names[i], index_names[i] || '_first');
        EXECUTE index_defs[i];  -- now on the partitioned table, under its old name
    END LOOP;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)',
                   name, first, cutover);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', first, name || '_before_cutover');
END
$$;

SELECT pg_temp.partition_by_range('events', 'id', 'evt_' || hex),
       pg_temp.partition_by_range('deliveries', 'id', 'dlv_' || hex),
       pg_temp.partition_by_range('attempts', 'delivery_id', 'dlv_' || hex)
FROM (SELECT lpad(to_hex(cutover_ms), 12, '0') AS hex FROM log_partitioning) AS cutover;
DROP TABLE log_partitioning;

-- A replay is made after its original: bounding its id by the time in the original's lets the
-- scans of replays skip every partition older than the original.
CREATE OR REPLACE FUNCTION replays_in_flight(original_id text) RETURNS TABLE (id text)
LANGUAGE sql STABLE AS $$
    SELECT id FROM deliveries
    WHERE replay_of = original_id AND replay_of IS NOT NULL AND delivery_in_flight(status)
      AND id >= left(original_id, 16)
$$;
CREATE OR REPLACE FUNCTION replays_of(original_id text, original_status text,
                                      original_recovered_by text,
                                      original_recovered_at timestamptz)
RETURNS TABLE (replayed_by text, recovered_by text, recovered_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT (SELECT max(id) FROM deliveries
            WHERE replay_of = original_id AND id >= left(original_id, 16)),
           CASE WHEN original_status = 'dead' THEN original_recovered_by END,
           CASE WHEN original_status = 'dead' THEN original_recovered_at END
$$;
