-- +goose Up
-- Campaign runs and their recipients (issue 4, part 3): one run per send_at or per cron
-- occurrence, and a one-row-per-(run, member) snapshot of its audience that the senders drain
-- (campaigns/dispatch). Email suppressions are written by the bounce webhook.

CREATE TABLE campaign_runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id   bigint NOT NULL REFERENCES campaigns (id),
    -- The send_at, or the cron occurrence, this run is for. UNIQUE with the campaign so that any
    -- number of dispatchers (one per serve replica) create each run once (ON CONFLICT DO NOTHING).
    scheduled_for timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'sending', 'paused', 'sent', 'cancelled')),
    -- Set when the recipients are snapshotted: the mailed and the held-out members.
    recipients    bigint,
    held_out      bigint,
    started_at    timestamptz,
    finished_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, scheduled_for)
);
CREATE INDEX campaign_runs_open ON campaign_runs (status) WHERE status IN ('pending', 'sending');

CREATE TABLE campaign_recipients (
    run_id          bigint NOT NULL REFERENCES campaign_runs (id) ON DELETE CASCADE,
    member_id       bigint NOT NULL REFERENCES members (id),
    email           text NOT NULL,
    held_out        boolean NOT NULL DEFAULT false,
    -- held_out: in the holdout group, never mailed. sending: claimed by a sender until lease_until;
    -- a row still 'sending' after its lease expired was in flight when its process died and is
    -- claimed again (it may be mailed twice; the Message-ID lets receivers dedupe).
    status          text NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'held_out')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    lease_until     timestamptz,
    sent_at         timestamptz,
    error           text,
    PRIMARY KEY (run_id, member_id)
);
-- The senders' claim query only looks at the unfinished rows.
CREATE INDEX campaign_recipients_open ON campaign_recipients (run_id) WHERE status IN ('queued', 'sending');
CREATE INDEX campaign_recipients_member ON campaign_recipients (member_id);

CREATE TABLE email_suppressions (
    -- Lower-cased.
    email         text PRIMARY KEY CHECK (email = lower(email)),
    hard_bounces  int NOT NULL DEFAULT 0,
    soft_bounces  int NOT NULL DEFAULT 0,
    last_reason   text,
    -- Set: the address is never mailed (the recipient snapshot excludes it).
    suppressed_at timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE email_suppressions;
DROP TABLE campaign_recipients;
DROP TABLE campaign_runs;
