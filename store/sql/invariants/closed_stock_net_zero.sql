SELECT o.id AS order_id, format('order %s is %s but product %s has net deduction %s', o.id, o.status, n.product_id, n.net)
FROM orders o
JOIN order_net_stock n ON n.order_id = o.id
WHERE o.status IN ('PENDING', 'CANCELED', 'EXPIRED')
AND (n.net <> 0
OR n.n <> 0)
