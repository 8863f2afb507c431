package main

// regulars user create: console accounts.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/regulars/regulars/models"
	"golang.org/x/term"
)

func (env *environment) user(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: regulars user create --email EMAIL --role admin|marketer (password on stdin or prompted)")
	}
	return env.userCreate(ctx, args[1:])
}

// userCreate makes a console user. The password never appears on the command line (where ps and
// shell history would keep it): it is the first line of stdin when piped, or typed twice without
// echo on a terminal.
func (env *environment) userCreate(ctx context.Context, args []string) error {
	var email, role string
	if err := env.parse("user create", args, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the user's email address, which they log in with")
		fs.StringVar(&role, "role", "", "admin (everything) or marketer (no exports, erasure or tier changes)")
	}); err != nil {
		return err
	}
	if email == "" || role == "" {
		return errors.New("user create: --email and --role are required")
	}
	if role != models.RoleAdmin && role != models.RoleMarketer {
		return fmt.Errorf("user create: --role must be admin or marketer, not %q", role)
	}
	password, err := env.readPassword()
	if err != nil {
		return err
	}
	db, err := env.openDatabase(ctx, env.quietLogger())
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := db.CreateUser(ctx, email, role, password)
	if err != nil {
		var e *models.Error
		if errors.As(err, &e) {
			return errors.New("user create: " + e.Error())
		}
		return err
	}
	fmt.Fprintf(env.stdout, "created user %s (%s)\n", u.Email, u.Role)
	return nil
}

// readPassword reads the new password: prompted twice without echo when stdin is a terminal,
// else the first line of stdin.
func (env *environment) readPassword() (string, error) {
	if f, ok := env.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		read := func(prompt string) (string, error) {
			fmt.Fprint(env.stderr, prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(env.stderr)
			return string(b), err
		}
		first, err := read(fmt.Sprintf("Password (at least %d characters): ", models.MinPasswordLength))
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		again, err := read("The same password again: ")
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if first != again {
			return "", errors.New("user create: the two passwords differ; nothing was created")
		}
		return first, nil
	}
	line, err := bufio.NewReader(env.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("user create: no password: pipe it on stdin (first line) or run on a terminal to be asked")
	}
	return line, nil
}

// demoConsoleAdmin creates the console admin of serve --demo with a random password and prints
// how to log in; when it exists from an earlier run it says so (its password was shown then).
func (env *environment) demoConsoleAdmin(ctx context.Context, db *models.DB) error {
	const email = "admin@demo.example"
	if _, err := db.FindUserByEmail(ctx, email); err == nil {
		fmt.Fprintf(env.stdout, "Console: log in at %s/console/ as %s (its password was shown when it was created; "+
			"make another user with: regulars user create --email you@example.com --role admin)\n\n", env.cfg.BaseURL, email)
		return nil
	} else if models.ErrorCode(err) != models.ENOTFOUND {
		return err
	}
	token, err := models.RandomToken()
	if err != nil {
		return err
	}
	password := token[:20]
	if _, err := db.CreateUser(ctx, email, models.RoleAdmin, password); err != nil {
		return fmt.Errorf("demo: create console admin: %w", err)
	}
	fmt.Fprintf(env.stdout, `Demo console login (shown once; make more with: regulars user create):
  %s/console/
  email:    %s
  password: %s

`, env.cfg.BaseURL, email, password)
	return nil
}
