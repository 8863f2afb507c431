package tracking

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"html"
	"net/url"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models"
)

// Token purposes: a click token is refused as an open token and the other way round.
const (
	purposeClick = "click"
	purposeOpen  = "open"
)

// macLen is the truncated HMAC-SHA256 in a token: 128 bits, enough against forgery and short
// enough for a link.
const macLen = 16

// MaxLinks is how many distinct tracked links one campaign template may have; beyond it links
// are left as they are, untracked.
const MaxLinks = 500

// ErrBadToken is a click or open token that is malformed, tampered with or of another purpose.
var ErrBadToken = errors.New("invalid tracking token")

// Ref is what a tracking token names: the mail (run and member) and, for clicks, the link.
type Ref struct {
	RunID    int64
	MemberID int64
	LinkID   int64 // 0 in open tokens
}

// SignClick returns the token of /c/<token>: base64url of the three ids as uvarints followed by
// an HMAC over them, so it has no separators and needs no escaping.
func SignClick(secret []byte, r Ref) string { return sign(secret, purposeClick, r) }

// SignOpen returns the token of /o/<token>.gif (r.LinkID is ignored).
func SignOpen(secret []byte, r Ref) string {
	r.LinkID = 0
	return sign(secret, purposeOpen, r)
}

// VerifyClick returns what a click token names, or ErrBadToken.
func VerifyClick(secret []byte, token string) (Ref, error) {
	r, err := verify(secret, purposeClick, token)
	if err == nil && r.LinkID <= 0 {
		return Ref{}, ErrBadToken
	}
	return r, err
}

// VerifyOpen returns what an open token names, or ErrBadToken.
func VerifyOpen(secret []byte, token string) (Ref, error) { return verify(secret, purposeOpen, token) }

func sign(secret []byte, purpose string, r Ref) string {
	body := binary.AppendUvarint(nil, uint64(r.RunID))
	body = binary.AppendUvarint(body, uint64(r.MemberID))
	body = binary.AppendUvarint(body, uint64(r.LinkID))
	return base64.RawURLEncoding.EncodeToString(append(body, tokenMAC(secret, purpose, body)...))
}

func verify(secret []byte, purpose, token string) (Ref, error) {
	if len(token) > 100 {
		return Ref{}, ErrBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) <= macLen {
		return Ref{}, ErrBadToken
	}
	body, mac := b[:len(b)-macLen], b[len(b)-macLen:]
	if !hmac.Equal(mac, tokenMAC(secret, purpose, body)) {
		return Ref{}, ErrBadToken
	}
	var ids [3]int64
	for i := range ids {
		v, n := binary.Uvarint(body)
		if n <= 0 || v > 1<<62 {
			return Ref{}, ErrBadToken
		}
		ids[i], body = int64(v), body[n:]
	}
	if len(body) != 0 || ids[0] <= 0 || ids[1] <= 0 {
		return Ref{}, ErrBadToken
	}
	return Ref{RunID: ids[0], MemberID: ids[1], LinkID: ids[2]}, nil
}

func tokenMAC(secret []byte, purpose string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	writeMACPrefix(m, purpose)
	m.Write(body)
	return m.Sum(nil)[:macLen]
}

func newMAC(secret []byte) hash.Hash { return hmac.New(sha256.New, secret) }

// writeMACPrefix writes what precedes a token's body in its HMAC: a version and the purpose.
func writeMACPrefix(m hash.Hash, purpose string) {
	switch purpose {
	case purposeClick:
		m.Write(clickMACPrefix)
	case purposeOpen:
		m.Write(openMACPrefix)
	default:
		m.Write([]byte("regulars-track-v1\x00" + purpose + "\x00"))
	}
}

var (
	clickMACPrefix = []byte("regulars-track-v1\x00" + purposeClick + "\x00")
	openMACPrefix  = []byte("regulars-track-v1\x00" + purposeOpen + "\x00")
)

// hrefMatch is one href attribute of an <a> tag in an HTML body: body[start:quote] is
// everything before the value ("<a class=x href="), body[quote] the opening quote, and
// body[quote+1:end-1] the value.
type hrefMatch struct{ start, quote, end int }

func (m hrefMatch) value(body string) string { return body[m.quote+1 : m.end-1] }

// isSpace is \s of regexp: the whitespace allowed between a tag's parts.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

