-- +goose Up
-- Campaign tracking (issue 4, parts 5-7; campaigns/tracking): bounces, link clicks, opens.

-- The bounce webhook marks the latest mail sent to a bouncing address, for the per-run stats
-- (delivered = sent - bounced). It finds that mail by address, newest first.
ALTER TABLE campaign_recipients ADD COLUMN bounced_at timestamptz;
CREATE INDEX campaign_recipients_sent_email ON campaign_recipients (lower(email), sent_at DESC)
    WHERE status = 'sent';

-- The soft bounces of the last 30 days (older ones are dropped on each bounce): the third in
-- that window suppresses the address. soft_bounces stays the all-time count.
ALTER TABLE email_suppressions
    ADD COLUMN recent_soft_bounces timestamptz[] NOT NULL DEFAULT '{}';

-- The open-tracking pixel is off unless a campaign asks for it (privacy).
ALTER TABLE campaigns ADD COLUMN track_opens boolean NOT NULL DEFAULT false;

-- Every tracked link of a campaign once; the redirect goes to the url stored here, never to one
-- taken from the request, so /c/ cannot be used as an open redirect.
CREATE TABLE campaign_links (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    url         text NOT NULL,
    UNIQUE (campaign_id, url)
);

-- One row per click (and per open): counts are count(*), unique clickers count(DISTINCT member).
-- No foreign key to members: a click is a fact about a mail, kept when the member row changes.
CREATE TABLE campaign_clicks (
    run_id     bigint NOT NULL REFERENCES campaign_runs (id) ON DELETE CASCADE,
    member_id  bigint NOT NULL,
    link_id    bigint NOT NULL REFERENCES campaign_links (id) ON DELETE CASCADE,
    clicked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_clicks_run ON campaign_clicks (run_id, link_id, member_id);

CREATE TABLE campaign_opens (
    run_id    bigint NOT NULL REFERENCES campaign_runs (id) ON DELETE CASCADE,
    member_id bigint NOT NULL,
    opened_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_opens_run ON campaign_opens (run_id, member_id);

-- +goose Down
DROP TABLE campaign_opens;
DROP TABLE campaign_clicks;
DROP TABLE campaign_links;
ALTER TABLE campaigns DROP COLUMN track_opens;
ALTER TABLE email_suppressions DROP COLUMN recent_soft_bounces;
DROP INDEX campaign_recipients_sent_email;
ALTER TABLE campaign_recipients DROP COLUMN bounced_at;
