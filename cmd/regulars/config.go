package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	netmail "net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/dispatch"
	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/campaigns/providers"
	"github.com/regulars/regulars/campaigns/tracking"
	"github.com/regulars/regulars/flows"
	"github.com/regulars/regulars/handlers"
	"github.com/regulars/regulars/jobs/metrics"
	"github.com/robfig/cron/v3"
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

	// StatementTimeout limits every database statement run for an HTTP request
	// (REGULARS_STATEMENT_TIMEOUT); jobs are not limited.
	StatementTimeout time.Duration

	// The segment metrics job (jobs/metrics): its cron schedule in Timezone and its settings.
	MetricsSchedule         string
	MetricsWindowDays       int
	MetricsChurnDays        int
	MetricsLifespanCapYears float64
	// The model-based predictions: horizon H in days and the monthly discount rate of clv_predicted.
	MetricsHorizonDays         int
	MetricsMonthlyDiscountRate float64

	// The club: confirmation links expire, and unconfirmed sign-ups are purged, after
	// ConfirmDays; one IP may submit the join form JoinRate times a minute.
	ConfirmDays int
	JoinRate    int

	// Campaign statistics: purchases within AttributionDays after a mail count for it; one
	// mail costs CostPerMail minor units (0: unknown, no ROI).
	AttributionDays int
	CostPerMail     int64

	// Campaign sending, per serve process: SendConcurrency workers (and SMTP connections),
	// at most SendRate mails a second (0: unlimited).
	SendConcurrency int
	SendRate        float64

	// Flows: at most MailCap marketing mails per member per 7 days (campaigns counted, 0: no
	// cap); flow mail waits out quiet hours QuietStart–QuietEnd ("HH:MM" in the member's home
	// store's zone; equal: none).
	MailCap              int
	QuietStart, QuietEnd string

	// DKIM: when both are set, every mail serve sends is signed with the PEM private key in
	// DKIMKeyFile for the domain of MailFrom's address, published under DKIMSelector.
	DKIMKeyFile  string
	DKIMSelector string

	// Webhooks are the mail providers' webhook settings (REGULARS_SES_TOPIC_ARNS,
	// REGULARS_SENDGRID_WEBHOOK_KEY, REGULARS_MAILGUN_SIGNING_KEY, REGULARS_POSTMARK_WEBHOOK_AUTH);
	// a provider whose setting is empty has no endpoint (404).
	Webhooks providers.Settings

	// TrustedProxies are the peers whose X-Forwarded-For is believed (REGULARS_TRUSTED_PROXIES,
	// comma-separated CIDRs); none by default, so the peer's address is the client's.
	TrustedProxies []*net.IPNet

	// TimezoneGiven tells that REGULARS_TIMEZONE was set; without it serve --demo takes the demo
	// stores' zone (demoTimezone), so that the console schedules in the shops' time.
	TimezoneGiven bool

	// Shop is what the campaign editor's starter templates show: REGULARS_SHOP_NAME (default:
	// the name in REGULARS_MAIL_FROM), REGULARS_SHOP_COLOR, REGULARS_SHOP_LOGO_URL and
	// REGULARS_SHOP_URL.
	Shop campaigns.Shop
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

		StatementTimeout: 30 * time.Second,

		MetricsSchedule:         or(getenv("REGULARS_METRICS_SCHEDULE"), "15 2 * * *"),
		MetricsWindowDays:       metrics.DefaultWindowDays,
		MetricsChurnDays:        metrics.DefaultChurnPeriodDays,
		MetricsLifespanCapYears: metrics.DefaultLifespanCapYears,

		MetricsHorizonDays:         metrics.DefaultHorizonDays,
		MetricsMonthlyDiscountRate: metrics.DefaultMonthlyDiscountRate,

		ConfirmDays: 7,
		JoinRate:    handlers.DefaultJoinRate,

		AttributionDays: tracking.DefaultAttributionDays,

		SendConcurrency: dispatch.DefaultConcurrency,
		SendRate:        dispatch.DefaultRate,

		MailCap:    flows.DefaultMailCap,
		QuietStart: or(getenv("REGULARS_QUIET_START"), flows.DefaultQuietStart),
		QuietEnd:   or(getenv("REGULARS_QUIET_END"), flows.DefaultQuietEnd),

		DKIMKeyFile:  getenv("REGULARS_DKIM_KEY_FILE"),
		DKIMSelector: getenv("REGULARS_DKIM_SELECTOR"),
	}
	if v := getenv("REGULARS_SEND_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("REGULARS_SEND_CONCURRENCY must be a whole number of workers, not %q", v)
		}
		c.SendConcurrency = n
	}
	if v := getenv("REGULARS_SEND_RATE"); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return c, fmt.Errorf("REGULARS_SEND_RATE must be a number of mails a second (0: unlimited), not %q", v)
		}
		c.SendRate = n
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
	if v := getenv("REGULARS_STATEMENT_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Millisecond || d > 24*time.Hour {
			return c, fmt.Errorf("REGULARS_STATEMENT_TIMEOUT must be a duration from 1ms to 24h such as 30s, not %q", v)
		}
		c.StatementTimeout = d
	}
	for _, d := range []struct {
		name string
		dst  *int
	}{
		{"REGULARS_METRICS_WINDOW_DAYS", &c.MetricsWindowDays},
		{"REGULARS_METRICS_CHURN_DAYS", &c.MetricsChurnDays},
		{"REGULARS_METRICS_HORIZON_DAYS", &c.MetricsHorizonDays},
	} {
		if v := getenv(d.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return c, fmt.Errorf("%s must be a whole number of days, not %q", d.name, v)
			}
			*d.dst = n
		}
	}
	if v := getenv("REGULARS_CONFIRM_DAYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("REGULARS_CONFIRM_DAYS must be a whole number of days, not %q", v)
		}
		c.ConfirmDays = n
	}
	if v := getenv("REGULARS_JOIN_RATE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("REGULARS_JOIN_RATE must be a whole number of submissions a minute, not %q", v)
		}
		c.JoinRate = n
	}
	if v := getenv("REGULARS_MAIL_CAP"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("REGULARS_MAIL_CAP must be a whole number of mails per member per 7 days (0: no cap), not %q", v)
		}
		c.MailCap = n
	}
	if v := getenv("REGULARS_ATTRIBUTION_DAYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("REGULARS_ATTRIBUTION_DAYS must be a whole number of days, not %q", v)
		}
		c.AttributionDays = n
	}
	if v := getenv("REGULARS_COST_PER_MAIL"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return c, fmt.Errorf("REGULARS_COST_PER_MAIL must be a whole number of minor units (0 or more), not %q", v)
		}
		c.CostPerMail = n
	}
	if v := getenv("REGULARS_METRICS_LIFESPAN_CAP_YEARS"); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return c, fmt.Errorf("REGULARS_METRICS_LIFESPAN_CAP_YEARS must be a number of years, not %q", v)
		}
		c.MetricsLifespanCapYears = n
	}
	if v := getenv("REGULARS_METRICS_MONTHLY_DISCOUNT_RATE"); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return c, fmt.Errorf("REGULARS_METRICS_MONTHLY_DISCOUNT_RATE must be a fraction such as 0.01 (1 %% a month), not %q", v)
		}
		c.MetricsMonthlyDiscountRate = n
	}
	for arn := range strings.SplitSeq(getenv("REGULARS_SES_TOPIC_ARNS"), ",") {
		if arn = strings.TrimSpace(arn); arn != "" {
			c.Webhooks.SESTopicARNs = append(c.Webhooks.SESTopicARNs, arn)
		}
	}
	c.Webhooks.SendGridKey = getenv("REGULARS_SENDGRID_WEBHOOK_KEY")
	c.Webhooks.MailgunKey = getenv("REGULARS_MAILGUN_SIGNING_KEY")
	c.Webhooks.PostmarkAuth = getenv("REGULARS_POSTMARK_WEBHOOK_AUTH")
	// A key that cannot be used stops the start with the setting's name, not the first webhook.
	if _, err := providers.New(c.Webhooks); err != nil {
		return c, err
	}
	proxies, err := parseTrustedProxies(getenv("REGULARS_TRUSTED_PROXIES"))
	if err != nil {
		return c, err
	}
	c.TrustedProxies = proxies
	c.TimezoneGiven = getenv("REGULARS_TIMEZONE") != ""
	c.Shop = campaigns.Shop{Name: getenv("REGULARS_SHOP_NAME"), Color: getenv("REGULARS_SHOP_COLOR"),
		LogoURL: getenv("REGULARS_SHOP_LOGO_URL"), URL: getenv("REGULARS_SHOP_URL")}.WithDefaults(c.MailFrom)
	return c, nil
}

