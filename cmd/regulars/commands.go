package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/regulars/regulars/campaigns/dispatch"
	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/flows"
	"github.com/regulars/regulars/handlers"
	"github.com/regulars/regulars/jobs"
	"github.com/regulars/regulars/jobs/clubmail"
	"github.com/regulars/regulars/jobs/metrics"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/embeddedpg"
	"github.com/regulars/regulars/templates"
)

// database is an open database and, on the embedded default, the cluster under it.
type database struct {
	*models.DB
	cluster *embeddedpg.Cluster
}

// Close closes the pool, then stops the embedded cluster if this process started it.
func (d *database) Close() error {
	d.DB.Close()
	return d.cluster.Stop()
}

// openDatabase connects to REGULARS_DATABASE_URL, or starts (or joins) the private cluster under
// the data dir, and brings the schema up to date.
func (env *environment) openDatabase(ctx context.Context, log *slog.Logger) (*database, error) {
	url := env.cfg.DatabaseURL
	var cluster *embeddedpg.Cluster
	if url == "" {
		var err error
		cluster, err = embeddedpg.Start(ctx, embeddedpg.Options{Dir: filepath.Join(env.cfg.DataDir, "postgres"), Logger: log})
		if err != nil {
			return nil, err
		}
		if err := cluster.EnsureDatabase(ctx, "regulars"); err != nil {
			_ = cluster.Stop()
			return nil, fmt.Errorf("embedded postgres: create database: %w", err)
		}
		url = cluster.URL("regulars")
	}
	db, err := models.Open(ctx, url, env.cfg.DBMaxConns)
	if err != nil {
		_ = cluster.Stop()
		return nil, explainDatabaseError(err)
	}
	db.MaxAmount = env.cfg.MaxAmount
	db.Timezone, _ = time.LoadLocation(env.cfg.Timezone) // validated by config; the join funnel counts days there
	if err := db.Migrate(ctx, log); err != nil {
		db.Close()
		_ = cluster.Stop()
		return nil, err
	}
	return &database{DB: db, cluster: cluster}, nil
}

