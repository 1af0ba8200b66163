SELECT o.id AS order_id, format('point ledger row %s charges user %s for order %s of user %s', l.id, l.user_id, o.id, o.user_id)
FROM point_ledger l
JOIN orders o ON o.id = l.order_id
WHERE l.user_id <> o.user_id
UNION ALL SELECT o.id AS order_id, format('coupon ledger row %s redeems coupon %s for order %s, whose coupon is %s', l.id, l.coupon_id, o.id, coalesce(o.coupon_id::text, 'none'))
FROM coupon_ledger l
JOIN orders o ON o.id = l.order_id
WHERE o.coupon_id IS DISTINCT
FROM l.coupon_id
