-- +goose Up
-- Issue 10, smaller holes: limits that every replica must count together.

-- Test sends: each marketer (an API key or a console user) may mail at most so many addresses an
-- hour. One row per test send with the addresses it mailed; rows older than the window are
-- deleted as the marketer's next test send is counted.
CREATE TABLE test_sends (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    marketer  text NOT NULL, -- "key:<api key id>" or "user:<console user id>"
    addresses int NOT NULL CHECK (addresses >= 0),
    sent_at   timestamptz NOT NULL
);
CREATE INDEX test_sends_marketer ON test_sends (marketer, sent_at);

-- Join form views: one client (IP address and user agent) counts once a day per store. A client
-- is kept only as a SHA-256 under that day's random salt, and the salt and the day's clients are
-- deleted the day after, so no address is stored and none can be recovered from the hashes.
CREATE TABLE join_view_salts (
    day  date PRIMARY KEY, -- in REGULARS_TIMEZONE, like join_funnel
    salt bytea NOT NULL
);
CREATE TABLE join_views (
    day      date NOT NULL REFERENCES join_view_salts (day) ON DELETE CASCADE,
    store_id bigint REFERENCES stores (id),
    client   bytea NOT NULL,
    UNIQUE NULLS NOT DISTINCT (day, store_id, client)
);

-- +goose Down
DROP TABLE join_views;
DROP TABLE join_view_salts;
DROP TABLE test_sends;
