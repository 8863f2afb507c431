-- +goose Up
-- The discount club (issue 3): the language mail to a member is written in, when the double
-- opt-in was confirmed and when the member was erased; the queue of club mail; the join funnel.

ALTER TABLE members
    ADD COLUMN language     text NOT NULL DEFAULT 'en',
    ADD COLUMN confirmed_at timestamptz,
    ADD COLUMN erased_at    timestamptz;

-- Club mail is queued in the same transaction as the change that causes it, so a committed
-- sign-up always gets its mail and a rolled-back one never does. A sender claims due rows with
-- FOR UPDATE SKIP LOCKED and leases them by pushing next_attempt_at forward.
CREATE TABLE club_mail (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('confirm', 'consent_confirm', 'already_member', 'welcome')),
    member_id       bigint NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    to_addr         text NOT NULL,
    language        text NOT NULL DEFAULT 'en',
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    given_up_at     timestamptz,
    last_error      text NOT NULL DEFAULT ''
);
CREATE INDEX club_mail_due ON club_mail (next_attempt_at) WHERE sent_at IS NULL AND given_up_at IS NULL;
CREATE INDEX club_mail_member ON club_mail (member_id);

-- One row of counters per day (in REGULARS_TIMEZONE, computed by the server), store (NULL: the
-- form was opened without a known store) and source. NULLS NOT DISTINCT lets the NULL store be
-- one row too, so every count is a single upsert.
CREATE TABLE join_funnel (
    day           date NOT NULL,
    store_id      bigint REFERENCES stores (id),
    source        text NOT NULL CHECK (source IN ('web', 'till')),
    views         bigint NOT NULL DEFAULT 0,
    submissions   bigint NOT NULL DEFAULT 0,
    confirmations bigint NOT NULL DEFAULT 0,
    UNIQUE NULLS NOT DISTINCT (day, store_id, source)
);

-- PurgeUnconfirmed scans pending web sign-ups by age.
CREATE INDEX members_pending ON members (joined_at) WHERE status = 'pending';

-- +goose Down
DROP INDEX members_pending;
DROP TABLE join_funnel;
DROP TABLE club_mail;
ALTER TABLE members
    DROP COLUMN erased_at,
    DROP COLUMN confirmed_at,
    DROP COLUMN language;
