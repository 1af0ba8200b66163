SELECT o.id AS order_id, format('order %s is %s but its %s step (attempt %s) is DONE, not COMPENSATED', o.id, o.status, s.step, s.attempt)
FROM saga_steps s
JOIN orders o ON o.id = s.order_id
WHERE s.state = 'DONE'
AND o.status IN ('PENDING', 'CANCELED', 'EXPIRED')