// nextHref finds the first href attribute of an <a> tag at or after from. It matches exactly
// what the regular expression
//
//	(?i)(<a\s(?:[^>]*?\s)??href\s*=\s*)(?:"([^"]*)"|'([^']*)')
//
// matches (leftmost first; scan_test.go checks the two agree), without backtracking: the value
// is double- or single-quoted (html/template output always quotes attribute values; unquoted
// ones are left alone), and the attribute is the first "href" in the tag that follows
// whitespace, as browsers take the first of repeated attributes. It is called for every mail,
// so it only scans bytes.
func nextHref(body string, from int) (hrefMatch, bool) {
	for i := from; i < len(body); i++ {
		j := strings.IndexByte(body[i:], '<')
		if j < 0 {
			break
		}
		i += j
		if i+2 >= len(body) || body[i+1]|0x20 != 'a' || !isSpace(body[i+2]) {
			continue
		}
		for p := i + 2; p < len(body) && body[p] != '>'; p++ {
			if !isSpace(body[p]) {
				continue
			}
			k := p + 1
			if k+4 > len(body) || body[k]|0x20 != 'h' || body[k+1]|0x20 != 'r' || body[k+2]|0x20 != 'e' || body[k+3]|0x20 != 'f' {
				continue
			}
			for k += 4; k < len(body) && isSpace(body[k]); k++ {
			}
			if k >= len(body) || body[k] != '=' {
				continue
			}
			for k++; k < len(body) && isSpace(body[k]); k++ {
			}
			if k >= len(body) || (body[k] != '"' && body[k] != '\'') {
				continue
			}
			if end := strings.IndexByte(body[k+1:], body[k]); end >= 0 {
				return hrefMatch{start: i, quote: k, end: k + 1 + end + 1}, true
			}
		}
	}
	return hrefMatch{}, false
}

// allHrefs returns the href attributes of every <a> tag of body, in order.
func allHrefs(body string) []hrefMatch {
	var out []hrefMatch
	for from := 0; ; {
		m, ok := nextHref(body, from)
		if !ok {
			return out
		}
		out = append(out, m)
		from = m.end
	}
}

// unescape is html.UnescapeString without its allocation for values with no entity.
func unescape(s string) string {
	if strings.IndexByte(s, '&') < 0 {
		return s
	}
	return html.UnescapeString(s)
}

// ExtractLinks returns the distinct trackable URLs of the <a href> links in an HTML body, in
// order of appearance: absolute http(s) URLs, except our own club pages and tracking URLs
// under baseURL (the preferences and unsubscribe links must reach the member untouched).
func ExtractLinks(body, baseURL string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range allHrefs(body) {
		u := unescape(m.value(body))
		if !trackable(u, baseURL) || seen[u] {
			continue
		}
		seen[u] = true
		out = append(out, u)
	}
	return out
}

// CommonLinks returns the trackable links (as ExtractLinks) that every one of bodies has, in
// the order of the first: the links of a template rendered for different sample members, less
// those built from member data.
func CommonLinks(baseURL string, bodies ...string) []string {
	if len(bodies) == 0 {
		return nil
	}
	out := ExtractLinks(bodies[0], baseURL)
	for _, body := range bodies[1:] {
		in := map[string]bool{}
		for _, u := range ExtractLinks(body, baseURL) {
			in[u] = true
		}
		kept := out[:0]
		for _, u := range out {
			if in[u] {
				kept = append(kept, u)
			}
		}
		out = kept
	}
	return out
}

// ownPaths are the pages of our server whose links are never rewritten.
var ownPaths = []string{"/preferences", "/unsubscribe", "/confirm", "/c/", "/o/"}

func trackable(raw, baseURL string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	base := strings.TrimRight(baseURL, "/")
	if base != "" && strings.HasPrefix(raw, base+"/") {
		rest := raw[len(base):]
		for _, p := range ownPaths {
			if strings.HasPrefix(rest, p) {
				return false
			}
		}
	}
	return true
}

