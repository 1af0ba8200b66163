SELECT c.order_id AS order_id, format('coupon %s is %s (order %s) but its ledger nets %s redemption(s) overall and %s by that order', c.id, c.status, coalesce(c.order_id, 'NULL'), coalesce(t.n, 0), coalesce(byo.n, 0))
FROM coupons c
LEFT JOIN (SELECT coupon_id, sum(n) AS n
FROM order_net_coupons x
GROUP BY coupon_id) t ON t.coupon_id = c.id
LEFT JOIN order_net_coupons byo ON byo.coupon_id = c.id
AND byo.order_id = c.order_id
WHERE coalesce(t.n, 0) <> CASE c.status WHEN 'USED' THEN 1 ELSE 0 END
OR (c.status = 'USED'
AND coalesce(byo.n, 0) <> 1)
