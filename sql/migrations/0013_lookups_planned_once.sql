-- What a listing asks of each delivery on its page (its event's type, its newest replay) is
-- looked up by functions whose statement is planned once per connection, for any argument.
-- The listings are planned for each call's arguments (storage/db.py), and a sub-query on the
-- log inside them was planned with them, partition by partition: over the 52 partitions of
-- the admin benchmark (10,000,000 deliveries), that planning cost more than the listing's own
-- scan. A generic plan bounds the partitions it reads when it starts, by its argument (the
-- replays after the original, the event's own partition). plan_cache_mode is set on each
-- function because the connections that plan every call set it too.

-- The newest replay of the original `original_id`: a replay is made after its original, and
-- bounding its id by the time in the original's skips every partition older than that.
CREATE FUNCTION last_replay(original_id text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN (SELECT max(d.id) FROM deliveries AS d
            WHERE d.replay_of = original_id AND d.id >= left(original_id, 16));
END
$$;

-- The type of the event `wanted`.
CREATE FUNCTION event_type_of(wanted text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN (SELECT ev.type FROM events AS ev WHERE ev.id = wanted);
END
$$;

CREATE OR REPLACE FUNCTION replays_of(original_id text, original_status text,
                                      original_recovered_by text,
                                      original_recovered_at timestamptz)
RETURNS TABLE (replayed_by text, recovered_by text, recovered_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT last_replay(original_id),
           CASE WHEN original_status = 'dead' THEN original_recovered_by END,
           CASE WHEN original_status = 'dead' THEN original_recovered_at END
$$;
