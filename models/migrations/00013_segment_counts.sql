-- +goose Up
-- Cached segment counts (issue 10): the segment lists show these instead of counting every saved
-- segment on every page view, which took 35 s with a 200-rule segment. A job counts in the
-- background (campaigns/segments.Recount, after a save and every few minutes). rules is the tree
-- that was counted: counts whose rules differ from the segment's current ones are stale and
-- are not shown, so an edit can never show the old tree's counts.
CREATE TABLE segment_counts (
    segment_id bigint PRIMARY KEY REFERENCES segments (id) ON DELETE CASCADE,
    rules      jsonb NOT NULL,
    members    bigint NOT NULL,
    mailable   bigint NOT NULL,
    counted_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE segment_counts;
