package mailer

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// OutboxMail is one mail in an outbox folder as `regulars outbox` lists it.
type OutboxMail struct {
	File    string
	Date    time.Time
	To      string
	Subject string
	// Links are the http(s) links of the decoded text and HTML bodies (quoted-printable and
	// base64 undone, HTML entities unescaped), each once, in the order they first appear.
	Links []string
}

// Bounds on what a listing reads: an outbox is written by us, but a folder may hold anything.
const (
	maxOutboxFileBytes = 8 << 20
	maxOutboxParts     = 50
	maxOutboxLinks     = 100
)

// linkPattern finds links in a decoded body; a link ends at white space, a quote or an angle
// bracket, as in HTML attributes and in text mail.
var linkPattern = regexp.MustCompile(`https?://[^\s"'<>]+`)

// ReadOutbox returns the newest n mails of the outbox folder dir, newest first. The file names
// start with the time they were written (Outbox.Send), so the order is the names' order.
func ReadOutbox(dir string, n int) ([]OutboxMail, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("outbox %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if name := e.Name(); e.Type().IsRegular() && strings.HasSuffix(name, ".eml") && !strings.HasPrefix(name, ".") {
			names = append(names, name)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	if n >= 0 && len(names) > n {
		names = names[:n]
	}
	mails := make([]OutboxMail, 0, len(names))
	for _, name := range names {
		m, err := readOutboxFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		mails = append(mails, m)
	}
	return mails, nil
}

// readOutboxFile reads the headers and the links of one .eml file.
func readOutboxFile(path string) (OutboxMail, error) {
	out := OutboxMail{File: path}
	f, err := os.Open(path)
	if err != nil {
		return out, err
	}
	defer f.Close()
	msg, err := mail.ReadMessage(io.LimitReader(f, maxOutboxFileBytes))
	if err != nil {
		return out, fmt.Errorf("%s: %w", path, err)
	}
	dec := new(mime.WordDecoder)
	out.To = decodeHeader(dec, msg.Header.Get("To"))
	if list, err := msg.Header.AddressList("To"); err == nil {
		to := make([]string, len(list))
		for i, a := range list {
			to[i] = a.Address
			if a.Name != "" {
				to[i] = a.Name + " <" + a.Address + ">"
			}
		}
		out.To = strings.Join(to, ", ")
	}
	out.Subject = decodeHeader(dec, msg.Header.Get("Subject"))
	out.Date, _ = msg.Header.Date()
	parts := 0
	seen := map[string]bool{}
	err = walkPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, &parts, func(body string) {
		for _, l := range linkPattern.FindAllString(html.UnescapeString(body), -1) {
			if !seen[l] && len(out.Links) < maxOutboxLinks {
				seen[l] = true
				out.Links = append(out.Links, l)
			}
		}
	})
	if err != nil {
		return out, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// decodeHeader undoes RFC 2047 encoded words (a subject with "ø"), keeping the raw value when
// it is not valid.
func decodeHeader(dec *mime.WordDecoder, v string) string {
	if s, err := dec.DecodeHeader(v); err == nil {
		return s
	}
	return v
}

// walkPart calls text with the decoded body of every text/plain and text/html part under a part
// of contentType, descending into multiparts (alternative, related); images are skipped.
func walkPart(contentType, encoding string, body io.Reader, parts *int, text func(string)) error {
	if *parts++; *parts > maxOutboxParts {
		return nil
	}
	if contentType == "" {
		contentType = "text/plain"
	}
	media, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil // an unreadable part has no links we could show
	}
	if strings.HasPrefix(media, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart() // raw: the transfer encoding is undone below, for every part alike
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := walkPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, parts, text); err != nil {
				return err
			}
		}
	}
	if media != "text/plain" && media != "text/html" {
		return nil
	}
	var r io.Reader = body
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body) // line breaks are skipped
	}
	var b bytes.Buffer
	if _, err := io.Copy(&b, io.LimitReader(r, maxOutboxFileBytes)); err != nil {
		return err
	}
	text(b.String())
	return nil
}
