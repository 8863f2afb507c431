-- +goose Up
-- Mail provider webhooks (issue 13.3; campaigns/providers parses and checks them,
-- campaigns/tracking records their effects, campaigns/feedback pauses what bounces too much).

-- The webhook role may call the webhook endpoints and nothing else.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('register', 'marketer', 'admin', 'webhook'));

-- Every provider event applied, by the provider's own id for it (SNS MessageId plus recipient,
-- SendGrid sg_event_id, Mailgun event id, Postmark record ID): a provider delivers at least
-- once, so the same event posted again is found here and changes nothing a second time. Rows
-- older than the providers' retry periods are purged (tracking.PurgeProviderEvents).
CREATE TABLE provider_events (
    provider    text NOT NULL,
    event_id    text NOT NULL CHECK (char_length(event_id) BETWEEN 1 AND 300),
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);
CREATE INDEX provider_events_received ON provider_events (received_at);

-- Spam complaints: the address is suppressed at the first one (and the member's marketing
-- consent withdrawn); complaints counts them.
ALTER TABLE email_suppressions ADD COLUMN complaints int NOT NULL DEFAULT 0;
ALTER TABLE campaign_recipients ADD COLUMN complained_at timestamptz;

-- The auto-pause rule (campaigns/feedback): a run counts its bounced and complained mails as
-- they are reported (one row update, never a count over its recipients), and keeps sent_seen,
-- the number of its mails sent when last counted: sent only grows, so bounced / sent_seen bounds
-- the bounce rate from above and the recipients are counted again only when that bound passes
-- a limit. auto_paused_at and auto_pause_reason say when and why the rule paused the campaign
-- (for a flow's step campaigns, on flows).
ALTER TABLE campaign_runs
    ADD COLUMN bounced           int NOT NULL DEFAULT 0,
    ADD COLUMN complained        int NOT NULL DEFAULT 0,
    ADD COLUMN sent_seen         bigint NOT NULL DEFAULT 0,
    ADD COLUMN auto_paused_at    timestamptz,
    ADD COLUMN auto_pause_reason text;
UPDATE campaign_runs r SET bounced = b.n
FROM (SELECT run_id, count(*) AS n FROM campaign_recipients WHERE bounced_at IS NOT NULL GROUP BY run_id) b
WHERE b.run_id = r.id;

ALTER TABLE flows
    ADD COLUMN auto_paused_at    timestamptz,
    ADD COLUMN auto_pause_reason text;

-- +goose Down
ALTER TABLE flows DROP COLUMN auto_pause_reason, DROP COLUMN auto_paused_at;
ALTER TABLE campaign_runs DROP COLUMN auto_pause_reason, DROP COLUMN auto_paused_at,
    DROP COLUMN sent_seen, DROP COLUMN complained, DROP COLUMN bounced;
ALTER TABLE campaign_recipients DROP COLUMN complained_at;
ALTER TABLE email_suppressions DROP COLUMN complaints;
DROP TABLE provider_events;
DELETE FROM api_keys WHERE role = 'webhook';
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check CHECK (role IN ('register', 'marketer', 'admin'));
