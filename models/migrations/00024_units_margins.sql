-- +goose Up
-- Units and margins in the segment metrics (issue 16.4, docs/metrics.md "Units and margins").
-- Counts are over the receipt lines of the segment's member transactions in the window; refund
-- lines count against them. Margin figures are NULL where no line has a known cost (a line whose
-- sku is not in the catalogue, or whose product has no cost_minor, is never taken as cost 0).
ALTER TABLE segment_metrics
    ADD COLUMN units                 bigint,  -- units on sale lines − units on refund lines
    ADD COLUMN itemised_orders       bigint,  -- sales with at least one line
    ADD COLUMN units_per_transaction numeric, -- units ÷ itemised_orders
    ADD COLUMN lines                 bigint,  -- sale and refund lines
    ADD COLUMN unknown_cost_lines    bigint,  -- of which without a known cost
    ADD COLUMN unknown_cost_share    numeric, -- unknown_cost_lines ÷ lines
    ADD COLUMN known_cost_revenue    bigint,  -- net line revenue of the lines with a known cost
    ADD COLUMN gross_margin          bigint,  -- that revenue − the lines' cost
    ADD COLUMN margin_ratio          numeric, -- gross_margin ÷ known_cost_revenue
    ADD COLUMN clv_margin_historic   numeric, -- clv_historic × margin_ratio
    ADD COLUMN clv_margin_predicted  numeric; -- clv_predicted × margin_ratio

-- +goose Down
ALTER TABLE segment_metrics
    DROP COLUMN units, DROP COLUMN itemised_orders, DROP COLUMN units_per_transaction,
    DROP COLUMN lines, DROP COLUMN unknown_cost_lines, DROP COLUMN unknown_cost_share,
    DROP COLUMN known_cost_revenue, DROP COLUMN gross_margin, DROP COLUMN margin_ratio,
    DROP COLUMN clv_margin_historic, DROP COLUMN clv_margin_predicted;
