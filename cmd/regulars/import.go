package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/regulars/regulars/models"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// importCSV runs `regulars import transactions|members|products FILE.csv` ("-" reads stdin).
func (env *environment) importCSV(ctx context.Context, what string, args []string) error {
	if what != "transactions" && what != "members" && what != "products" {
		return fmt.Errorf("usage: regulars import transactions|members|products FILE.csv (not %q)", what)
	}
	name := "import " + what
	fs := flag.NewFlagSet("regulars "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	env.cfg.flags(fs)
	delimiter := fs.String("delimiter", "", `field separator: ",", ";" or "\t" (tab); default: detected from the header line`)
	// Flags may come before or after the file name.
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 {
		return fmt.Errorf("usage: regulars %s FILE.csv", name)
	}
	if err := env.cfg.validate(); err != nil {
		return err
	}
	var opts []models.CSVOption
	if *delimiter != "" {
		d, err := parseDelimiter(*delimiter)
		if err != nil {
			return err
		}
		opts = append(opts, models.WithDelimiter(d))
	}

	var in io.Reader = env.stdin
	var size int64
	if files[0] != "-" {
		f, err := os.Open(files[0])
		if err != nil {
			return err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		in = f
	}
	db, err := env.openDatabase(ctx, env.quietLogger())
	if err != nil {
		return err
	}
	defer db.Close()

	var bar *progressbar.ProgressBar
	if size > 0 && isTerminal(env.stdout) {
		bar = progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(env.stdout),
			progressbar.OptionSetDescription("reading "+files[0]),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		in = &progressFile{f: in.(*os.File), bar: bar}
	}
	start := time.Now()
	var res *models.ImportResult
	var products *models.ProductImportResult
	switch what {
	case "transactions":
		res, err = db.ImportTransactionsCSV(ctx, in, opts...)
	case "members":
		res, err = db.ImportMembersCSV(ctx, in, opts...)
	default:
		products, err = db.ImportProductsCSV(ctx, in, opts...)
	}
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		var ie *models.ImportError
		if errors.As(err, &ie) {
			return fmt.Errorf("%s: %w", files[0], err)
		}
		return fmt.Errorf("%s %s: %w", name, files[0], err)
	}
	took := time.Since(start)
	if products != nil {
		// An upsert: a product may also be updated, so the counts are not those of the other imports.
		fmt.Fprintf(env.stdout, "imported %s products (%s new, %s updated, %s unchanged) in %.1fs\n",
			thousands(products.Read), thousands(products.Inserted), thousands(products.Updated),
			thousands(products.Unchanged), took.Seconds())
		return nil
	}
	rows := "rows"
	if res.Read == 1 {
		rows = "row"
	}
	fmt.Fprintf(env.stdout, "imported %s %s (%s new, %s already present) in %.1fs: %s rows/s\n",
		thousands(res.Read), rows, thousands(res.Inserted), thousands(res.Present), took.Seconds(),
		thousands(int64(float64(res.Read)/max(took.Seconds(), 1e-9))))
	if what == "members" && res.Linked > 0 {
		fmt.Fprintf(env.stdout, "linked %s earlier purchases to the new members\n", thousands(res.Linked))
	}
	return nil
}

// parseDelimiter reads --delimiter: a comma, a semicolon or a tab (typed as a real tab, "\t" or
// "tab", since a shell makes a real one awkward).
func parseDelimiter(s string) (rune, error) {
	switch s {
	case ",", ";", "\t":
		return rune(s[0]), nil
	case `\t`, "tab":
		return '\t', nil
	}
	return 0, fmt.Errorf(`--delimiter must be ",", ";" or "\t" (tab), not %q`, s)
}

// progressFile is the file being imported, moving the bar as it is read. It can seek, so that
// the import may read it a second time (see models.ResettableSource).
type progressFile struct {
	f   *os.File
	bar *progressbar.ProgressBar
}

func (p *progressFile) Read(b []byte) (int, error) {
	n, err := p.f.Read(b)
	_ = p.bar.Add(n)
	return n, err
}

func (p *progressFile) Seek(offset int64, whence int) (int64, error) {
	pos, err := p.f.Seek(offset, whence)
	if err == nil {
		_ = p.bar.Set64(pos)
	}
	return pos, err
}

// isTerminal reports whether w is a terminal, so that a progress bar does not end up in a
// redirected file or a pipe.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// thousands formats n with comma separators: 1,000,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
