-- One row naming this database for good. The HTTP API derives the order id of a keyed placement
-- from it, the user and the Idempotency-Key: the same key always means the same order in this
-- database, and never an order of another database that shares the Temporal namespace (whose
-- workflow ids outlive any one database).
CREATE TABLE installation (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id        uuid    NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO installation DEFAULT VALUES;