// Rewrite replaces the href of every <a> whose URL (HTML-unescaped) is a key of ids with
// target(its link id), HTML-escaped. Other links (mailto:, our own pages, URLs not in ids) are
// kept byte for byte. Rewrite is pure.
func Rewrite(body string, ids map[string]int64, target func(linkID int64) string) string {
	var b strings.Builder
	last := 0
	for _, m := range allHrefs(body) {
		id, ok := ids[unescape(m.value(body))]
		if !ok {
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(body) + 128)
		}
		b.WriteString(body[last:m.quote])
		b.WriteByte('"')
		b.WriteString(html.EscapeString(target(id)))
		b.WriteByte('"')
		last = m.end
	}
	if last == 0 {
		return body
	}
	b.WriteString(body[last:])
	return b.String()
}

// LinkIDs returns the ids of a campaign's links, registering the URLs not seen before. It is
// safe to call concurrently from several processes (ON CONFLICT).
func LinkIDs(ctx context.Context, db *models.DB, campaignID int64, urls []string) (map[string]int64, error) {
	ids := make(map[string]int64, len(urls))
	if len(urls) == 0 {
		return ids, nil
	}
	// The no-op DO UPDATE makes RETURNING give the ids of existing rows too.
	rows, err := db.Pool.Query(ctx, `
		INSERT INTO campaign_links (campaign_id, url) SELECT $1, u FROM unnest($2::text[]) u
		ON CONFLICT (campaign_id, url) DO UPDATE SET url = excluded.url
		RETURNING url, id`, campaignID, urls)
	if err != nil {
		return nil, fmt.Errorf("register links of campaign %d: %w", campaignID, err)
	}
	for rows.Next() {
		var u string
		var id int64
		if err := rows.Scan(&u, &id); err != nil {
			return nil, err
		}
		ids[u] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("register links of campaign %d: %w", campaignID, err)
	}
	return ids, nil
}

// Tracker rewrites the mails of one campaign: links become BaseURL/c/<token>, and when the
// campaign tracks opens an <img> of BaseURL/o/<token>.gif is added at the end of the body. Build
// one per campaign (and again after the campaign changed, as its links or track_opens may have)
// with NewTracker; Apply is safe for concurrent use by the senders.
//
// Only the links of the campaign's template are tracked, registered once when the tracker is
// built: a URL that differs from mail to mail (one built from member data) is never registered,
// so no per-member URL reaches campaign_links, the stats or the console.
type Tracker struct {
	secret     []byte
	base       string
	trackOpens bool
	ids        map[string]int64 // the template's tracked links; read-only after NewTracker

	clickPrefix string    // BaseURL/c/, HTML-escaped: a rewritten href is clickPrefix + token
	macs        sync.Pool // of hash.Hash: HMAC-SHA256 keyed with secret, reset before each use
}

// NewTracker reads whether campaignID tracks opens and registers links, the URLs of the
// campaign's template (the sender passes CommonLinks of two campaigns.Compiled.SampleHTML
// renders): the trackable ones, at most MaxLinks, get a campaign_links row if they have none. secret and baseURL are REGULARS_SECRET and
// REGULARS_BASE_URL, as for the preferences and unsubscribe links.
func NewTracker(ctx context.Context, db *models.DB, secret []byte, baseURL string, campaignID int64, links []string) (*Tracker, error) {
	t := &Tracker{secret: secret, base: strings.TrimRight(baseURL, "/")}
	t.clickPrefix = html.EscapeString(t.base + "/c/")
	t.macs.New = func() any { return newMAC(secret) }
	err := db.Pool.QueryRow(ctx, `SELECT track_opens FROM campaigns WHERE id = $1`, campaignID).Scan(&t.trackOpens)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, models.Errorf(models.ENOTFOUND, "no campaign %d", campaignID)
	}
	if err != nil {
		return nil, fmt.Errorf("tracker for campaign %d: %w", campaignID, err)
	}
	var urls []string
	seen := map[string]bool{}
	for _, u := range links {
		if !seen[u] && trackable(u, t.base) && len(urls) < MaxLinks {
			seen[u] = true
			urls = append(urls, u)
		}
	}
	if t.ids, err = LinkIDs(ctx, db, campaignID, urls); err != nil {
		return nil, err
	}
	return t, nil
}

