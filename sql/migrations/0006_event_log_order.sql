-- Streams and long-polls read an app's events in commit order, which ids cannot give: an id is
-- drawn before its transaction commits, so a later id can commit first. tx_id is the id of the
-- transaction that wrote the event. A reader takes only events whose transaction is older than
-- every transaction still running (its snapshot's xmin); no commit can slip in behind what it
-- has read, so (tx_id, id) is a cursor without gaps.
ALTER TABLE events ADD COLUMN tx_id xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX events_app_log_idx ON events (app_id, tx_id, id);