func (env *environment) serve(ctx context.Context, args []string) error {
	var demo bool
	if err := env.parse("serve", args, func(fs *flag.FlagSet) {
		fs.StringVar(&env.cfg.HTTPAddr, "http-addr", env.cfg.HTTPAddr, "listen address (REGULARS_HTTP_ADDR)")
		fs.BoolVar(&demo, "demo", false, "fill an empty database with demo data first and print API tokens for trying it")
	}); err != nil {
		return err
	}
	if demo && !env.cfg.TimezoneGiven {
		// The demo's stores are all in Oslo: with no zone of its own the installation takes
		// theirs, so "today", the nightly jobs and the console's schedule default are the shops'.
		env.cfg.Timezone = demoTimezone
	}
	log := env.cfg.logger(env.stderr)
	// Checked before anything starts, so a bad key stops serve with one line, not a mail later.
	dkim, err := env.cfg.dkimOptions()
	if err != nil {
		return err
	}
	if err := env.cfg.ensureSecret(); err != nil {
		return err
	}
	db, err := env.openDatabase(ctx, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error("close database", "err", err)
		}
	}()
	// API keys' last_used_at: kept in memory by each request's authentication and written here
	// in one statement every models.KeyUsageFlushEvery, and once more at shutdown (deferred
	// after the database's Close, so it runs before it, after the HTTP server has stopped).
	keyUsageCtx, stopKeyUsage := context.WithCancel(context.WithoutCancel(ctx))
	keyUsageDone := make(chan struct{})
	go func() {
		defer close(keyUsageDone)
		db.RunKeyUsage(keyUsageCtx, 0, log)
	}()
	defer func() {
		stopKeyUsage()
		<-keyUsageDone
	}()
	if demo {
		if err := env.fillDemo(ctx, db.DB, false); err != nil {
			return err
		}
		if err := env.demoConsoleAdmin(ctx, db.DB); err != nil {
			return err
		}
	}

	if env.cfg.PprofAddr != "" {
		stopPprof, err := startPprof(env.cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	metricsOpts, err := env.cfg.metricsOptions()
	if err != nil {
		return err
	}

	// Every page, console and mail template is parsed here, once: a broken one stops the start.
	tmpl, err := templates.Load()
	if err != nil {
		return err
	}

	// Club mail: queued by the club pages in the same transaction as the change that calls for
	// it, sent from here; every replica drains the queue (the claim skips rows others hold).
	mailSender, err := mailer.New(env.cfg.SMTPURL, filepath.Join(env.cfg.DataDir, "outbox"), dkim...)
	if err != nil {
		return err
	}
	defer mailSender.Close()
	clubMail := &clubmail.Sender{DB: db.DB, Mail: mailSender, From: env.cfg.MailFrom, BaseURL: env.cfg.BaseURL,
		Secret: []byte(env.cfg.Secret), ConfirmTTL: env.cfg.confirmTTL(), Location: metricsOpts.Timezone, Log: log, Templates: tmpl}
	clubMailCtx, stopClubMail := context.WithCancel(ctx)
	clubMailDone := make(chan struct{})
	go func() {
		defer close(clubMailDone)
		clubMail.Run(clubMailCtx)
	}()
	// Deferred after the mailer's Close, so it runs first: the sender stops before the mailer.
	defer func() {
		stopClubMail()
		<-clubMailDone
	}()

	// Campaigns: every replica runs a dispatcher (creates due runs, snapshots recipients) and a
	// sender (REGULARS_SEND_CONCURRENCY workers, one pooled SMTP connection each, REGULARS_SEND_RATE
	// mails a second); they share the work through row locks (campaigns/dispatch). The sender's
	// mailer does not retry by itself: failed mails are rescheduled, so none stays claimed long.
	campaignMail, err := mailer.New(env.cfg.SMTPURL, filepath.Join(env.cfg.DataDir, "outbox"),
		append([]mailer.Option{mailer.WithPoolSize(env.cfg.SendConcurrency), mailer.WithRetry(1, 0)}, dkim...)...)
	if err != nil {
		return err
	}
	defer campaignMail.Close()
	dispatcher := &dispatch.Dispatcher{DB: db.DB, Log: log}
	campaignSender := &dispatch.Sender{DB: db.DB, Mail: campaignMail, BaseURL: env.cfg.BaseURL,
		Secret: []byte(env.cfg.Secret), DefaultFrom: env.cfg.MailFrom, Log: log,
		Concurrency: env.cfg.SendConcurrency, Rate: env.cfg.SendRate}
	dispatchCtx, stopDispatch := context.WithCancel(ctx)
	var dispatchDone sync.WaitGroup
	dispatchDone.Go(func() { dispatcher.Run(dispatchCtx) })
	dispatchDone.Go(func() { campaignSender.Run(dispatchCtx) })
	// Flows: every replica runs the engine; a per-flow advisory lock gives each flow's tick to
	// one of them. Flow mail is queued as campaign recipients, so the sender above sends it.
	flowEngine := &flows.Engine{DB: db.DB, Log: log, MailCap: env.cfg.MailCap,
		QuietStart: env.cfg.QuietStart, QuietEnd: env.cfg.QuietEnd}
	dispatchDone.Go(func() { flowEngine.Run(dispatchCtx) })
	// Deferred after the campaign mailer's Close, so it runs first.
	defer func() {
		stopDispatch()
		dispatchDone.Wait()
	}()

	scheduler, err := jobs.NewScheduler(log, env.cfg.Timezone)
	if err != nil {
		return err
	}
	if err := scheduler.Add("@every 5m", jobs.LinkUnmatched{DB: db.DB, Log: log}); err != nil {
		return err
	}
	// Every replica schedules the metrics; the job's advisory lock lets one of them run it.
	if err := scheduler.Add(env.cfg.MetricsSchedule, metrics.Job{DB: db.DB, Log: log, Options: metricsOpts}); err != nil {
		return err
	}
	// Reward points expire nightly, oldest first; every replica schedules it, the job's lock
	// makes a second run at the same time a no-op.
	if err := scheduler.Add("40 3 * * *", jobs.ExpirePoints{DB: db.DB, Log: log}); err != nil {
		return err
	}
	if err := scheduler.Add("@hourly", clubmail.Purge{DB: db.DB, TTL: env.cfg.confirmTTL(), Log: log}); err != nil {
		return err
	}
	if err := scheduler.Add("@hourly", jobs.PurgeProviderEvents{DB: db.DB, Log: log}); err != nil {
		return err
	}
	// The segment lists show cached counts; every replica schedules the count, and a segment
	// another replica has just counted is skipped (jobs.CountSegments).
	if err := scheduler.Add("@every "+jobs.SegmentCountsEvery.String(), jobs.CountSegments{DB: db.DB, Log: log}); err != nil {
		return err
	}
	scheduler.Start()
	defer scheduler.Stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := handlers.New(handlers.Config{
		DB: db.DB, Log: log, Registry: reg,
		Timezone: metricsOpts.Timezone, StatementTimeout: env.cfg.StatementTimeout, Metrics: metricsOpts,
		Club: handlers.ClubOptions{Secret: []byte(env.cfg.Secret), BaseURL: env.cfg.BaseURL,
			ConfirmTTL: env.cfg.confirmTTL(), JoinRate: env.cfg.JoinRate, MailQueued: clubMail.Kick},
		Campaigns: handlers.CampaignOptions{Mail: mailSender, BaseURL: env.cfg.BaseURL, From: env.cfg.MailFrom, Shop: env.cfg.Shop},
		Tracking:  handlers.TrackingOptions{AttributionDays: env.cfg.AttributionDays, CostPerMail: env.cfg.CostPerMail},
		Security:  handlers.SecurityOptions{TrustedProxies: env.cfg.TrustedProxies, HSTS: env.cfg.httpsBaseURL()},
		Templates: tmpl,
		Webhooks:  env.cfg.Webhooks,
	})
	if err != nil {
		return err
	}
	err = handlers.Serve(ctx, env.cfg.HTTPAddr, srv, 30*time.Second, log, func(addr string) {
		log.Info("regulars listening", "addr", addr, "base_url", env.cfg.BaseURL)
	})
	return explainListenError(err, env.cfg.HTTPAddr)
}

func (env *environment) migrate(ctx context.Context, args []string) error {
	if err := env.parse("migrate", args, nil); err != nil {
		return err
	}
	log := env.cfg.logger(env.stderr)
	db, err := env.openDatabase(ctx, log)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, "schema is up to date")
	return db.Close()
}

