SELECT o.id AS order_id, format('order %s is COMPLETED but has %s DONE %s step(s)', o.id, (SELECT count(*)
FROM saga_steps s
WHERE s.order_id = o.id
AND s.step = w.step
AND s.state = 'DONE'), w.step)
FROM orders o
CROSS JOIN (VALUES ('charge_points'), ('redeem_coupon'), ('deduct_stock')) AS w(step)
WHERE o.status = 'COMPLETED'
AND (w.step <> 'redeem_coupon'
OR o.coupon_id IS NOT NULL)
AND (SELECT count(*)
FROM saga_steps s
WHERE s.order_id = o.id
AND s.step = w.step
AND s.state = 'DONE') <> 1
