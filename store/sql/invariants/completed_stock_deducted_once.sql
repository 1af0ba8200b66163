SELECT o.id AS order_id, format('order %s is COMPLETED but product %s (quantity %s) has net deduction %s in %s net deduction(s)', o.id, l.product_id, l.quantity, coalesce(n.net, 0), coalesce(n.n, 0))
FROM orders o
JOIN order_lines l ON l.order_id = o.id
LEFT JOIN order_net_stock n ON n.order_id = o.id
AND n.product_id = l.product_id
WHERE o.status = 'COMPLETED'
AND (coalesce(n.net, 0) <> l.quantity
OR coalesce(n.n, 0) <> 1)
