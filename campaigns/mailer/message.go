package mailer

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
)

// Message is one email as the rest of the server describes it: the mailer turns it into an
// RFC 5322 message with a multipart/alternative body (wrapped in multipart/related when it
// carries inline images).
type Message struct {
	// From is the author, a bare address or "Name <address>".
	From string
	// EnvelopeFrom, when set, is the SMTP return path (MAIL FROM) so bounces go to a mailbox
	// other than From.
	EnvelopeFrom string
	// To lists the recipients; each gets the message through one SMTP transaction.
	To []string
	// ReplyTo is optional.
	ReplyTo string
	// Subject may hold any Unicode; it is RFC 2047 encoded when needed.
	Subject string
	// Text and HTML are the two alternatives; at least one must be set.
	Text string
	HTML string
	// MessageID is set by the caller (without angle brackets) so that retries and resends of
	// the same logical mail carry the same id; when empty a random one is generated.
	MessageID string
	// Date defaults to the time the message is built.
	Date time.Time
	// Headers are extra header fields such as List-Unsubscribe, written in this order.
	Headers []Header
	// Inline parts are referenced from the HTML as "cid:<ContentID>", e.g. a card barcode.
	Inline []Inline
}

// Header is one extra header field.
type Header struct {
	Name  string
	Value string
}

// Inline is an image or other part shown inside the HTML body rather than as an attachment.
type Inline struct {
	// ContentID is referenced from the HTML as "cid:" + ContentID (no angle brackets).
	ContentID string
	// Filename is shown by clients that list the part.
	Filename string
	// ContentType such as "image/png".
	ContentType string
	Data        []byte
}

// SetListUnsubscribe adds the List-Unsubscribe header with the given https and mailto targets
// and, when an https target is present, List-Unsubscribe-Post for RFC 8058 one-click
// unsubscribe, so every caller sets the pair the same way.
func (m *Message) SetListUnsubscribe(targets ...string) {
	if len(targets) == 0 {
		return
	}
	wrapped := make([]string, len(targets))
	oneClick := false
	for i, target := range targets {
		wrapped[i] = "<" + target + ">"
		if strings.HasPrefix(strings.ToLower(target), "https://") {
			oneClick = true
		}
	}
	m.Headers = append(m.Headers, Header{Name: "List-Unsubscribe", Value: strings.Join(wrapped, ", ")})
	if oneClick {
		m.Headers = append(m.Headers, Header{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"})
	}
}

// reservedHeaders are written from Message's own fields; setting them through Headers would
// produce duplicate or contradictory fields.
var reservedHeaders = map[string]bool{
	"from": true, "to": true, "cc": true, "bcc": true, "reply-to": true, "subject": true,
	"date": true, "message-id": true, "mime-version": true, "content-type": true,
	"content-transfer-encoding": true, "dkim-signature": true,
}

func (m *Message) validate() error {
	switch {
	case strings.TrimSpace(m.From) == "":
		return errors.New("from is empty")
	case len(m.To) == 0:
		return errors.New("no recipients")
	case m.Text == "" && m.HTML == "":
		return errors.New("neither a text nor an HTML body")
	case strings.ContainsAny(m.Subject, "\r\n"):
		return errors.New("subject contains a line break")
	case strings.ContainsAny(m.MessageID, "\r\n<> "):
		return fmt.Errorf("message id %q must not contain spaces, angle brackets or line breaks", m.MessageID)
	}
	for _, h := range m.Headers {
		if h.Name == "" || strings.IndexFunc(h.Name, func(r rune) bool { return r <= ' ' || r >= 127 || r == ':' }) >= 0 {
			return fmt.Errorf("header name %q is not a valid field name", h.Name)
		}
		if reservedHeaders[strings.ToLower(h.Name)] {
			return fmt.Errorf("header %s is set from the message's own fields", h.Name)
		}
		if strings.ContainsAny(h.Value, "\r\n") {
			return fmt.Errorf("header %s contains a line break", h.Name)
		}
	}
	for _, part := range m.Inline {
		if part.ContentID == "" || strings.ContainsAny(part.ContentID, "\r\n<> ") {
			return fmt.Errorf("inline part %q needs a content id without spaces or angle brackets", part.Filename)
		}
	}
	return nil
}

// build converts m into a go-mail message, signed with DKIM when dkim is set. A fresh Msg is
// built for every attempt because go-mail keeps per-send state inside it.
func (m *Message) build(now time.Time, dkim *dkimKey) (*mail.Msg, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.From(m.From); err != nil {
		return nil, fmt.Errorf("from %q: %w", m.From, err)
	}
	if m.EnvelopeFrom != "" {
		if err := msg.EnvelopeFrom(m.EnvelopeFrom); err != nil {
			return nil, fmt.Errorf("envelope from %q: %w", m.EnvelopeFrom, err)
		}
	}
	if err := msg.To(m.To...); err != nil {
		return nil, fmt.Errorf("to %q: %w", m.To, err)
	}
	if m.ReplyTo != "" {
		if err := msg.ReplyTo(m.ReplyTo); err != nil {
			return nil, fmt.Errorf("reply-to %q: %w", m.ReplyTo, err)
		}
	}
	msg.Subject(m.Subject)
	if m.MessageID != "" {
		msg.SetMessageIDWithValue(m.MessageID)
	}
	date := m.Date
	if date.IsZero() {
		date = now
	}
	msg.SetDateWithValue(date)
	for _, h := range m.Headers {
		msg.SetGenHeader(mail.Header(h.Name), h.Value)
	}
	switch {
	case m.Text != "" && m.HTML != "":
		msg.SetBodyString(mail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	case m.Text != "":
		msg.SetBodyString(mail.TypeTextPlain, m.Text)
	default:
		msg.SetBodyString(mail.TypeTextHTML, m.HTML)
	}
	for _, part := range m.Inline {
		name := part.Filename
		if name == "" {
			name = part.ContentID
		}
		opts := []mail.FileOption{mail.WithFileContentID("<" + part.ContentID + ">")}
		if part.ContentType != "" {
			opts = append(opts, mail.WithFileContentType(mail.ContentType(part.ContentType)))
		}
		if err := msg.EmbedReader(name, bytes.NewReader(part.Data), opts...); err != nil {
			return nil, fmt.Errorf("inline part %s: %w", part.ContentID, err)
		}
	}
	if dkim != nil {
		// A signer per message: go-mail's signer fills in its algorithm lazily, so sharing one
		// between goroutines would race.
		signer := mail.NewDKIMSigner(dkim.domain, dkim.selector, dkim.key)
		// go-mail's default set plus the unsubscribe headers, which RFC 8058 requires the
		// signature to cover (a header listed but absent may then not be added in transit).
		signer.SignHeaders(dkimSignedHeaders...)
		msg.SetDKIM(signer)
	}
	return msg, nil
}

// dkimSignedHeaders are the headers a DKIM signature covers: those RFC 6376 5.4.1 recommends
// that our mails carry, and the unsubscribe headers, which RFC 8058 requires to be signed.
// Content-Type and MIME-Version (in go-mail's default set) are left out, because the h= tag must
// fit on one folded line of the DKIM-Signature field: go-mail v0.8.1 hard-wraps a longer tag in
// the middle, and the signature it computed over the unwrapped tag then fails to verify under
// relaxed canonicalization (the wrap becomes a space). "h=" plus this list plus "; " is 74
// characters of the 75 that fit; cmd/regulars' TestServeSignsMailWithDKIM verifies signatures.
var dkimSignedHeaders = []string{"From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"}
