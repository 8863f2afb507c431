// Package models is the storage layer: rows, the rules that guard them, and every database call,
// named by intent. GORM handles plain rows; hand-written SQL (commented) takes the paths where
// set-based work or a single round trip matters: recording transactions, imports, linking.
package models

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

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
	// Timezone is REGULARS_TIMEZONE: the join funnel counts days there. nil means UTC.
	Timezone *time.Location

	stores *storeCache
	keys   *keyCache
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

// Close releases every connection.
func (db *DB) Close() {
	_ = db.sql.Close()
	db.Pool.Close()
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.Pool.Ping(ctx) }

// Migrate applies every pending migration. A Postgres advisory lock makes it safe when several
// replicas start at once: one migrates, the others wait and then find nothing to do.
func (db *DB) Migrate(ctx context.Context, log *slog.Logger) error {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300)) // poll each second, up to 5 min
	if err != nil {
		return err
	}
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db.sql, files, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
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
