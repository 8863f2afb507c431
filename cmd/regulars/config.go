package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// config is every setting, from REGULARS_* variables, overridable by flags.
type config struct {
	DatabaseURL string
	HTTPAddr    string
	BaseURL     string
	SMTPURL     string
	MailFrom    string
	Secret      string
	DataDir     string
	Timezone    string
	MaxAmount   int64
	DBMaxConns  int32
	LogFormat   string
	LogLevel    string
	PprofAddr   string
}

// loadConfig reads the environment through getenv.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		DatabaseURL: getenv("REGULARS_DATABASE_URL"),
		HTTPAddr:    or(getenv("REGULARS_HTTP_ADDR"), ":8080"),
		BaseURL:     getenv("REGULARS_BASE_URL"),
		SMTPURL:     getenv("REGULARS_SMTP_URL"),
		MailFrom:    or(getenv("REGULARS_MAIL_FROM"), "Regulars <club@localhost>"),
		Secret:      getenv("REGULARS_SECRET"),
		DataDir:     or(getenv("REGULARS_DATA_DIR"), "./data"),
		Timezone:    or(getenv("REGULARS_TIMEZONE"), "UTC"),
		MaxAmount:   100_000_000,
		// 16, not more: commits wait on the WAL flush, and 16 connections already group them;
		// more only add queueing inside PostgreSQL (p99 45 ms at 32 vs 25-30 ms at 16 for 32
		// registers on 2 cores, same throughput; docs/benchmarks.md).
		DBMaxConns: 16,
		LogFormat:  getenv("REGULARS_LOG_FORMAT"),
		LogLevel:   or(getenv("REGULARS_LOG_LEVEL"), "info"),
		PprofAddr:  getenv("REGULARS_PPROF_ADDR"),
	}
	if v := getenv("REGULARS_MAX_AMOUNT"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return c, fmt.Errorf("REGULARS_MAX_AMOUNT must be a positive integer of minor units, not %q", v)
		}
		c.MaxAmount = n
	}
	if v := getenv("REGULARS_DB_MAX_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 1000 {
			return c, fmt.Errorf("REGULARS_DB_MAX_CONNS must be a positive integer, not %q", v)
		}
		c.DBMaxConns = int32(n)
	}
	return c, nil
}

// flags registers the flags every command shares; they override the environment.
func (c *config) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostgreSQL URL (REGULARS_DATABASE_URL); empty starts a private cluster under the data dir")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data directory (REGULARS_DATA_DIR)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (REGULARS_LOG_LEVEL)")
}

// validate checks the settings that can be checked without side effects.
func (c *config) validate() error {
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		return fmt.Errorf("REGULARS_TIMEZONE %q is not an IANA time zone", c.Timezone)
	}
	if c.BaseURL == "" {
		host := c.HTTPAddr
		if strings.HasPrefix(host, ":") {
			host = "localhost" + host
		}
		c.BaseURL = "http://" + host
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	return nil
}

// ensureSecret generates the HMAC secret on first use and keeps it in the data dir, so that
// signed links stay valid across restarts.
func (c *config) ensureSecret() error {
	if c.Secret != "" {
		return nil
	}
	path := filepath.Join(c.DataDir, "secret")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		c.Secret = strings.TrimSpace(string(b))
		return nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return err
	}
	c.Secret = hex.EncodeToString(raw[:])
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(c.Secret+"\n"), 0o600)
}

func (c *config) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationsInMillis}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// durationsInMillis writes durations as milliseconds, which people and log tools read more
// easily than nanoseconds.
func durationsInMillis(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key+"_ms", float64(a.Value.Duration().Microseconds())/1000)
	}
	return a
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
