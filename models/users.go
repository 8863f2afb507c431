package models

// Console users and their sessions. Passwords are bcrypt hashes; sessions are random tokens of
// which only a SHA-256 is stored, like API keys.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"
)

// Console login policy.
const (
	// PasswordCost is the bcrypt cost of new passwords (about a quarter of a second each).
	PasswordCost = 12
	// MinPasswordLength is the shortest password accepted, in characters.
	MinPasswordLength = 10
	// maxPasswordBytes is bcrypt's limit: it ignores anything beyond 72 bytes, so longer
	// passwords are refused rather than silently cut.
	maxPasswordBytes = 72
	// MaxFailedLogins wrong passwords in a row lock an account for LockDuration.
	MaxFailedLogins = 5
	LockDuration    = 15 * time.Minute
	// SessionIdle is how long a session lives unused; SessionLifetime is its limit however
	// busy; a session's expiry moves at most once every sessionSlide.
	SessionIdle     = 12 * time.Hour
	SessionLifetime = 7 * 24 * time.Hour
	sessionSlide    = time.Minute
)

// Login errors. Both wrap an EUNAUTHORIZED *Error with the same message, so that nothing shown
// to the person at the form tells an unknown email, a wrong password and a locked account apart;
// errors.Is tells them apart for logs and tests.
var (
	ErrWrongLogin    = &loginError{locked: false}
	ErrAccountLocked = &loginError{locked: true}
	// ErrSessionExpired is returned by LookupSession for a session that existed but ended.
	ErrSessionExpired = Errorf(EUNAUTHORIZED, "your session expired")
	// ErrNoSession is returned by LookupSession for a token no session has.
	ErrNoSession = Errorf(EUNAUTHORIZED, "not logged in")
)

// LoginFailedMessage is what a failed login says, whatever the reason.
const LoginFailedMessage = "email or password is wrong"

type loginError struct{ locked bool }

func (e *loginError) Error() string {
	if e.locked {
		return LoginFailedMessage + " (account locked)"
	}
	return LoginFailedMessage
}

// Unwrap makes errors.As(err, **Error) and ErrorCode see EUNAUTHORIZED.
func (e *loginError) Unwrap() error { return Errorf(EUNAUTHORIZED, LoginFailedMessage) }

// ConsoleUser is a person who logs in to the console.
type ConsoleUser struct {
	ID           int64
	Email        string
	Role         string // RoleAdmin or RoleMarketer
	FailedLogins int
	LockedUntil  *time.Time
	CreatedAt    time.Time
	LastLoginAt  *time.Time
	// DisabledAt is set for a user who may no longer log in (users_admin.go).
	DisabledAt *time.Time
}

// ConsoleSession is a logged-in session with its user.
type ConsoleSession struct {
	User       ConsoleUser
	CSRF       string // the token every form of the session must carry
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// CreateUser adds a console user. EINVALID names the field at fault (email, role, password);
// ECONFLICT when the email (in any case) is taken.
func (db *DB) CreateUser(ctx context.Context, email, role, password string) (*ConsoleUser, error) {
	email = strings.TrimSpace(email)
	fe := FieldErrors{}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || !strings.Contains(email, "@") {
		fe.Add("email", "must be an email address such as anna@example.com")
	}
	switch role {
	case RoleAdmin, RoleMarketer:
	default:
		fe.Add("role", "must be admin or marketer")
	}
	checkPassword(fe, "password", password)
	if err := fe.Err("invalid user"); err != nil {
		return nil, err
	}
	hash, err := db.hashPassword(password)
	if err != nil {
		return nil, err
	}
	u := ConsoleUser{Email: email, Role: role}
	err = db.Pool.QueryRow(ctx, `INSERT INTO console_users (email, role, password_hash, created_at)
		VALUES ($1, $2, $3, $4) RETURNING id, created_at`, email, role, hash, db.Now()).Scan(&u.ID, &u.CreatedAt)
	if IsUniqueViolation(err, "console_users_email_key") {
		return nil, &Error{Code: ECONFLICT, Message: "a console user with this email exists",
			Fields: map[string]string{"email": "is taken"}}
	}
	if err != nil {
		return nil, fmt.Errorf("create console user %s: %w", email, err)
	}
	return &u, nil
}

// checkPassword adds field's error to fe when password breaks the password policy.
func checkPassword(fe FieldErrors, field, password string) {
	if n := len([]rune(password)); n < MinPasswordLength {
		fe.Add(field, fmt.Sprintf("must be at least %d characters", MinPasswordLength))
	} else if len(password) > maxPasswordBytes {
		fe.Add(field, fmt.Sprintf("must be at most %d bytes", maxPasswordBytes))
	}
}

// hashPassword is password's bcrypt hash at db's cost.
func (db *DB) hashPassword(password string) (string, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), db.passwordCost())
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(hash), nil
}

