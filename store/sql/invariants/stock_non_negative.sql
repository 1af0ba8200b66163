SELECT NULL::text AS order_id, format('product %s has stock %s', id, stock)
FROM products
WHERE stock < 0
