SELECT NULL::text AS order_id, format('user %s has %s points but INITIAL + TOP_UP - CHARGE + REFUND = %s', u.id, u.points, coalesce(l.net, 0))
FROM users u
LEFT JOIN ( SELECT user_id, sum(CASE WHEN kind = 'CHARGE' THEN -amount ELSE amount END) AS net
FROM point_ledger
GROUP BY user_id) l ON l.user_id = u.id
WHERE u.points <> coalesce(l.net, 0)
