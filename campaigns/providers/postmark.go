package providers

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// PostmarkVerifier checks Postmark's webhooks, which carry no signature: the webhook URL is
// configured with HTTP basic auth (https://user:password@host/...), compared here in constant
// time. Postmark's record ID is the event's key.
type PostmarkVerifier struct {
	// digest is SHA-256 of "user:password": comparing digests takes the same time whatever the
	// lengths.
	digest [32]byte
}

// NewPostmarkVerifier reads REGULARS_POSTMARK_WEBHOOK_AUTH, "user:password".
func NewPostmarkVerifier(auth string) (*PostmarkVerifier, error) {
	user, pass, ok := strings.Cut(auth, ":")
	if !ok || user == "" || len(pass) < 16 {
		return nil, errors.New("REGULARS_POSTMARK_WEBHOOK_AUTH must be user:password with a password of at least 16 characters")
	}
	return &PostmarkVerifier{digest: sha256.Sum256([]byte(auth))}, nil
}

// postmarkHard are the bounce types after which the address is not mailed again (Postmark
// deactivates it too); postmarkSoft those counted as soft bounces. Other types (auto-replies,
// subscribe requests, challenge mails...) are no failure of the address.
var (
	postmarkHard = map[string]bool{"HardBounce": true, "BadEmailAddress": true, "ManuallyDeactivated": true}
	postmarkSoft = map[string]bool{"SoftBounce": true, "Transient": true, "DnsError": true}
)

type postmarkRecord struct {
	RecordType  string          `json:"RecordType"`
	ID          json.RawMessage `json:"ID"`
	Type        string          `json:"Type"`
	Email       string          `json:"Email"`
	Description string          `json:"Description"`
	Details     string          `json:"Details"`
}

// Events checks the basic auth (user, pass, ok as http.Request.BasicAuth gives them) and
// returns the record's event: a Bounce of a hard type is a hard bounce, of a soft type a soft
// one; a SpamComplaint is a complaint. Postmark's MessageID is its own, not the mail's
// Message-ID, so the mail is found by address.
func (v *PostmarkVerifier) Events(body []byte, user, pass string, ok bool) ([]Event, error) {
	got := sha256.Sum256([]byte(user + ":" + pass))
	if !ok || subtle.ConstantTimeCompare(got[:], v.digest[:]) != 1 {
		return nil, unauthorized("the Postmark webhook URL's user and password do not match")
	}
	var r postmarkRecord
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, malformed("a Postmark webhook posts one JSON record")
	}
	id := strings.Trim(string(r.ID), `"`)
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		id = ""
	}
	ev := Event{Provider: Postmark, Email: r.Email, Keys: []string{eventKey(id, body)}}
	switch {
	case r.RecordType == "Bounce" && postmarkHard[r.Type]:
		ev.Kind = HardBounce
	case r.RecordType == "Bounce" && postmarkSoft[r.Type]:
		ev.Kind = SoftBounce
	case r.RecordType == "SpamComplaint":
		ev.Kind = Complaint
	default:
		return nil, nil
	}
	ev.Reason = strings.TrimSpace(r.Type + ": " + r.Description + " " + r.Details)
	return []Event{ev}, nil
}
