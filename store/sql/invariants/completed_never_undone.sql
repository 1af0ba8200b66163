-- The pivot (CONTRACT §2): nothing undoes a COMPLETED order, so no refund, release
-- or restoration ever names one.
SELECT o.id AS order_id, format('order %s is COMPLETED but has a %s ledger row (attempt %s)', o.id, x.kind, x.attempt)
FROM orders o
JOIN ( SELECT order_id, attempt, kind
FROM point_ledger
WHERE kind = 'REFUND'
UNION ALL SELECT order_id, attempt, kind
FROM stock_ledger
WHERE kind = 'RESTORE'
UNION ALL SELECT order_id, attempt, kind
FROM coupon_ledger
WHERE kind = 'RELEASE') x ON x.order_id = o.id
WHERE o.status = 'COMPLETED'
