-- The first answer to an Idempotency-Key is kept as the JSON text it was sent as. jsonb cannot
-- hold the character U+0000, which event data may carry, so an event with one in its data was
-- refused whenever it came with an Idempotency-Key.
ALTER TABLE idempotency_keys ALTER COLUMN response TYPE text USING response::text;
