-- The order saga's schema (CONTRACT §1, §2, §6).
--
-- Balances (users.points, products.stock, coupons.status) are the current state; the three
-- ledgers record every change to them, so that every rule of CONTRACT §6 can be checked with SQL
-- (see activities/src/invariants.rs). saga_steps is the idempotency and fencing record of the
-- payment steps: one row per (order, step, attempt), written in the same transaction as the
-- step's effect or its compensation.
--
-- Order ids are not foreign keys in the saga tables and ledgers on purpose: a step or a
-- compensation must never fail forever on a constraint it cannot fix. The invariant check
-- reports ledger rows that name no order instead.

CREATE TABLE users (
    id         bigserial PRIMARY KEY,
    name       text        NOT NULL,
    points     bigint      NOT NULL CHECK (points >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id         bigserial PRIMARY KEY,
    name       text        NOT NULL,
    price      bigint      NOT NULL CHECK (price > 0),
    stock      bigint      NOT NULL CHECK (stock >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE coupons (
    id               bigserial PRIMARY KEY,
    user_id          bigint      NOT NULL REFERENCES users (id),
    -- The contract's wire form: {"type":"FIXED","amount":N} or
    -- {"type":"PERCENT","percent":P,"max_amount":M?}.
    discount         jsonb       NOT NULL CHECK (
        (discount ->> 'type' = 'FIXED' AND jsonb_typeof(discount -> 'amount') = 'number')
        OR (discount ->> 'type' = 'PERCENT' AND jsonb_typeof(discount -> 'percent') = 'number')
    ),
    min_order_amount bigint      NULL CHECK (min_order_amount IS NULL OR min_order_amount >= 0),
    expires_at       timestamptz NOT NULL,
    status           text        NOT NULL DEFAULT 'AVAILABLE' CHECK (status IN ('AVAILABLE', 'USED')),
    used_at          timestamptz NULL,
    order_id         text        NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (
        (status = 'AVAILABLE' AND used_at IS NULL AND order_id IS NULL)
        OR (status = 'USED' AND used_at IS NOT NULL AND order_id IS NOT NULL)
    )
);
CREATE INDEX coupons_user_idx ON coupons (user_id, id);
CREATE INDEX coupons_order_idx ON coupons (order_id) WHERE order_id IS NOT NULL;

CREATE TABLE orders (
    id                   text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    user_id              bigint      NOT NULL REFERENCES users (id),
    status               text        NOT NULL CHECK (status IN ('PENDING', 'PAID', 'COMPLETED', 'CANCELED', 'EXPIRED')),
    subtotal             bigint      NOT NULL CHECK (subtotal >= 0),
    discount             bigint      NOT NULL CHECK (discount >= 0),
    total                bigint      NOT NULL CHECK (total >= 0),
    coupon_id            bigint      NULL REFERENCES coupons (id),
    recipient            text        NOT NULL,
    address              text        NOT NULL,
    phone                text        NOT NULL,
    created_at           timestamptz NOT NULL,
    expires_at           timestamptz NOT NULL,
    paid_at              timestamptz NULL,
    completed_at         timestamptz NULL,
    canceled_at          timestamptz NULL,
    cancel_reason        text        NULL,
    -- When the order reached CANCELED or EXPIRED (EXPIRED leaves canceled_at NULL); the stamp
    -- that close_order returns, again on a repeat.
    closed_at            timestamptz NULL,
    platform_notified_at timestamptz NULL,
    CHECK (total = subtotal - discount),
    CHECK (status NOT IN ('PAID', 'COMPLETED') OR paid_at IS NOT NULL),
    CHECK (status <> 'COMPLETED' OR completed_at IS NOT NULL),
    CHECK (status <> 'CANCELED' OR (canceled_at IS NOT NULL AND closed_at IS NOT NULL)),
    CHECK (status <> 'EXPIRED' OR (canceled_at IS NULL AND closed_at IS NOT NULL))
);
CREATE INDEX orders_user_idx ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_status_idx ON orders (status);

CREATE TABLE order_lines (
    order_id   text   NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id bigint NOT NULL REFERENCES products (id),
    -- The line's place in the order as placed (0-based), so lines read back in that order.
    position   int    NOT NULL,
    name       text   NOT NULL,
    unit_price bigint NOT NULL CHECK (unit_price > 0),
    quantity   bigint NOT NULL CHECK (quantity > 0),
    line_total bigint NOT NULL CHECK (line_total = unit_price * quantity),
    PRIMARY KEY (order_id, product_id),
    UNIQUE (order_id, position)
);

-- One row per (order, payment step, attempt). DONE: the forward step took effect. COMPENSATED:
-- it took effect and was then reversed. FENCED: the compensation ran first, so the forward step
-- never took effect and never will.
CREATE TABLE saga_steps (
    order_id   text        NOT NULL,
    step       text        NOT NULL CHECK (step IN ('charge_points', 'redeem_coupon', 'deduct_stock')),
    attempt    bigint      NOT NULL CHECK (attempt >= 0),
    state      text        NOT NULL CHECK (state IN ('DONE', 'COMPENSATED', 'FENCED')),
    detail     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, step, attempt)
);

CREATE TABLE point_ledger (
    id              bigserial PRIMARY KEY,
    user_id         bigint      NOT NULL REFERENCES users (id),
    order_id        text        NULL,
    attempt         bigint      NULL,
    kind            text        NOT NULL CHECK (kind IN ('INITIAL', 'TOP_UP', 'CHARGE', 'REFUND')),
    amount          bigint      NOT NULL CHECK (amount > 0),
    idempotency_key text        NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (
        (kind IN ('CHARGE', 'REFUND') AND order_id IS NOT NULL AND attempt IS NOT NULL
            AND idempotency_key IS NULL)
        OR (kind IN ('INITIAL', 'TOP_UP') AND order_id IS NULL AND attempt IS NULL)
    ),
    CHECK (idempotency_key IS NULL OR kind = 'TOP_UP')
);
CREATE UNIQUE INDEX point_ledger_step_uq ON point_ledger (order_id, attempt, kind)
    WHERE kind IN ('CHARGE', 'REFUND');
CREATE UNIQUE INDEX point_ledger_top_up_uq ON point_ledger (user_id, idempotency_key)
    WHERE kind = 'TOP_UP' AND idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX point_ledger_initial_uq ON point_ledger (user_id) WHERE kind = 'INITIAL';
CREATE INDEX point_ledger_user_idx ON point_ledger (user_id);

CREATE TABLE stock_ledger (
    id         bigserial PRIMARY KEY,
    product_id bigint      NOT NULL REFERENCES products (id),
    order_id   text        NULL,
    attempt    bigint      NULL,
    kind       text        NOT NULL CHECK (kind IN ('INITIAL', 'RESTOCK', 'DEDUCT', 'RESTORE')),
    quantity   bigint      NOT NULL CHECK (quantity > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (
        (kind IN ('DEDUCT', 'RESTORE') AND order_id IS NOT NULL AND attempt IS NOT NULL)
        OR (kind IN ('INITIAL', 'RESTOCK') AND order_id IS NULL AND attempt IS NULL)
    )
);
CREATE UNIQUE INDEX stock_ledger_step_uq ON stock_ledger (order_id, attempt, kind, product_id);
CREATE UNIQUE INDEX stock_ledger_initial_uq ON stock_ledger (product_id) WHERE kind = 'INITIAL';
CREATE INDEX stock_ledger_product_idx ON stock_ledger (product_id);

CREATE TABLE coupon_ledger (
    id         bigserial PRIMARY KEY,
    coupon_id  bigint      NOT NULL REFERENCES coupons (id),
    order_id   text        NOT NULL,
    attempt    bigint      NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('REDEEM', 'RELEASE')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, attempt, kind)
);
CREATE INDEX coupon_ledger_coupon_idx ON coupon_ledger (coupon_id);