// parseTrustedProxies reads REGULARS_TRUSTED_PROXIES: CIDRs separated by commas, or nothing.
func parseTrustedProxies(v string) ([]*net.IPNet, error) {
	var nets []*net.IPNet
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		_, n, err := net.ParseCIDR(part)
		if err != nil {
			return nil, fmt.Errorf("REGULARS_TRUSTED_PROXIES must be CIDRs separated by commas, such as 10.0.0.0/8 or 192.0.2.7/32, not %q", part)
		}
		nets = append(nets, n)
	}
	return nets, nil
}

// flags registers the flags every command shares; they override the environment.
func (c *config) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostgreSQL URL (REGULARS_DATABASE_URL); empty starts a private cluster under the data dir")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data directory (REGULARS_DATA_DIR)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (REGULARS_LOG_LEVEL)")
}

// validate checks the settings that can be checked without side effects.
func (c *config) validate() error {
	if err := c.Shop.Check(); err != nil {
		return err
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		return fmt.Errorf("REGULARS_TIMEZONE %q is not an IANA time zone", c.Timezone)
	}
	if c.Timezone == "Local" {
		// PostgreSQL reads the metrics' time zone too, and has no "Local".
		return fmt.Errorf("REGULARS_TIMEZONE must name a time zone such as Europe/Oslo, not Local")
	}
	if _, err := cron.ParseStandard(c.MetricsSchedule); err != nil {
		return fmt.Errorf("REGULARS_METRICS_SCHEDULE %q is not a cron schedule (e.g. \"15 2 * * *\"): %v", c.MetricsSchedule, err)
	}
	// The same bounds jobs/metrics enforces, checked here so a bad setting stops the start
	// rather than the first nightly run.
	if c.MetricsWindowDays < 1 || c.MetricsWindowDays > 36600 {
		return fmt.Errorf("REGULARS_METRICS_WINDOW_DAYS must be between 1 and 36600, not %d", c.MetricsWindowDays)
	}
	if c.MetricsChurnDays < 1 || c.MetricsChurnDays > 36600 {
		return fmt.Errorf("REGULARS_METRICS_CHURN_DAYS must be between 1 and 36600, not %d", c.MetricsChurnDays)
	}
	if !(c.MetricsLifespanCapYears > 0 && c.MetricsLifespanCapYears <= 1000) {
		return fmt.Errorf("REGULARS_METRICS_LIFESPAN_CAP_YEARS must be greater than 0 and at most 1000, not %g", c.MetricsLifespanCapYears)
	}
	if c.MetricsHorizonDays < 1 || c.MetricsHorizonDays > 36600 {
		return fmt.Errorf("REGULARS_METRICS_HORIZON_DAYS must be between 1 and 36600, not %d", c.MetricsHorizonDays)
	}
	if d := c.MetricsMonthlyDiscountRate; !(d >= 0 && d <= 1) {
		// A fraction, not a percentage: 0.01 is 1 % a month; 1 would be 100 % a month.
		return fmt.Errorf("REGULARS_METRICS_MONTHLY_DISCOUNT_RATE must be a fraction between 0 and 1 (0.01 is 1 %% a month), not %g", d)
	}
	if c.ConfirmDays < 1 || c.ConfirmDays > 365 {
		return fmt.Errorf("REGULARS_CONFIRM_DAYS must be between 1 and 365, not %d", c.ConfirmDays)
	}
	if c.SendConcurrency < 1 || c.SendConcurrency > 256 {
		return fmt.Errorf("REGULARS_SEND_CONCURRENCY must be between 1 and 256, not %d", c.SendConcurrency)
	}
	if !(c.SendRate >= 0 && c.SendRate <= 100000) {
		return fmt.Errorf("REGULARS_SEND_RATE must be between 0 (unlimited) and 100000 mails a second, not %g", c.SendRate)
	}
	if c.JoinRate < 1 || c.JoinRate > 10000 {
		return fmt.Errorf("REGULARS_JOIN_RATE must be between 1 and 10000 submissions a minute, not %d", c.JoinRate)
	}
	if c.MailCap < 0 || c.MailCap > 1000 {
		return fmt.Errorf("REGULARS_MAIL_CAP must be between 0 (no cap) and 1000, not %d", c.MailCap)
	}
	for name, v := range map[string]string{"REGULARS_QUIET_START": c.QuietStart, "REGULARS_QUIET_END": c.QuietEnd} {
		if _, err := time.Parse("15:04", v); err != nil {
			return fmt.Errorf("%s must be a time of day such as 21:00, not %q", name, v)
		}
	}
	if c.AttributionDays < 1 || c.AttributionDays > 365 {
		return fmt.Errorf("REGULARS_ATTRIBUTION_DAYS must be between 1 and 365, not %d", c.AttributionDays)
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

// dkimOptions reads and checks the DKIM key: no options when DKIM is not configured, and one
// error naming the setting at fault when it is configured wrongly.
func (c *config) dkimOptions() ([]mailer.Option, error) {
	if c.DKIMKeyFile == "" && c.DKIMSelector == "" {
		return nil, nil
	}
	if c.DKIMKeyFile == "" || c.DKIMSelector == "" {
		return nil, errors.New("REGULARS_DKIM_KEY_FILE and REGULARS_DKIM_SELECTOR must be set together (or neither, to send unsigned mail)")
	}
	if !dkimSelector.MatchString(c.DKIMSelector) {
		return nil, fmt.Errorf("REGULARS_DKIM_SELECTOR %q is not a DNS label such as \"regulars\" or \"2026-01\"", c.DKIMSelector)
	}
	from, err := netmail.ParseAddress(c.MailFrom)
	if err != nil {
		return nil, fmt.Errorf("REGULARS_MAIL_FROM %q is not an address, so it gives no DKIM domain: %v", c.MailFrom, err)
	}
	domain := ""
	if at := strings.LastIndexByte(from.Address, '@'); at >= 0 {
		domain = strings.ToLower(from.Address[at+1:])
	}
	if domain == "" {
		return nil, fmt.Errorf("REGULARS_MAIL_FROM %q has no domain to sign for with DKIM", c.MailFrom)
	}
	raw, err := os.ReadFile(c.DKIMKeyFile)
	if err != nil {
		return nil, fmt.Errorf("REGULARS_DKIM_KEY_FILE: %v", err)
	}
	key, err := mailer.ParseDKIMKey(raw)
	if err != nil {
		return nil, fmt.Errorf("REGULARS_DKIM_KEY_FILE %s is not a PEM RSA or Ed25519 private key: %v", c.DKIMKeyFile, err)
	}
	return []mailer.Option{mailer.WithDKIM(domain, c.DKIMSelector, key)}, nil
}

// dkimSelector is one DNS label, or several separated by dots.
var dkimSelector = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// metricsOptions are the settings of every metrics run, scheduled or on demand.
func (c *config) metricsOptions() (metrics.Options, error) {
	tz, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return metrics.Options{}, fmt.Errorf("REGULARS_TIMEZONE %q is not an IANA time zone", c.Timezone)
	}
	rate := c.MetricsMonthlyDiscountRate // copied: Options keeps a pointer so that 0 can be asked for
	return metrics.Options{Timezone: tz, WindowDays: c.MetricsWindowDays, ChurnPeriodDays: c.MetricsChurnDays,
		LifespanCapYears: c.MetricsLifespanCapYears, HorizonDays: c.MetricsHorizonDays,
		MonthlyDiscountRate: &rate}, nil
}

// confirmTTL is how long confirmation links work and unconfirmed sign-ups are kept.
func (c *config) confirmTTL() time.Duration {
	return time.Duration(c.ConfirmDays) * 24 * time.Hour
}

// ensureSecret generates the HMAC secret on first use and keeps it in the data dir, so that
// signed links stay valid across restarts.
func (c *config) ensureSecret() error {
	if c.Secret != "" {
		return checkSecret(c.Secret)
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

// httpsBaseURL reports whether the server is reached over https: then browsers get HSTS.
func (c *config) httpsBaseURL() bool {
	return strings.HasPrefix(strings.ToLower(c.BaseURL), "https://")
}

// minSecretBytes is the shortest REGULARS_SECRET accepted: with less, the HMAC key of every
// member link can be guessed offline from one link, and a forged link exports or erases a member.
const minSecretBytes = 32

// checkSecret refuses a secret that is short or the placeholder of an example configuration.
func checkSecret(secret string) error {
	const howTo = "make one with `openssl rand -hex 32`"
	if len(secret) < minSecretBytes {
		return fmt.Errorf("REGULARS_SECRET is %d bytes; it must be at least %d random bytes (%s), or unset to generate one in the data dir",
			len(secret), minSecretBytes, howTo)
	}
	if lower := strings.ToLower(secret); strings.Contains(lower, "change-me") || strings.Contains(lower, "changeme") {
		// The README's compose example once read "change-me-to-32-random-bytes-of-hex": long
		// enough, and public.
		return fmt.Errorf("REGULARS_SECRET is an example placeholder; %s", howTo)
	}
	return nil
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
