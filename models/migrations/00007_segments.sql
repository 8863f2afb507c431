-- +goose Up
-- Saved segments (issue 4): a marketer's named rule tree (campaigns/segments). The rules are
-- stored as the validated JSON tree and compiled to SQL each time they are used, so a saved
-- segment's members are always live. Names are unique regardless of case, so "VIP" and "vip"
-- cannot both appear in the console.
CREATE TABLE segments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 80),
    description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 1000),
    rules       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX segments_name_key ON segments (lower(name));

-- The member's birthday, for the segment field birthday_month. Optional: nobody has to give it.
ALTER TABLE members ADD COLUMN IF NOT EXISTS birth_date date;

-- +goose Down
ALTER TABLE members DROP COLUMN IF EXISTS birth_date;
DROP TABLE segments;
