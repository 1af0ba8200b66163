-- The net effect of each order on the ledgers, as views: CONTRACT §6's checks
-- (store/sql/invariants/) read them, and so can an operator in psql.

-- Per order: net points charged (charges − refunds) and the number of net charges.
CREATE VIEW order_net_points AS
    SELECT order_id,
           sum(CASE kind WHEN 'CHARGE' THEN amount ELSE -amount END) AS net,
           count(*) FILTER (WHERE kind = 'CHARGE') - count(*) FILTER (WHERE kind = 'REFUND') AS n
    FROM point_ledger WHERE order_id IS NOT NULL GROUP BY order_id;

-- Per order and product: net quantity deducted and the number of net deductions.
CREATE VIEW order_net_stock AS
    SELECT order_id, product_id,
           sum(CASE kind WHEN 'DEDUCT' THEN quantity ELSE -quantity END) AS net,
           count(*) FILTER (WHERE kind = 'DEDUCT') - count(*) FILTER (WHERE kind = 'RESTORE') AS n
    FROM stock_ledger WHERE order_id IS NOT NULL GROUP BY order_id, product_id;

-- Per order and coupon: net redemptions.
CREATE VIEW order_net_coupons AS
    SELECT order_id, coupon_id,
           count(*) FILTER (WHERE kind = 'REDEEM') - count(*) FILTER (WHERE kind = 'RELEASE') AS n
    FROM coupon_ledger GROUP BY order_id, coupon_id;
