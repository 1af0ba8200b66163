SELECT NULL::text AS order_id, format('product %s has stock %s but INITIAL + RESTOCK - DEDUCT + RESTORE = %s', p.id, p.stock, coalesce(l.net, 0))
FROM products p
LEFT JOIN ( SELECT product_id,
    sum(CASE kind WHEN 'INITIAL' THEN quantity WHEN 'RESTOCK' THEN quantity
                  WHEN 'DEDUCT' THEN -quantity WHEN 'RESTORE' THEN quantity END) AS net
FROM stock_ledger
GROUP BY product_id) l ON l.product_id = p.id
WHERE p.stock <> coalesce(l.net, 0)
