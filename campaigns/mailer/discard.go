package mailer

import (
	"context"
	"fmt"
	"io"
)

// Discard is a Sender that builds every message as the SMTP sender does (DKIM signature
// included) and writes it into io.Discard: the work a mail costs the server without the relay.
// Benchmarks measure the per-mail path with it (campaigns/dispatch's BenchmarkMail).
type Discard struct{ opts options }

// NewDiscard returns a Discard sender; of opts, WithDKIM and WithClock count.
func NewDiscard(opts ...Option) *Discard { return &Discard{opts: buildOptions(opts)} }

// Send builds m and writes it nowhere; its only errors are a message that cannot be built.
func (d *Discard) Send(ctx context.Context, m *Message) error {
	msg, err := m.build(d.opts.now(), d.opts.dkim)
	if err != nil {
		return &SendError{MessageID: m.MessageID, Attempts: 1, Err: fmt.Errorf("build message: %w", err)}
	}
	// What the SMTP client asks of a message before DATA.
	if _, err := msg.GetSender(false); err != nil {
		return &SendError{MessageID: m.MessageID, Attempts: 1, Err: err}
	}
	if _, err := msg.GetRecipients(); err != nil {
		return &SendError{MessageID: m.MessageID, Attempts: 1, Err: err}
	}
	if _, err := msg.WriteTo(io.Discard); err != nil {
		return &SendError{MessageID: m.MessageID, Attempts: 1, Err: err}
	}
	return nil
}

// Close does nothing.
func (d *Discard) Close() error { return nil }
