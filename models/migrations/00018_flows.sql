-- +goose Up
-- Flows (issue 11): automated journeys. A flow's trigger and steps are JSON as the API takes
-- them (flows.Parse checks them); each mail step is a campaign row (campaigns.flow_id) so that
-- its mails go through the campaign machinery unchanged: recipients, leases, the crash rule,
-- click tracking, bounces.
CREATE TABLE flows (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                 text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    trigger              jsonb NOT NULL,
    steps                jsonb NOT NULL,
    exit_on_purchase     boolean NOT NULL DEFAULT true,
    -- NULL: a member enters once ever.
    reentry_days         int CHECK (reentry_days BETWEEN 1 AND 3650),
    holdout_percent      numeric(4, 2) NOT NULL DEFAULT 0 CHECK (holdout_percent BETWEEN 0 AND 50),
    segment_id           bigint REFERENCES segments (id) ON DELETE RESTRICT,
    status               text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'paused')),
    -- The latest activation: event triggers see events from then on.
    activated_at         timestamptz,
    -- Event triggers have looked at events received up to here (a watermark; each tick looks a
    -- little further back too, so that a sale committed late is still seen).
    events_checked_until timestamptz,
    -- State triggers were last evaluated then; NULL right after activation.
    states_checked_at    timestamptz,
    -- Every member on the way was last checked for a reason to leave then (members due at a
    -- step are checked on every tick).
    exits_checked_at     timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX flows_segment ON flows (segment_id);
CREATE INDEX flows_active ON flows (id) WHERE status = 'active';

-- One row per time a member enters a flow. event_key names the event that started it (the
-- sale, the year of the birthday, the lapse since a given last purchase): UNIQUE, so a trigger
-- fires once per member per event however many replicas look at it.
CREATE TABLE flow_entries (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow_id     bigint NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    member_id   bigint NOT NULL REFERENCES members (id),
    event_key   text NOT NULL,
    -- Drawn once per (flow, member) from a hash of both and kept: the same member is always in
    -- the same group of a flow.
    held_out    boolean NOT NULL,
    entered_at  timestamptz NOT NULL DEFAULT now(),
    -- The step to run next (an index into the flow's compiled program, flows.Program) and when.
    step        int NOT NULL DEFAULT 0,
    next_at     timestamptz NOT NULL DEFAULT now(),
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'done', 'exited')),
    exit_reason text CHECK (exit_reason IN ('purchase', 'consent', 'erased', 'suppressed')),
    finished_at timestamptz,
    UNIQUE (flow_id, member_id, event_key),
    CHECK ((status = 'exited') = (exit_reason IS NOT NULL))
);
CREATE INDEX flow_entries_due ON flow_entries (flow_id, step, next_at) WHERE status = 'active';
CREATE INDEX flow_entries_member ON flow_entries (member_id, flow_id, entered_at);

-- A mail step's campaign: never listed, scheduled or edited as a campaign; the flow owns it.
ALTER TABLE campaigns
    ADD COLUMN flow_id   bigint REFERENCES flows (id) ON DELETE CASCADE,
    ADD COLUMN flow_step int,
    ADD CONSTRAINT campaigns_flow_step CHECK ((flow_id IS NULL) = (flow_step IS NULL));
CREATE UNIQUE INDEX campaigns_flow_step_key ON campaigns (flow_id, flow_step) WHERE flow_id IS NOT NULL;

-- live: the sale came through the till API (one, a batch, or an offline batch uploaded late).
-- Imported history is not live: it starts no flow.
ALTER TABLE transactions ADD COLUMN live boolean NOT NULL DEFAULT false;
CREATE INDEX transactions_live_received ON transactions (received_at) WHERE live AND member_id IS NOT NULL;
-- A member's last sale, for the lapsed trigger: one backward index probe per member without
-- reading the table (docs/benchmarks.md, "Flows": 0.70 → 0.21 s at 100k members).
CREATE INDEX transactions_member_last_sale ON transactions (member_id, occurred_at DESC, id DESC)
    WHERE kind = 'sale' AND member_id IS NOT NULL;
-- Members who joined (consent confirmed) recently, for the joined trigger.
CREATE INDEX members_confirmed_at ON members (confirmed_at) WHERE confirmed_at IS NOT NULL;
-- Birthdays by month and day, for the birthday trigger.
CREATE INDEX members_birthday ON members ((extract(month FROM birth_date)), (extract(day FROM birth_date)))
    WHERE birth_date IS NOT NULL;

-- quiet_until is when flow mail may next go out to a member whose home store is in zone, or
-- NULL when it may go now: quiet hours run from quiet_start to quiet_end (local times of day;
-- quiet_start after quiet_end spans midnight, the usual 21:00–08:00); equal values switch them
-- off.
-- +goose StatementBegin
CREATE FUNCTION quiet_until(at timestamptz, zone text, quiet_start time, quiet_end time) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT CASE
        WHEN quiet_start = quiet_end THEN NULL
        WHEN quiet_start > quiet_end AND local::time >= quiet_end AND local::time < quiet_start THEN NULL
        WHEN quiet_start < quiet_end AND (local::time < quiet_start OR local::time >= quiet_end) THEN NULL
        -- Quiet now: the next quiet_end in the zone.
        WHEN local::time < quiet_end THEN (local::date + quiet_end) AT TIME ZONE zone
        ELSE (local::date + 1 + quiet_end) AT TIME ZONE zone
    END
    FROM (SELECT at AT TIME ZONE zone AS local) l
    $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION quiet_until(timestamptz, text, time, time);
DROP INDEX members_birthday;
DROP INDEX members_confirmed_at;
DROP INDEX transactions_member_last_sale;
DROP INDEX transactions_live_received;
ALTER TABLE transactions DROP COLUMN live;
DROP INDEX campaigns_flow_step_key;
ALTER TABLE campaigns DROP CONSTRAINT campaigns_flow_step, DROP COLUMN flow_step, DROP COLUMN flow_id;
DROP TABLE flow_entries;
DROP TABLE flows;
