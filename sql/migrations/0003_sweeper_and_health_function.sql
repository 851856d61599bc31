-- The sweeper's turn, and the rule that disables a failing endpoint.

-- One row: when the last sweep began. A worker sweeps only when it can move this forward, so
-- one sweep runs per interval however many workers there are.
CREATE TABLE sweeper (
    id        integer PRIMARY KEY CHECK (id = 1),
    swept_at  timestamptz NOT NULL
);
INSERT INTO sweeper (id, swept_at) VALUES (1, '-infinity');

-- Held deliveries, for the sweeper's check that none waits on an endpoint that is active again.
CREATE INDEX deliveries_held_idx ON deliveries (endpoint_id) WHERE status = 'held';

-- Why an endpoint must be disabled after an attempt, or NULL. It is given the endpoint's row as
-- it is before the attempt is counted, and is called inside the UPDATE that records the attempt,
-- so it sees the latest row even when concurrent attempts changed it.
CREATE FUNCTION endpoint_disable_reason(
    endpoint_status text,
    consecutive_dead integer,     -- dead deliveries in a row before this attempt
    failing_since timestamptz,    -- start of the current run of failures (NULL: none)
    succeeded boolean,            -- this attempt succeeded
    gone boolean,                 -- the receiver answered 410 Gone
    now_dead boolean,             -- this attempt dead-lettered its delivery
    attempted_at timestamptz,
    dead_limit integer,
    failing_limit_s float8
) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN succeeded OR endpoint_status <> 'active' THEN NULL
        WHEN gone THEN 'the receiver answered 410 Gone'
        WHEN consecutive_dead + now_dead::integer >= dead_limit
            THEN consecutive_dead + now_dead::integer || ' deliveries in a row were dead-lettered'
        WHEN coalesce(failing_since, attempted_at) <= now() - make_interval(secs => failing_limit_s)
            THEN 'every attempt has failed since ' || coalesce(failing_since, attempted_at)
    END
$$;
