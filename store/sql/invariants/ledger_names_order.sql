SELECT x.order_id AS order_id, format('%s ledger row %s names order %s, which does not exist', t, id, order_id)
FROM ( SELECT 'point' AS t, id, order_id
FROM point_ledger
WHERE order_id IS NOT NULL
UNION ALL SELECT 'stock', id, order_id
FROM stock_ledger
WHERE order_id IS NOT NULL
UNION ALL SELECT 'coupon', id, order_id
FROM coupon_ledger) x
WHERE NOT EXISTS (SELECT 1
FROM orders o
WHERE o.id = x.order_id)
