WITH rows AS ( SELECT order_id, attempt, 'charge_points' AS step, kind IN ('REFUND') AS back, CASE kind WHEN 'CHARGE' THEN 1 ELSE -1 END AS sign, kind
FROM point_ledger
WHERE order_id IS NOT NULL
UNION ALL SELECT order_id, attempt, 'deduct_stock', kind = 'RESTORE', CASE kind WHEN 'DEDUCT' THEN 1 ELSE -1 END, kind
FROM stock_ledger
WHERE order_id IS NOT NULL
UNION ALL SELECT order_id, attempt, 'redeem_coupon', kind = 'RELEASE', CASE kind WHEN 'REDEEM' THEN 1 ELSE -1 END, kind
FROM coupon_ledger) SELECT r.order_id AS order_id, format('order %s attempt %s: %s ledger row(s) but the %s step is %s', r.order_id, r.attempt, r.kind, r.step, coalesce(s.state, 'missing'))
FROM (SELECT DISTINCT order_id, attempt, step, back, kind
FROM rows) r
LEFT JOIN saga_steps s ON s.order_id = r.order_id
AND s.attempt = r.attempt
AND s.step = r.step
WHERE s.state IS NULL
OR s.state IN ('FENCED', 'REFUSED')
OR (r.back
AND s.state <> 'COMPENSATED')
UNION ALL SELECT s.order_id AS order_id, format('order %s attempt %s: the %s step is COMPENSATED but its ledger rows do not cancel out', s.order_id, s.attempt, s.step)
FROM saga_steps s
JOIN rows r ON r.order_id = s.order_id
AND r.attempt = s.attempt
AND r.step = s.step
WHERE s.state = 'COMPENSATED'
GROUP BY s.order_id, s.attempt, s.step
HAVING sum(r.sign) <> 0
