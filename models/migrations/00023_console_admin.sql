-- +goose Up
-- The owner's console pages (issue 13.2): staff logins that can be disabled, and the audit log of
-- what admins and marketers did.

-- A disabled user cannot log in, and their sessions stop working (LookupSession ignores them and
-- DisableUser deletes them). Users are never deleted: the audit log keeps naming them.
ALTER TABLE console_users ADD COLUMN disabled_at timestamptz;

-- One row per state-changing request by a console user or an admin/marketer API key (never a
-- till's sales: those are the transactions themselves). actor is the email or key name as it was
-- then; action is the method and route ("POST /console/stores/:code"), target the route's
-- parameters; no request body or secret is ever stored. ip is the client address under the
-- trusted-proxy rule (REGULARS_TRUSTED_PROXIES). status is the HTTP status sent.
CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    user_id    bigint REFERENCES console_users (id),
    api_key_id bigint REFERENCES api_keys (id),
    actor      text NOT NULL,
    action     text NOT NULL,
    target     text NOT NULL DEFAULT '',
    ip         inet,
    status     int NOT NULL,
    CHECK (num_nonnulls(user_id, api_key_id) = 1)
);
-- The page reads newest first by id (keyset paging); a filter by date is a range of at, by user
-- one actor's rows newest first.
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (lower(actor), id DESC);

-- The member page (issue 13.5) says of each mail whether it was clicked: one probe per mail by
-- member and run (campaign_clicks_run leads with the run and the link, so it would read every
-- click of the run).
CREATE INDEX campaign_clicks_member ON campaign_clicks (member_id, run_id);

-- +goose Down
DROP INDEX campaign_clicks_member;
DROP TABLE audit_log;
ALTER TABLE console_users DROP COLUMN disabled_at;
