-- CONTRACT §1 `cancel_code`, and payments numbered by the database (issue: the crash-point
-- matrix).
--
-- cancel_code says, for programs, why an order was closed without completing; it is set
-- exactly when the order is CANCELED or EXPIRED. Orders closed before it existed get the code
-- their cancel_reason names.
ALTER TABLE orders ADD COLUMN cancel_code text NULL CHECK (cancel_code IN (
    'USER_CANCELED', 'OPERATOR_CANCELED', 'PAYMENT_EXPIRED', 'INSUFFICIENT_STOCK',
    'COUPON_INVALID', 'REPAIRED'));
UPDATE orders SET cancel_code = CASE
        WHEN status = 'EXPIRED' THEN 'PAYMENT_EXPIRED'
        WHEN cancel_reason = 'canceled by the user' THEN 'USER_CANCELED'
        WHEN cancel_reason LIKE '%INSUFFICIENT_STOCK%' OR cancel_reason LIKE '%PRODUCT_NOT_FOUND%'
            THEN 'INSUFFICIENT_STOCK'
        WHEN cancel_reason LIKE '%COUPON_INVALID%' THEN 'COUPON_INVALID'
        ELSE 'OPERATOR_CANCELED' END
    WHERE status IN ('CANCELED', 'EXPIRED');
ALTER TABLE orders ADD CONSTRAINT orders_cancel_code_when_closed
    CHECK ((status IN ('CANCELED', 'EXPIRED')) = (cancel_code IS NOT NULL));

-- One row per payment of an order: the payment's id (the `pay` update's id, which a workflow
-- reset keeps) and its attempt number, given by the database the first time a step or a
-- compensation of the payment runs. saga_steps and the ledgers key their rows by that number,
-- so a run that no longer remembers a payment still finds what it did.
CREATE TABLE payments (
    order_id   text        NOT NULL,
    payment_id text        NOT NULL CHECK (length(payment_id) BETWEEN 1 AND 200),
    attempt    bigint      NOT NULL CHECK (attempt >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, payment_id),
    UNIQUE (order_id, attempt)
);
-- Attempts numbered by workflows before this table: kept, so new payments number after them.
INSERT INTO payments (order_id, payment_id, attempt)
    SELECT DISTINCT order_id, 'before-payments-' || attempt, attempt FROM saga_steps
    WHERE attempt >= 1;
