-- Admin Idempotency-Keys and keyed restocks (CONTRACT §5).
--
-- An Idempotency-Key is scoped by who sent it: a customer by user id, an admin by the token's
-- `sub` (any string, not a user). `scope` names that caller ('user:42', 'admin:ops'); user_id
-- stays filled for a customer's key (NULL for an admin's), so operators can still look up a
-- user's keys by id.
ALTER TABLE idempotency_keys ADD COLUMN scope text NULL;
UPDATE idempotency_keys SET scope = 'user:' || user_id;
ALTER TABLE idempotency_keys ALTER COLUMN scope SET NOT NULL;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (scope, key);
ALTER TABLE idempotency_keys ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_scope_names_user CHECK (
    (user_id IS NOT NULL AND scope = 'user:' || user_id)
    OR (user_id IS NULL AND scope LIKE 'admin:%')
);

-- A keyed restock (POST /api/v1/admin/products/{id}/restock with an Idempotency-Key) takes
-- effect once per admin and key, for good: its RESTOCK row carries the key, unique per scope,
-- so a repeat after the API's stored answer was purged still adds nothing.
ALTER TABLE stock_ledger ADD COLUMN idempotency_scope text NULL;
ALTER TABLE stock_ledger ADD COLUMN idempotency_key text NULL;
ALTER TABLE stock_ledger ADD CONSTRAINT stock_ledger_key_is_a_restocks CHECK (
    (idempotency_key IS NULL AND idempotency_scope IS NULL)
    OR (kind = 'RESTOCK' AND idempotency_key IS NOT NULL AND idempotency_scope IS NOT NULL)
);
CREATE UNIQUE INDEX stock_ledger_restock_key_uq ON stock_ledger (idempotency_scope, idempotency_key)
    WHERE kind = 'RESTOCK' AND idempotency_key IS NOT NULL;

-- The admin's order list filters by status, newest first.
CREATE INDEX orders_status_created_idx ON orders (status, created_at DESC, id DESC);
CREATE INDEX orders_created_idx ON orders (created_at DESC, id DESC);
