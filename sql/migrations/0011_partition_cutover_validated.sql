-- hookrelay: no transaction
-- Each statement commits on its own: validating a CHECK takes a lock that lets writes go on, and
-- the index is built concurrently; inside one transaction they would block writes until the end.
-- Run again after a failure, every statement here does its work again.
ALTER TABLE events VALIDATE CONSTRAINT events_before_cutover;
ALTER TABLE deliveries VALIDATE CONSTRAINT deliveries_before_cutover;
ALTER TABLE attempts VALIDATE CONSTRAINT attempts_before_cutover;
-- Partitioned by delivery, attempts keep their listing order through a plain index on id (a
-- unique one would have to hold the partition key); built here, 0012 finds it and attaches it.
DROP INDEX CONCURRENTLY IF EXISTS attempts_id_idx;
CREATE INDEX CONCURRENTLY attempts_id_idx ON attempts (id);
