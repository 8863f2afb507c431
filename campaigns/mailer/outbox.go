package mailer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
)

// Outbox is the Sender used when no SMTP relay is configured: every message becomes one .eml
// file (RFC 5322, CRLF line endings) in a folder, so a developer or a shop trying the server
// can open what would have been sent.
type Outbox struct {
	dir  string
	opts options
	seq  atomic.Uint64
	// instance tells apart files written by different processes in the same nanosecond.
	instance string
}

// NewOutbox creates dir when missing and returns a Sender writing into it.
func NewOutbox(dir string, opts ...Option) (*Outbox, error) {
	if dir == "" {
		return nil, fmt.Errorf("outbox: no folder given")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("outbox: create %s: %w", dir, err)
	}
	var random [4]byte
	if _, err := rand.Read(random[:]); err != nil {
		return nil, fmt.Errorf("outbox: random instance id: %w", err)
	}
	return &Outbox{dir: dir, opts: buildOptions(opts), instance: hex.EncodeToString(random[:])}, nil
}

// Dir is the folder the outbox writes to.
func (o *Outbox) Dir() string { return o.dir }

// Send writes m as a new .eml file. The file appears under its final name only once complete
// (temporary file, then rename), so a reader never sees half a message. Names start with the
// UTC time to the nanosecond and a sequence number, so they sort in sending order.
func (o *Outbox) Send(ctx context.Context, m *Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("outbox: send message %s: %w", m.MessageID, err)
	}
	now := o.opts.now()
	msg, err := m.build(now, o.opts.dkim)
	if err != nil {
		return &SendError{MessageID: m.MessageID, Attempts: 1, Err: fmt.Errorf("build message: %w", err)}
	}
	name := fmt.Sprintf("%s-%010d-%s.eml", now.UTC().Format("20060102T150405.000000000Z"), o.seq.Add(1), o.instance)
	if err := o.writeAtomically(name, msg.WriteTo); err != nil {
		return &SendError{MessageID: m.MessageID, Temporary: true, Attempts: 1, Err: err}
	}
	return nil
}

func (o *Outbox) writeAtomically(name string, write func(w io.Writer) (int64, error)) error {
	tmp, err := os.CreateTemp(o.dir, ".tmp-*.eml")
	if err != nil {
		return fmt.Errorf("outbox: create temporary file: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("outbox: write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("outbox: sync %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("outbox: close %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(o.dir, name)); err != nil {
		return fmt.Errorf("outbox: rename to %s: %w", name, err)
	}
	return nil
}

// Close does nothing: the outbox holds no resources between sends.
func (o *Outbox) Close() error { return nil }
