SELECT o.id AS order_id, format('order %s is COMPLETED with coupon %s, but the coupon is %s with order_id %s and %s net redemption(s) by this order', o.id, o.coupon_id, coalesce(c.status, 'missing'), coalesce(c.order_id, 'NULL'), coalesce(n.n, 0))
FROM orders o
LEFT JOIN coupons c ON c.id = o.coupon_id
LEFT JOIN order_net_coupons n ON n.order_id = o.id
AND n.coupon_id = o.coupon_id
WHERE o.status = 'COMPLETED'
AND o.coupon_id IS NOT NULL
AND (c.id IS NULL
OR c.status <> 'USED'
OR c.order_id IS DISTINCT
FROM o.id
OR coalesce(n.n, 0) <> 1)