// Apply returns the HTML body of the mail of run runID to memberID with the template's links
// rewritten (and the open pixel added when the campaign tracks opens); every other link is kept
// byte for byte. It touches no database. The output is that of Rewrite with SignClick tokens,
// built in one pass.
func (t *Tracker) Apply(runID, memberID int64, body string) string {
	if body == "" {
		return body
	}
	matches := allHrefs(body)
	var b strings.Builder
	b.Grow(len(body) + len(matches)*(len(t.clickPrefix)+48) + 256)
	last := 0
	var tok [3*binary.MaxVarintLen64 + macLen]byte
	var enc [(len(tok)*8 + 5) / 6]byte // tok in unpadded base64
	for _, m := range matches {
		id, ok := t.ids[unescape(m.value(body))]
		if !ok {
			continue
		}
		b.WriteString(body[last:m.quote])
		b.WriteByte('"')
		b.WriteString(t.clickPrefix)
		raw := t.appendToken(tok[:0], purposeClick, Ref{RunID: runID, MemberID: memberID, LinkID: id})
		n := base64.RawURLEncoding.EncodedLen(len(raw))
		base64.RawURLEncoding.Encode(enc[:n], raw)
		b.Write(enc[:n])
		b.WriteByte('"')
		last = m.end
	}
	b.WriteString(body[last:])
	out := b.String()
	if t.trackOpens {
		out = addPixel(out, t.base+"/o/"+SignOpen(t.secret, Ref{RunID: runID, MemberID: memberID})+".gif")
	}
	return out
}

// appendToken appends the raw (not yet base64) token of r to dst, as sign does, with an HMAC
// from t's pool.
func (t *Tracker) appendToken(dst []byte, purpose string, r Ref) []byte {
	dst = binary.AppendUvarint(dst, uint64(r.RunID))
	dst = binary.AppendUvarint(dst, uint64(r.MemberID))
	dst = binary.AppendUvarint(dst, uint64(r.LinkID))
	n := len(dst)
	mac := t.macs.Get().(hash.Hash)
	mac.Reset()
	writeMACPrefix(mac, purpose)
	mac.Write(dst[:n])
	var sum [sha256.Size]byte
	dst = append(dst, mac.Sum(sum[:0])[:macLen]...)
	t.macs.Put(mac)
	return dst
}

// addPixel puts a 1×1 image before </body>, or at the end when there is none.
func addPixel(body, src string) string {
	img := `<img src="` + html.EscapeString(src) + `" width="1" height="1" alt="" style="display:block;border:0">`
	if i := strings.LastIndex(strings.ToLower(body), "</body>"); i >= 0 {
		return body[:i] + img + body[i:]
	}
	return body + img
}

// RecordClick records a click on the link a click token names and returns the URL to redirect
// to. The URL comes from campaign_links, and only when the link belongs to the run's campaign;
// anything else is ENOTFOUND, so a forged or stale token never redirects anywhere.
func RecordClick(ctx context.Context, db *models.DB, r Ref) (string, error) {
	var target string
	err := db.Pool.QueryRow(ctx, `
		WITH link AS (
		    SELECT l.id, l.url FROM campaign_links l
		    JOIN campaign_runs run ON run.campaign_id = l.campaign_id
		    WHERE l.id = $3 AND run.id = $1),
		click AS (
		    INSERT INTO campaign_clicks (run_id, member_id, link_id, clicked_at)
		    SELECT $1, $2, id, $4 FROM link)
		SELECT url FROM link`, r.RunID, r.MemberID, r.LinkID, db.Now()).Scan(&target)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", models.Errorf(models.ENOTFOUND, "no such link")
	}
	if err != nil {
		return "", fmt.Errorf("record click on link %d of run %d: %w", r.LinkID, r.RunID, err)
	}
	if !trackable(target, "") { // only http(s) links are ever stored; checked again for safety
		return "", models.Errorf(models.ENOTFOUND, "no such link")
	}
	return target, nil
}

// RecordOpen records an open of the mail an open token names, when its campaign tracks opens.
// It reports whether it recorded one.
func RecordOpen(ctx context.Context, db *models.DB, r Ref) (bool, error) {
	tag, err := db.Pool.Exec(ctx, `
		INSERT INTO campaign_opens (run_id, member_id, opened_at)
		SELECT run.id, $2, $3 FROM campaign_runs run JOIN campaigns c ON c.id = run.campaign_id
		WHERE run.id = $1 AND c.track_opens`, r.RunID, r.MemberID, db.Now())
	if err != nil {
		return false, fmt.Errorf("record open of run %d: %w", r.RunID, err)
	}
	return tag.RowsAffected() > 0, nil
}
