SELECT NULL::text AS order_id, format('user %s has %s points', id, points)
FROM users
WHERE points < 0
