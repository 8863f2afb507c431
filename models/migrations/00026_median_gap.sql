-- +goose Up
-- The median number of days between a member's purchase days as of the run (NULL with fewer than
-- two purchase days): the personal lapse of flows (factor × this gap) reads it instead of
-- computing it from every candidate's history on each evaluation (docs/benchmarks.md, "Flows").
ALTER TABLE member_metrics ADD COLUMN median_gap_days double precision;

-- +goose Down
ALTER TABLE member_metrics DROP COLUMN median_gap_days;
