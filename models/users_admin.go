package models

// Managing console users from the console (issue 13.2): list, disable and enable, reset a
// password, change a role, change one's own password. One rule holds throughout: there is always
// at least one enabled admin, so the shop can never lock itself out of its own console.

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"
)

// ErrLastAdmin is refused when a change would leave no enabled admin.
var ErrLastAdmin = Errorf(ECONFLICT, "this is the last enabled admin: make another admin first")

// consoleUserColumns are the columns scanConsoleUser reads (no password hash).
const consoleUserColumns = `id, email, role, failed_logins, locked_until, created_at, last_login_at, disabled_at`

func scanConsoleUser(row pgx.Row) (ConsoleUser, error) {
	var u ConsoleUser
	err := row.Scan(&u.ID, &u.Email, &u.Role, &u.FailedLogins, &u.LockedUntil, &u.CreatedAt, &u.LastLoginAt, &u.DisabledAt)
	return u, err
}

// FindUsers lists every console user, disabled ones too, by email. Staff are a handful of
// people, so there is no paging.
func (db *DB) FindUsers(ctx context.Context) ([]ConsoleUser, error) {
	rows, err := db.Pool.Query(ctx, `SELECT `+consoleUserColumns+` FROM console_users ORDER BY lower(email)`)
	if err != nil {
		return nil, fmt.Errorf("list console users: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ConsoleUser, error) { return scanConsoleUser(row) })
	if err != nil {
		return nil, fmt.Errorf("list console users: %w", err)
	}
	return out, nil
}

// FindUserByID returns console user id, or ENOTFOUND.
func (db *DB) FindUserByID(ctx context.Context, id int64) (*ConsoleUser, error) {
	u, err := scanConsoleUser(db.Pool.QueryRow(ctx, `SELECT `+consoleUserColumns+` FROM console_users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENOTFOUND, "no console user %d", id)
	}
	if err != nil {
		return nil, fmt.Errorf("find console user %d: %w", id, err)
	}
	return &u, nil
}

// changeUser runs change on user id inside a transaction that holds every enabled admin's row,
// then refuses (ErrLastAdmin) and rolls back if no enabled admin is left. Holding the rows makes
// two admins who demote each other at the same moment take turns, and the second is refused.
func (db *DB) changeUser(ctx context.Context, id int64, what string, change func(pgx.Tx) (int64, error)) error {
	return pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT id FROM console_users WHERE role = 'admin' AND disabled_at IS NULL FOR UPDATE`); err != nil {
			return fmt.Errorf("%s console user %d: %w", what, id, err)
		}
		n, err := change(tx)
		if err != nil {
			return fmt.Errorf("%s console user %d: %w", what, id, err)
		}
		if n == 0 {
			return Errorf(ENOTFOUND, "no console user %d", id)
		}
		var admins int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM console_users WHERE role = 'admin' AND disabled_at IS NULL`).Scan(&admins); err != nil {
			return fmt.Errorf("%s console user %d: %w", what, id, err)
		}
		if admins == 0 {
			return ErrLastAdmin
		}
		return nil
	})
}

// SetUserRole makes user id an admin or a marketer; the change shows on their next request.
// ErrLastAdmin when it would demote the last enabled admin.
func (db *DB) SetUserRole(ctx context.Context, id int64, role string) error {
	switch role {
	case RoleAdmin, RoleMarketer:
	default:
		return &Error{Code: EINVALID, Message: "invalid role", Fields: map[string]string{"role": "must be admin or marketer"}}
	}
	return db.changeUser(ctx, id, "change role of", func(tx pgx.Tx) (int64, error) {
		tag, err := tx.Exec(ctx, `UPDATE console_users SET role = $2 WHERE id = $1`, id, role)
		return tag.RowsAffected(), err
	})
}

// DisableUser stops user id logging in and ends every session they have, at once. Disabling a
// disabled user keeps the first time. ErrLastAdmin when they are the last enabled admin.
func (db *DB) DisableUser(ctx context.Context, id int64) error {
	return db.changeUser(ctx, id, "disable", func(tx pgx.Tx) (int64, error) {
		tag, err := tx.Exec(ctx, `UPDATE console_users SET disabled_at = coalesce(disabled_at, $2) WHERE id = $1`, id, db.Now())
		if err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE user_id = $1`, id); err != nil {
			return 0, err
		}
		return tag.RowsAffected(), nil
	})
}

// EnableUser lets a disabled user log in again (with their old password, or one an admin sets).
func (db *DB) EnableUser(ctx context.Context, id int64) error {
	tag, err := db.Pool.Exec(ctx, `UPDATE console_users SET disabled_at = NULL, failed_logins = 0, locked_until = NULL
		WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("enable console user %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return Errorf(ENOTFOUND, "no console user %d", id)
	}
	return nil
}

// ResetUserPassword gives user id a new password (an admin tells it to them), lifts a lock-out
// and ends their sessions, so that whoever knew the old password is logged out.
func (db *DB) ResetUserPassword(ctx context.Context, id int64, password string) error {
	fe := FieldErrors{}
	checkPassword(fe, "password", password)
	if err := fe.Err("invalid password"); err != nil {
		return err
	}
	return db.setPassword(ctx, id, password, nil)
}

// ChangeOwnPassword sets the password of user id after checking their current one; the session
// of keepToken (the one making the change) stays, every other session of theirs ends. A wrong
// current password is EINVALID on the field current_password.
func (db *DB) ChangeOwnPassword(ctx context.Context, id int64, current, password, keepToken string) error {
	var hash string
	err := db.Pool.QueryRow(ctx, `SELECT password_hash FROM console_users WHERE id = $1`, id).Scan(&hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return Errorf(ENOTFOUND, "no console user %d", id)
	}
	if err != nil {
		return fmt.Errorf("change password of console user %d: %w", id, err)
	}
	fe := FieldErrors{}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(current)) != nil {
		fe.Add("current_password", "is not your current password")
	}
	checkPassword(fe, "password", password)
	if err := fe.Err("password not changed"); err != nil {
		return err
	}
	keep := sessionHash(keepToken)
	return db.setPassword(ctx, id, password, keep)
}

// setPassword stores password's hash for user id, lifts a lock-out and deletes their sessions
// but keep (nil: all).
func (db *DB) setPassword(ctx context.Context, id int64, password string, keep []byte) error {
	hash, err := db.hashPassword(password)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE console_users SET password_hash = $2, failed_logins = 0, locked_until = NULL
			WHERE id = $1`, id, hash)
		if err != nil {
			return fmt.Errorf("set password of console user %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return Errorf(ENOTFOUND, "no console user %d", id)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE user_id = $1 AND ($2::bytea IS NULL OR id_hash <> $2)`,
			id, keep); err != nil {
			return fmt.Errorf("end sessions of console user %d: %w", id, err)
		}
		return nil
	})
}
