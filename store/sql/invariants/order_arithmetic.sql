SELECT o.id AS order_id, format('order %s: subtotal %s, discount %s, total %s, lines sum to %s in %s line(s)', o.id, o.subtotal, o.discount, o.total, coalesce(l.sum, 0), coalesce(l.n, 0))
FROM orders o
LEFT JOIN (SELECT order_id, sum(line_total) AS sum, count(*) AS n
FROM order_lines
GROUP BY order_id) l ON l.order_id = o.id
WHERE o.total <> o.subtotal - o.discount
OR o.total < 0
OR o.subtotal <> coalesce(l.sum, 0)
OR coalesce(l.n, 0) = 0
