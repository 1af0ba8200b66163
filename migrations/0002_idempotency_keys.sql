-- Idempotency-Key of the HTTP API (CONTRACT §5), scoped to the user.
--
-- A request claims its key by inserting a RUNNING row with a lease. It then stores its answer
-- (DONE, status and body), or it deletes the row when the answer was a transient 503, so that a
-- retry runs again. A repeat of the same request (same route and body, so the same
-- request_hash) gets the stored answer. A different request under the same key gets 409
-- IDEMPOTENCY_KEY_REUSED. A RUNNING row whose lease has run out (the API process died
-- mid-request) can be taken over. Re-running is safe: placement derives its order id from the
-- key, and payment is fenced by the order's workflow.
CREATE TABLE idempotency_keys (
    user_id       bigint      NOT NULL,
    key           text        NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash  text        NOT NULL,
    state         text        NOT NULL CHECK (state IN ('RUNNING', 'DONE')),
    locked_until  timestamptz NULL,
    status        int         NULL,
    body          text        NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key),
    CHECK (state <> 'DONE' OR (status IS NOT NULL AND body IS NOT NULL))
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
