-- +goose Up
-- Campaigns (issue 4, part 2): a marketer's email, stored as Go templates (campaigns/render.go)
-- that are validated when saved. The runs of a campaign (one per send_at, or one per cron
-- occurrence) and their one-row-per-(run, member) recipient snapshot belong to the dispatcher
-- and come with it in a later migration.
CREATE TABLE campaigns (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    subject         text NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 200),
    -- Empty: the server's default sender (REGULARS_MAIL_FROM) at the time of sending.
    from_addr       text NOT NULL DEFAULT '',
    html            text NOT NULL DEFAULT '',
    text            text NOT NULL DEFAULT '',
    -- A segment in use cannot be deleted (RESTRICT): a scheduled campaign must keep its audience.
    segment_id      bigint REFERENCES segments (id) ON DELETE RESTRICT,
    -- The share of the segment held out (not mailed) to measure the campaign's lift.
    holdout_percent numeric(4, 2) NOT NULL DEFAULT 0 CHECK (holdout_percent BETWEEN 0 AND 50),
    status          text NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'scheduled', 'sending', 'sent', 'paused', 'cancelled')),
    -- A one-off campaign has send_at; a recurring one has cron and timezone (robfig/cron/v3).
    send_at         timestamptz,
    cron            text,
    timezone        text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (html <> '' OR text <> ''),
    CHECK (send_at IS NULL OR cron IS NULL),
    CHECK ((cron IS NULL) = (timezone IS NULL))
);
CREATE INDEX campaigns_segment ON campaigns (segment_id);

-- +goose Down
DROP TABLE campaigns;
