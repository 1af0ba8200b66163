SELECT o.id AS order_id, format('order %s is %s but coupon %s has %s net redemption(s) by it', o.id, o.status, n.coupon_id, n.n)
FROM orders o
JOIN order_net_coupons n ON n.order_id = o.id
WHERE o.status IN ('PENDING', 'CANCELED', 'EXPIRED')
AND n.n <> 0
