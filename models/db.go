// Package models is the storage layer of the core tables (stores, API keys, members and their
// consents, transactions, tiers, the club's mail queue and join funnel, console users, member
// links): rows, the rules that guard them, and their database calls, named by intent.
//
// Where SQL lives: in the package that owns the tables, never in handlers or cmd. Here for the
// core tables; campaigns, campaigns/segments, campaigns/dispatch and campaigns/tracking for
// campaigns, segments, the send queue and tracking; jobs/metrics for the metrics snapshots (the
// cmd/bench* tools and models/demo write their own, for measuring and demo data). A business
// rule that more than one query applies has one home, never a copy: an inlined SQL function
// from migrations/ (net_amount for net spend, in_trailing_year, tier_for_spend and member_tier
// for the club tier; 00016 and 00017 say how to keep them inlined) or one Go fragment that every
// query uses (segments.Mailable). A unique violation is recognised by IsUniqueViolation, by
// constraint name, and nowhere else. The schema is versioned .sql migrations embedded here.
//
// What GORM is for: creating and reading plain rows that carry no SQL rule, stores and API keys
// (create, find by code, id or token hash, list). Everything else is hand-written SQL through the
// pgx pool (Pool), which GORM shares, commented where the planner's choice matters: recording
// transactions, imports, linking, the club flows, set-based work.
//
// Input is checked in Go by the function that stores it and reported as FieldErrors (EINVALID
// with the fields). validator v10 supplies format checks only (validate.go): email addresses,
// ISO 4217 codes and StoreInput's struct tags.
package models

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// DB is the database handle shared by the whole process: one pgx pool, with GORM and
// database/sql on top of the same pool.
type DB struct {
	Pool *pgxpool.Pool
	Gorm *gorm.DB
	sql  *sql.DB
	// Now is the clock; tests may fix it.
	Now func() time.Time
	// MaxAmount is the largest transaction amount accepted, in minor units.
	MaxAmount int64
	// PasswordCost is the bcrypt cost of new console passwords; 0 means PasswordCost. Tests set
	// bcrypt's minimum: a hash at cost 12 takes seconds under the race detector.
	PasswordCost int
	// Timezone is REGULARS_TIMEZONE: the join funnel and the tier rule count days there. nil
	// means UTC.
	Timezone *time.Location

	stores *storeCache
	keys   *keyCache
	tills  tillCommitter // group commit of POST /transactions
}

// ZoneName is the name of REGULARS_TIMEZONE ("UTC" when unset), as the SQL rules that count
// calendar days (in_trailing_year, member_tier) take it.
func (db *DB) ZoneName() string { return db.location().String() }

// location is REGULARS_TIMEZONE, UTC when it is not set.
func (db *DB) location() *time.Location {
	if db.Timezone == nil {
		return time.UTC
	}
	return db.Timezone
}

// Open connects to the database at url. maxConns 0 keeps pgx's default.
func Open(ctx context.Context, url string, maxConns int32) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cancelOnServer(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	gdb, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open gorm: %w", err)
	}
	return &DB{
		Pool: pool, Gorm: gdb, sql: sqlDB, Now: time.Now, MaxAmount: 100_000_000,
		stores: newStoreCache(), keys: newKeyCache(),
	}, nil
}

// DefaultStatementTimeout is the request statement limit when handlers.Config.StatementTimeout
// is 0 (serve always passes REGULARS_STATEMENT_TIMEOUT, which defaults to the same 30 s).
const DefaultStatementTimeout = 30 * time.Second

// cancelGrace is how long a query whose context ended may take to stop after the cancel request
// before its connection is closed. A backend answers a cancel within milliseconds; the grace only
// matters when the server cannot be reached, and then the request should not hang long.
const cancelGrace = 3 * time.Second

// clientCheckInterval is how often a backend running a long statement checks that its client is
// still connected (client_connection_check_interval, PostgreSQL 14+).
const clientCheckInterval = "5s"

// cancelOnServer makes an ended context stop its statement on the server, not only in Go.
//
// pgx's default handler (v5.12) only sets a deadline on the socket: the Go call returns at once,
// the connection is closed, and a goroutine then sends a cancel request, best effort. Meanwhile
// the pool counts the slot free and may open a new connection, a new backend, beside the one
// still running the statement, and every timeout costs a reconnect. With
// CancelRequestContextWatcherHandler the cancel request goes first and the call returns when
// PostgreSQL has stopped the statement (57014), on a connection that stays usable; the socket is
// closed only if the server has not answered within cancelGrace.
//
// Backstop for when this process dies mid-statement (no cancel request is sent then):
// client_connection_check_interval makes the backend notice the closed socket and stop. (A
// network that fails between the two, so that neither arrives, is left to TCP keepalives.)
// There is deliberately no server-side statement_timeout on the pool: the same pool runs the
// jobs that must not be cut (the metrics run, imports, the demo fill, campaign dispatch), and
// the request limit is the context deadline of handlers' statement-deadline middleware, which
// those jobs never see.
func cancelOnServer(cfg *pgxpool.Config) {
	cfg.ConnConfig.BuildContextWatcherHandler = func(conn *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: conn, DeadlineDelay: cancelGrace}
	}
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		// Best effort: a server without the setting (before 14, or on a platform without the
		// kernel support) refuses it, and the connection is still good.
		_, _ = conn.Exec(ctx, "SET client_connection_check_interval = '"+clientCheckInterval+"'")
		return nil
	}
}

// Close releases every connection.
func (db *DB) Close() {
	db.tills.close()
	_ = db.sql.Close()
	db.Pool.Close()
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.Pool.Ping(ctx) }

// Migrate applies every pending migration. A Postgres advisory lock makes it safe when several
// replicas start at once: one migrates, the others wait and then find nothing to do.
func (db *DB) Migrate(ctx context.Context, log *slog.Logger) error {
	p, err := db.migrations()
	if err != nil {
		return err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
	}
	return nil
}

// migrations is the goose provider of the embedded migrations, under the advisory lock.
func (db *DB) migrations() (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300)) // poll each second, up to 5 min
	if err != nil {
		return nil, err
	}
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db.sql, files, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}
