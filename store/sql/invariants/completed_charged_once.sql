SELECT o.id AS order_id, format('order %s is COMPLETED with total %s but its net charge is %s in %s net charge(s)', o.id, o.total, coalesce(n.net, 0), coalesce(n.n, 0))
FROM orders o
LEFT JOIN order_net_points n ON n.order_id = o.id
WHERE o.status = 'COMPLETED'
AND (coalesce(n.net, 0) <> o.total
OR coalesce(n.n, 0) <> CASE WHEN o.total > 0 THEN 1 ELSE 0 END)
