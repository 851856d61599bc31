-- The app-wide listing by status serves the statuses people look for (what failed, waits or
-- was held). A delivery on the usual path (pending, sending, succeeded) is no longer written
-- into this index on each of its three writes.
DROP INDEX deliveries_app_status_idx;
CREATE INDEX deliveries_app_status_idx ON deliveries (app_id, status, id)
    WHERE status IN ('retrying', 'dead', 'held', 'cancelled');