// passwordCost is the bcrypt cost of db's new passwords: PasswordCost unless tests lowered it.
func (db *DB) passwordCost() int {
	if db.PasswordCost > 0 {
		return db.PasswordCost
	}
	return PasswordCost
}

// dummyHashes holds, by cost, the hash compared against when the email is unknown, so that such a
// login costs as long as one with a wrong password and the timing reveals no accounts.
var dummyHashes sync.Map // int → []byte

func (db *DB) dummyHash() []byte {
	cost := db.passwordCost()
	if h, ok := dummyHashes.Load(cost); ok {
		return h.([]byte)
	}
	h, err := bcrypt.GenerateFromPassword([]byte("no such user, no such password"), cost)
	if err != nil {
		panic(err)
	}
	dummyHashes.Store(cost, h)
	return h
}

// AuthenticateUser checks a console email and password. It returns the user, or ErrWrongLogin (unknown
// email or wrong password) or ErrAccountLocked (MaxFailedLogins wrong passwords in a row lock
// the account for LockDuration; while locked even the right password is refused). A good login
// clears the failure count and records last_login_at.
func (db *DB) AuthenticateUser(ctx context.Context, email, password string) (*ConsoleUser, error) {
	var (
		u    ConsoleUser
		hash string
	)
	err := db.Pool.QueryRow(ctx, `SELECT id, email, role, password_hash, failed_logins, locked_until,
		created_at, last_login_at, disabled_at FROM console_users WHERE lower(email) = lower($1)`, strings.TrimSpace(email)).
		Scan(&u.ID, &u.Email, &u.Role, &hash, &u.FailedLogins, &u.LockedUntil, &u.CreatedAt, &u.LastLoginAt, &u.DisabledAt)
	if errors.Is(err, pgx.ErrNoRows) {
		_ = bcrypt.CompareHashAndPassword(db.dummyHash(), []byte(password))
		return nil, ErrWrongLogin
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate %s: %w", email, err)
	}
	now := db.Now()
	good := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	if u.DisabledAt != nil {
		// Answered like a wrong password, after the same comparison: a disabled login tells the
		// person at the form nothing.
		return nil, ErrWrongLogin
	}
	if u.LockedUntil != nil && now.Before(*u.LockedUntil) {
		return nil, ErrAccountLocked // compared anyway above: a locked account answers as slowly
	}
	if !good {
		// One statement, so that concurrent failures all count; the one reaching the limit locks
		// the account and starts the count again for after the lock.
		var locked bool
		err := db.Pool.QueryRow(ctx, `UPDATE console_users SET
				failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END,
				locked_until  = CASE WHEN failed_logins + 1 >= $2 THEN $3::timestamptz ELSE locked_until END
			WHERE id = $1 RETURNING locked_until IS NOT NULL AND locked_until > $4`,
			u.ID, MaxFailedLogins, now.Add(LockDuration), now).Scan(&locked)
		if err != nil {
			return nil, fmt.Errorf("count failed login of %s: %w", email, err)
		}
		if locked {
			return nil, ErrAccountLocked
		}
		return nil, ErrWrongLogin
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE console_users SET failed_logins = 0, locked_until = NULL,
		last_login_at = $2 WHERE id = $1`, u.ID, now); err != nil {
		return nil, fmt.Errorf("record login of %s: %w", email, err)
	}
	u.FailedLogins, u.LockedUntil, u.LastLoginAt = 0, nil, &now
	return &u, nil
}

// FindUserByEmail returns the console user with email (any case), or ENOTFOUND.
func (db *DB) FindUserByEmail(ctx context.Context, email string) (*ConsoleUser, error) {
	var u ConsoleUser
	err := db.Pool.QueryRow(ctx, `SELECT id, email, role, failed_logins, locked_until, created_at, last_login_at
		FROM console_users WHERE lower(email) = lower($1)`, strings.TrimSpace(email)).
		Scan(&u.ID, &u.Email, &u.Role, &u.FailedLogins, &u.LockedUntil, &u.CreatedAt, &u.LastLoginAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENOTFOUND, "no console user %s", email)
	}
	if err != nil {
		return nil, fmt.Errorf("find console user %s: %w", email, err)
	}
	return &u, nil
}

// RandomToken is 256 random bits, URL-safe (session ids, form tokens).
func RandomToken() (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(raw[:]), nil
}

func sessionHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateSession starts a session for user userID and returns its token (for the cookie; only its
// hash is stored) and the session. It also removes every ended session, so that sessions nobody
// logged out of do not pile up (no job needed: logins are rare, and the expiry index makes it
// cheap).
func (db *DB) CreateSession(ctx context.Context, userID int64) (string, *ConsoleSession, error) {
	if _, err := db.DeleteExpiredSessions(ctx); err != nil {
		return "", nil, err
	}
	token, err := RandomToken()
	if err != nil {
		return "", nil, err
	}
	csrf, err := RandomToken()
	if err != nil {
		return "", nil, err
	}
	now := db.Now()
	s := &ConsoleSession{CSRF: csrf, CreatedAt: now, LastSeenAt: now, ExpiresAt: sessionExpiry(now, now)}
	err = db.Pool.QueryRow(ctx, `WITH s AS (
			INSERT INTO console_sessions (id_hash, user_id, csrf, created_at, last_seen_at, expires_at)
			VALUES ($1, $2, $3, $4, $4, $5) RETURNING user_id)
		SELECT u.id, u.email, u.role, u.failed_logins, u.locked_until, u.created_at, u.last_login_at
		FROM s JOIN console_users u ON u.id = s.user_id`,
		sessionHash(token), userID, csrf, now, s.ExpiresAt).
		Scan(&s.User.ID, &s.User.Email, &s.User.Role, &s.User.FailedLogins, &s.User.LockedUntil,
			&s.User.CreatedAt, &s.User.LastLoginAt)
	if err != nil {
		return "", nil, fmt.Errorf("create session for console user %d: %w", userID, err)
	}
	return token, s, nil
}

// sessionExpiry is when a session created at created and last used at seen ends.
func sessionExpiry(created, seen time.Time) time.Time {
	idle, absolute := seen.Add(SessionIdle), created.Add(SessionLifetime)
	if idle.Before(absolute) {
		return idle
	}
	return absolute
}

// LookupSession returns the session of token with its user: ErrNoSession for an unknown token or
// a disabled user's, ErrSessionExpired (and the session is deleted) for one that has ended. Using
// a session moves its idle expiry forward, writing at most once every minute.
func (db *DB) LookupSession(ctx context.Context, token string) (*ConsoleSession, error) {
	if token == "" {
		return nil, ErrNoSession
	}
	hash := sessionHash(token)
	var s ConsoleSession
	err := db.Pool.QueryRow(ctx, `SELECT s.csrf, s.created_at, s.last_seen_at, s.expires_at,
			u.id, u.email, u.role, u.failed_logins, u.locked_until, u.created_at, u.last_login_at
		FROM console_sessions s JOIN console_users u ON u.id = s.user_id
		WHERE s.id_hash = $1 AND u.disabled_at IS NULL`, hash).
		Scan(&s.CSRF, &s.CreatedAt, &s.LastSeenAt, &s.ExpiresAt,
			&s.User.ID, &s.User.Email, &s.User.Role, &s.User.FailedLogins, &s.User.LockedUntil,
			&s.User.CreatedAt, &s.User.LastLoginAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("look up session: %w", err)
	}
	now := db.Now()
	if !now.Before(s.ExpiresAt) {
		if _, err := db.Pool.Exec(ctx, `DELETE FROM console_sessions WHERE id_hash = $1`, hash); err != nil {
			return nil, fmt.Errorf("delete expired session: %w", err)
		}
		return nil, ErrSessionExpired
	}
	if now.Sub(s.LastSeenAt) >= sessionSlide {
		s.LastSeenAt, s.ExpiresAt = now, sessionExpiry(s.CreatedAt, now)
		if _, err := db.Pool.Exec(ctx, `UPDATE console_sessions SET last_seen_at = $2, expires_at = $3
			WHERE id_hash = $1`, hash, s.LastSeenAt, s.ExpiresAt); err != nil {
			return nil, fmt.Errorf("touch session: %w", err)
		}
	}
	return &s, nil
}

// DeleteSession ends the session of token (logout); an unknown token is no error.
func (db *DB) DeleteSession(ctx context.Context, token string) error {
	if _, err := db.Pool.Exec(ctx, `DELETE FROM console_sessions WHERE id_hash = $1`, sessionHash(token)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes ended sessions; it returns how many.
func (db *DB) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	tag, err := db.Pool.Exec(ctx, `DELETE FROM console_sessions WHERE expires_at <= $1`, db.Now())
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
