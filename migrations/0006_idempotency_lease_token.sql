-- Who holds an Idempotency-Key's lease (see 0002_idempotency_keys.sql).
--
-- A request that claims a key, or takes over a claim whose lease ran out, writes a random token
-- of its own here. It stores its answer, or gives the key back after a 503, only where the token
-- is still its own, so a request whose lease ran out and was taken over can no longer delete or
-- overwrite the new owner's claim. NULL once the answer is stored, and on rows from before this
-- migration (a RUNNING one of those is taken over when its lease ends, like any other).
ALTER TABLE idempotency_keys ADD COLUMN lease_token uuid NULL;