// apikey dispatches the apikey subcommands.
func (env *environment) apikey(ctx context.Context, args []string) error {
	const usage = "usage: regulars apikey create --role ROLE [--store CODE] --name NAME [--expires DURATION] | list | revoke ID"
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "create":
		return env.apikeyCreate(ctx, args[1:])
	case "list":
		return env.apikeyList(ctx, args[1:])
	case "revoke":
		return env.apikeyRevoke(ctx, args[1:])
	default:
		return errors.New(usage)
	}
}

func (env *environment) apikeyCreate(ctx context.Context, args []string) error {
	var role, store, name string
	var expires time.Duration
	if err := env.parse("apikey create", args, func(fs *flag.FlagSet) {
		fs.StringVar(&role, "role", "", "register, marketer, admin or webhook (a mail provider: the webhook endpoints only)")
		fs.StringVar(&store, "store", "", "store code (required for register)")
		fs.StringVar(&name, "name", "", "who or what uses the key, e.g. oslo-1 till 2")
		fs.DurationVar(&expires, "expires", 0, "refuse the key after this long, e.g. 720h (default: never)")
	}); err != nil {
		return err
	}
	if expires < 0 {
		return errors.New("apikey create: --expires must be positive")
	}
	db, err := env.openDatabase(ctx, env.quietLogger())
	if err != nil {
		return err
	}
	defer db.Close()
	var until *time.Time
	if expires > 0 {
		until = new(db.Now().Add(expires))
	}
	token, err := db.CreateAPIKeyUntil(ctx, role, store, name, until)
	if err != nil {
		return domainError("", err)
	}
	fmt.Fprintln(env.stdout, token)
	return nil
}

// apikeyList prints every key, one a line: id, role, store, name, then its dates; never a token.
func (env *environment) apikeyList(ctx context.Context, args []string) error {
	if err := env.parse("apikey list", args, nil); err != nil {
		return err
	}
	db, err := env.openDatabase(ctx, env.quietLogger())
	if err != nil {
		return err
	}
	defer db.Close()
	keys, err := db.FindAPIKeys(ctx)
	if err != nil {
		return err
	}
	at := func(label string, t *time.Time) string {
		if t == nil {
			return ""
		}
		return " " + label + "=" + t.UTC().Format(time.RFC3339)
	}
	for _, k := range keys {
		store := "-"
		if k.Store != nil {
			store = *k.Store
		}
		fmt.Fprintf(env.stdout, "%d\t%s\t%s\t%q\tcreated=%s%s%s%s\n", k.ID, k.Role, store, k.Name,
			k.CreatedAt.UTC().Format(time.RFC3339), at("last_used", k.LastUsedAt), at("expires", k.ExpiresAt), at("revoked", k.RevokedAt))
	}
	return nil
}

// apikeyRevoke revokes the key ID: every serve process refuses it within a couple of seconds.
func (env *environment) apikeyRevoke(ctx context.Context, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[len(args)-1], "-") {
		return errors.New("usage: regulars apikey revoke ID (the id from regulars apikey list)")
	}
	last := args[len(args)-1]
	id, err := strconv.ParseInt(last, 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("apikey revoke: %q is not a key id (see regulars apikey list)", last)
	}
	if err := env.parse("apikey revoke", args[:len(args)-1], nil); err != nil {
		return err
	}
	db, err := env.openDatabase(ctx, env.quietLogger())
	if err != nil {
		return err
	}
	defer db.Close()
	k, err := db.RevokeAPIKey(ctx, id)
	if err != nil {
		return domainError("apikey revoke: ", err)
	}
	fmt.Fprintf(env.stdout, "revoked key %d (%s, %s) at %s; every server refuses it within %v\n",
		k.ID, k.Name, k.Role, k.RevokedAt.UTC().Format(time.RFC3339), 2*models.RevocationCheckEvery)
	return nil
}

// domainError turns a models.Error into a plain one for the command line, with a prefix.
func domainError(prefix string, err error) error {
	var e *models.Error
	if errors.As(err, &e) {
		return errors.New(prefix + e.Error())
	}
	return err
}

// quietLogger is for commands whose stdout is their answer: only warnings, on stderr.
func (env *environment) quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
