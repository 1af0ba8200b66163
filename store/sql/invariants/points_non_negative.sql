SELECT format('user %s has %s points', id, points)
FROM users
WHERE points < 0
