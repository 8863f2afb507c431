-- +goose Up
-- RFM (docs/metrics.md, "RFM"): each member's recency, frequency and monetary quintile scores
-- (1–5) over the window of the run that wrote the row, and the segment name they map to. The
-- scores are NULL for a member without a purchase in the window; rfm_segment is then 'Lost' if
-- they bought before the window, NULL if they never bought before the as-of date. The rows
-- follow member_metrics' rule: a back-filled run does not overwrite a newer one's.
ALTER TABLE member_metrics
    ADD COLUMN recency_score   smallint CHECK (recency_score BETWEEN 1 AND 5),
    ADD COLUMN frequency_score smallint CHECK (frequency_score BETWEEN 1 AND 5),
    ADD COLUMN monetary_score  smallint CHECK (monetary_score BETWEEN 1 AND 5),
    ADD COLUMN rfm_segment     text CHECK (rfm_segment IN ('Champions', 'Loyal', 'Potential loyalists',
        'New', 'At risk', 'Can''t lose', 'Hibernating', 'Lost'));
-- Segment rules (campaigns/segments, field rfm_segment) pick the members of one or a few names.
CREATE INDEX member_metrics_rfm_segment ON member_metrics (rfm_segment);

-- +goose Down
DROP INDEX member_metrics_rfm_segment;
ALTER TABLE member_metrics
    DROP COLUMN rfm_segment, DROP COLUMN monetary_score, DROP COLUMN frequency_score,
    DROP COLUMN recency_score;
