SELECT c.order_id AS order_id, format('coupon %s is USED by order %s, which is %s', c.id, c.order_id, coalesce(o.status, 'missing'))
FROM coupons c
LEFT JOIN orders o ON o.id = c.order_id
WHERE c.status = 'USED'
AND (o.id IS NULL
OR o.status NOT IN ('PAID', 'COMPLETED')
OR o.coupon_id IS DISTINCT
FROM c.id)
