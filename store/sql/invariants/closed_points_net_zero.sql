SELECT o.id AS order_id, format('order %s is %s but its net charge is %s', o.id, o.status, n.net)
FROM orders o
JOIN order_net_points n ON n.order_id = o.id
WHERE o.status IN ('PENDING', 'CANCELED', 'EXPIRED')
AND (n.net <> 0
OR n.n <> 0)
