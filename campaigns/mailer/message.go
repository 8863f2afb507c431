package mailer

import (
	"bytes"
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"
	"sync"
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
	// One string built in place: a campaign sets this on every mail.
	n := 0
	oneClick := false
	for _, target := range targets {
		n += len(target) + 4
		if len(target) >= len("https://") && strings.EqualFold(target[:len("https://")], "https://") {
			oneClick = true
		}
	}
	var b strings.Builder
	b.Grow(n)
	for i, target := range targets {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('<')
		b.WriteString(target)
		b.WriteByte('>')
	}
	if m.Headers == nil {
		m.Headers = make([]Header, 0, 2)
	}
	m.Headers = append(m.Headers, Header{Name: "List-Unsubscribe", Value: b.String()})
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

// validFieldName tells whether name is a header field name: printable ASCII without spaces or
// colons, at least one character.
func validFieldName(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 127 || c == ':' {
			return false
		}
	}
	return name != ""
}

// isReserved is reservedHeaders[strings.ToLower(name)] without lowering a copy of every name of
// every mail; a reserved name is ASCII, so a name that is not cannot be one.
func isReserved(name string) bool {
	var lower [32]byte
	if len(name) > len(lower) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	return reservedHeaders[string(lower[:len(name)])] // no allocation: a map lookup by a converted []byte
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
		if !validFieldName(h.Name) {
			return fmt.Errorf("header name %q is not a valid field name", h.Name)
		}
		if isReserved(h.Name) {
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
	from, err := parseFrom(m.From)
	if err != nil {
		return nil, fmt.Errorf("from %q: %w", m.From, err)
	}
	msg.FromMailAddress(from)
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

// fromCache holds parsed From addresses: a campaign sends all its mails from one, and parsing
// it is a good part of building a message. At most maxFromCache are kept (the server sends from
// its configured sender and the campaigns' own names for it).
var (
	fromMu    sync.RWMutex
	fromCache = map[string]*netmail.Address{}
)

const maxFromCache = 256

// parseFrom parses from as go-mail's Msg.From does (net/mail.ParseAddress), once per From. The
// caller gets its own copy, so no message shares an address with another.
func parseFrom(from string) (*netmail.Address, error) {
	fromMu.RLock()
	a, ok := fromCache[from]
	fromMu.RUnlock()
	if !ok {
		var err error
		if a, err = netmail.ParseAddress(from); err != nil {
			return nil, fmt.Errorf("failed to parse mail address %q: %w", from, err)
		}
		fromMu.Lock()
		if len(fromCache) < maxFromCache {
			fromCache[from] = a
		}
		fromMu.Unlock()
	}
	own := *a
	return &own, nil
}

// dkimSignedHeaders are the headers a DKIM signature covers: those RFC 6376 5.4.1 recommends
// that our mails carry, and the unsubscribe headers, which RFC 8058 requires to be signed.
// Content-Type and MIME-Version (in go-mail's default set) are left out, because the h= tag must
// fit on one folded line of the DKIM-Signature field: go-mail v0.8.1 hard-wraps a longer tag in
// the middle, and the signature it computed over the unwrapped tag then fails to verify under
// relaxed canonicalization (the wrap becomes a space). "h=" plus this list plus "; " is 74
// characters of the 75 that fit; cmd/regulars' TestServeSignsMailWithDKIM verifies signatures.
var dkimSignedHeaders = []string{"From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"}
