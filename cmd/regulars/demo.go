package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/regulars/regulars/jobs/metrics"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/demo"
)

// demo runs `regulars demo`: fill the database with demo data and say what went in.
func (env *environment) demo(ctx context.Context, args []string) error {
	var opts demo.Options
	if err := env.parse("demo", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&opts.Force, "force", false, "add the demo data even though the database already has stores (reuses the demo stores; a rerun on another day needs another --seed)")
		fs.Uint64Var(&opts.Seed, "seed", 1, "random seed; the same seed gives the same data")
		fs.IntVar(&opts.Members, "members", 2000, "number of club members")
	}); err != nil {
		return err
	}
	db, err := env.openDatabase(ctx, env.quietLogger())
	if err != nil {
		return err
	}
	defer db.Close()
	sum, err := demo.Fill(ctx, db.DB, opts)
	if errors.Is(err, demo.ErrNotEmpty) {
		return errors.New("demo: " + err.Error())
	}
	if err != nil {
		return err
	}
	printSummary(env.stdout, sum)
	if err := env.demoSnapshots(ctx, db.DB, sum.To); err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, "Make API keys with: regulars apikey create --role admin --name me")
	return nil
}

// demoSnapshotMonths is how many monthly metrics snapshots the demo computes before today's,
// so that the console's charts over time have a history from the first look.
const demoSnapshotMonths = 6

// demoSnapshots computes the segment metrics as of the first of each of the last
// demoSnapshotMonths months and as of to, as the nightly job would have.
func (env *environment) demoSnapshots(ctx context.Context, db *models.DB, to time.Time) error {
	opts, err := env.cfg.metricsOptions()
	if err != nil {
		return err
	}
	start := time.Now()
	first := time.Date(to.Year(), to.Month(), 1, 0, 0, 0, 0, time.UTC)
	var dates []time.Time
	for i := demoSnapshotMonths; i >= 1; i-- {
		dates = append(dates, first.AddDate(0, -i, 0))
	}
	dates = append(dates, to)
	for _, d := range dates {
		opts.AsOf = d
		if _, err := metrics.Compute(ctx, db, opts); err != nil {
			return fmt.Errorf("demo: metrics as of %s: %w", d.Format(time.DateOnly), err)
		}
	}
	fmt.Fprintf(env.stdout, "Segment metrics computed as of %d dates (%s to %s) in %.1fs.\n", len(dates),
		dates[0].Format(time.DateOnly), to.Format(time.DateOnly), time.Since(start).Seconds())
	return nil
}

// fillDemo is `serve --demo`: on an empty database it loads the demo and prints tokens to try
// the API with; on a database with stores it only says so, since tokens are shown once.
func (env *environment) fillDemo(ctx context.Context, db *models.DB, force bool) error {
	sum, err := demo.Fill(ctx, db, demo.Options{Force: force})
	if errors.Is(err, demo.ErrNotEmpty) {
		fmt.Fprintln(env.stdout, "demo: the database already has stores, so no demo data was added; "+
			"tokens are shown only once, make new ones with: regulars apikey create --role register --store oslo-1 --name till-1")
		return nil
	}
	if err != nil {
		return err
	}
	printSummary(env.stdout, sum)
	if err := env.demoSnapshots(ctx, db, sum.To); err != nil {
		return err
	}
	admin, err := db.CreateAPIKey(ctx, models.RoleAdmin, "", "demo admin")
	if err != nil {
		return fmt.Errorf("demo: create admin key: %w", err)
	}
	marketer, err := db.CreateAPIKey(ctx, models.RoleMarketer, "", "demo marketer")
	if err != nil {
		return fmt.Errorf("demo: create marketer key: %w", err)
	}
	register, err := db.CreateAPIKey(ctx, models.RoleRegister, "oslo-1", "demo oslo-1 till-1")
	if err != nil {
		return fmt.Errorf("demo: create register key: %w", err)
	}
	w := env.stdout
	fmt.Fprintf(w, `
Demo API tokens (shown once; make more with: regulars apikey create):
  admin:             %s
  marketer:          %s
  register (oslo-1): %s

Try it:
  export REGISTER_TOKEN=%s
  curl -s -X POST %s/api/v1/transactions \
    -H "Authorization: Bearer $REGISTER_TOKEN" -H 'Content-Type: application/json' \
    -d '{"id": "T-0001", "store": "oslo-1", "register": "till-1", "kind": "sale",
         "occurred_at": "%s", "amount": 12950, "currency": "NOK",
         "items": [{"sku": "LP-1001", "qty": 1, "unit_price": 12950}]}'

Join the club as a customer: %s/join?store=oslo-1 (mail goes to %s)

`, admin, marketer, register, register, env.cfg.BaseURL, sum.To.In(oslo()).Format(time.RFC3339),
		env.cfg.BaseURL, mailDestination(env.cfg))
	return nil
}

func printSummary(w io.Writer, s *demo.Summary) {
	fmt.Fprintf(w, "Demo data loaded in %.1fs: %d stores (%s), %s members (%s with confirmed marketing consent),\n"+
		"%s transactions from %s to %s: %s sales (%s anonymous, %s on cards nobody registered), %s refunds, %s receipt lines.\n",
		s.Took.Seconds(), len(s.Stores), strings.Join(s.Stores, ", "), thousands(s.Members), thousands(s.ConsentedMembers),
		thousands(s.Transactions), s.From.Format("2006-01-02"), s.To.Format("2006-01-02"), thousands(s.Sales),
		thousands(s.AnonymousSales), thousands(s.UnregisteredCardSales), thousands(s.Refunds), thousands(s.Items))
	if len(s.Flows) > 0 {
		fmt.Fprintf(w, "Flows %s, active for the last %d days: %s entries (GET /api/v1/flows, /console/flows).\n",
			strings.Join(s.Flows, ", "), demo.FlowHistoryDays, thousands(s.FlowEntries))
	}
	if len(s.Rewards) > 0 {
		fmt.Fprintf(w, "Rewards %s on a stamp card for the last %d days: %s members with points, %s redemptions, %s vouchers;\n"+
			"%s members can afford a free coffee, such as card %s (GET /api/v1/members/lookup?card=%s).\n",
			strings.Join(s.Rewards, ", "), demo.RewardHistoryDays, thousands(s.PointsMembers), thousands(s.Redemptions),
			thousands(s.Vouchers), thousands(s.CoffeeMembers), s.CoffeeCard, s.CoffeeCard)
	}
}

// demoTimezone is the demo stores' zone, and the installation's under serve --demo when
// REGULARS_TIMEZONE is not set.
const demoTimezone = "Europe/Oslo"

// oslo is the demo stores' zone; the binary embeds tzdata, so the fallback is only a guard.
func oslo() *time.Location {
	if loc, err := time.LoadLocation(demoTimezone); err == nil {
		return loc
	}
	return time.UTC
}

// mailDestination says where club and campaign mail goes: the SMTP relay or the outbox folder.
func mailDestination(cfg config) string {
	if cfg.SMTPURL != "" {
		return "the SMTP relay of REGULARS_SMTP_URL"
	}
	return "the outbox folder " + filepath.Join(cfg.DataDir, "outbox")
}
