-- +goose Up
-- The marketers' console (issue 6): people who log in with an email and a password, and their
-- server-side sessions.

-- password_hash is a bcrypt hash (its cost is inside it). failed_logins counts wrong passwords
-- since the last good login or lock; the fifth locks the account until locked_until.
CREATE TABLE console_users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'marketer')),
    failed_logins int NOT NULL DEFAULT 0,
    locked_until  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);
CREATE UNIQUE INDEX console_users_email_key ON console_users (lower(email));

-- A session is known by the SHA-256 of its cookie's 256-bit random token: the table alone lets
-- nobody log in. expires_at is the earlier of last_seen_at + the idle timeout and created_at +
-- the absolute lifetime, moved forward as the session is used. csrf is the token every form of
-- the session carries.
CREATE TABLE console_sessions (
    id_hash      bytea PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES console_users (id) ON DELETE CASCADE,
    csrf         text NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- +goose Down
DROP TABLE console_sessions;
DROP TABLE console_users;
