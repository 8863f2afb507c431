package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/regulars/regulars/campaigns/mailer"
)

// outbox runs `regulars outbox [-n N]`: the newest mails in $REGULARS_DATA_DIR/outbox, newest
// first, with the links of their bodies decoded, so that a confirmation link can be opened
// without reading quoted-printable (where every "=" is "=3D").
func (env *environment) outbox(_ context.Context, args []string) error {
	n := 10
	if err := env.parse("outbox", args, func(flags *flag.FlagSet) {
		flags.IntVar(&n, "n", n, "how many mails, newest first")
	}); err != nil {
		return err
	}
	if n < 1 {
		return fmt.Errorf("regulars outbox: -n must be at least 1, not %d", n)
	}
	zone, err := time.LoadLocation(env.cfg.Timezone)
	if err != nil {
		zone = time.UTC
	}
	dir := filepath.Join(env.cfg.DataDir, "outbox")
	mails, err := mailer.ReadOutbox(dir, n)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no outbox folder at %s: mail is written there when REGULARS_SMTP_URL is empty, once something has been sent (or set REGULARS_DATA_DIR to the server's)", dir)
	}
	if err != nil {
		return err
	}
	if len(mails) == 0 {
		fmt.Fprintf(env.stdout, "no mail in %s yet\n", dir)
		return nil
	}
	for i, m := range mails {
		if i > 0 {
			fmt.Fprintln(env.stdout)
		}
		fmt.Fprintf(env.stdout, "%s  to %s  %q\n", m.Date.In(zone).Format("2006-01-02 15:04:05 MST"), m.To, m.Subject)
		for _, l := range m.Links {
			fmt.Fprintf(env.stdout, "  %s\n", l)
		}
		fmt.Fprintf(env.stdout, "  (%s)\n", filepath.Base(m.File))
	}
	return nil
}
