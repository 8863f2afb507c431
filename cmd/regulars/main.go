// Command regulars is the Regulars server and its administration commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // store time zones work on machines without zoneinfo (static image)
)

const usage = `Regulars: a loyalty and email-marketing server for shops.

Usage:
  regulars serve [--demo]                 HTTP server and cron jobs
  regulars migrate                        apply schema migrations
  regulars apikey create --role register|marketer|admin|webhook [--store CODE] --name NAME [--expires 720h]
  regulars apikey list                    every key, one a line, its id first (never a token)
  regulars apikey revoke ID               refuse the key on every server within seconds
  regulars user create --email EMAIL --role admin|marketer   console login (password on stdin or prompted)
  regulars import transactions FILE.csv   bulk load transactions
  regulars import members FILE.csv        bulk load club members
  regulars metrics run [--as-of DATE]     compute the segment metrics now
  regulars demo                           fill the database with demo data
  regulars healthcheck                    exit 0 if the local server answers /healthz
  regulars outbox [-n 10]                 the newest mails in $REGULARS_DATA_DIR/outbox, with their links

Settings come from REGULARS_* environment variables; see README.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "regulars:", err)
		}
		os.Exit(1)
	}
}

// run is the whole program; main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	env := &environment{cfg: cfg, stdin: stdin, stdout: stdout, stderr: stderr}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return env.serve(ctx, rest)
	case "migrate":
		return env.migrate(ctx, rest)
	case "apikey":
		return env.apikey(ctx, rest)
	case "user":
		return env.user(ctx, rest)
	case "import":
		if len(rest) == 0 {
			return fmt.Errorf("usage: regulars import transactions|members FILE.csv")
		}
		return env.importCSV(ctx, rest[0], rest[1:])
	case "metrics":
		if len(rest) == 0 || rest[0] != "run" {
			return fmt.Errorf("usage: regulars metrics run [--as-of YYYY-MM-DD]")
		}
		return env.metricsRun(ctx, rest[1:])
	case "demo":
		return env.demo(ctx, rest)
	case "healthcheck":
		return env.healthcheck(ctx, rest)
	case "outbox":
		return env.outbox(ctx, rest)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// environment carries what every command needs.
type environment struct {
	cfg            config
	stdin          io.Reader
	stdout, stderr io.Writer
}

// parse parses a command's flags after the shared ones are registered.
func (env *environment) parse(name string, args []string, extra func(fs *flag.FlagSet)) error {
	fs := flag.NewFlagSet("regulars "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	env.cfg.flags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("regulars %s: unexpected argument %q", name, fs.Arg(0))
	}
	return env.cfg.validate()
}
