-- An Idempotency-Key binds per route: the same key on /events and on /events/batch are two
-- keys. The route is stored at the front of the key ("events:<key>", "events/batch:<key>"; see
-- Idempotency.stored_key), so the table and its primary key stay as they are.
-- Keys taken before this carry no route; their saved answer says which route took them (a
-- single event answers with its "id", a batch with {"data": [...]}), so a client retrying
-- across the upgrade still gets its first answer.
UPDATE idempotency_keys
SET key = CASE WHEN response ? 'id' THEN 'events:' ELSE 'events/batch:' END || key;
