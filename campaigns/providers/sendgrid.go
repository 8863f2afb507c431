package providers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
)

// SendGridWindow is how old a SendGrid signature's timestamp may be. SendGrid signs each POST
// when it makes it, retries included, so a request older than this is a replay.
const SendGridWindow = 10 * time.Minute

// SendGridVerifier checks SendGrid's signed Event Webhook: an ECDSA P-256 signature (ASN.1,
// base64, header X-Twilio-Email-Event-Webhook-Signature) over the timestamp (header
// X-Twilio-Email-Event-Webhook-Timestamp) followed by the raw body, made with the key whose
// public half the SendGrid dashboard shows.
type SendGridVerifier struct {
	key *ecdsa.PublicKey
	now func() time.Time
}

// NewSendGridVerifier reads the verification key as SendGrid shows it: base64 of the public
// key's DER (SubjectPublicKeyInfo); the PEM armour, when pasted too, is ignored.
func NewSendGridVerifier(key string, now func() time.Time) (*SendGridVerifier, error) {
	key = strings.TrimSpace(key)
	key = strings.TrimPrefix(key, "-----BEGIN PUBLIC KEY-----")
	key = strings.TrimSuffix(key, "-----END PUBLIC KEY-----")
	key = strings.Join(strings.Fields(key), "")
	der, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return nil, errors.New("REGULARS_SENDGRID_WEBHOOK_KEY must be the base64 verification key SendGrid shows (Mail Settings, Signed Event Webhook)")
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	ec, ok := pub.(*ecdsa.PublicKey)
	if err != nil || !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("REGULARS_SENDGRID_WEBHOOK_KEY is not an ECDSA P-256 public key")
	}
	return &SendGridVerifier{key: ec, now: now}, nil
}

// sendGridEvent is the part of a SendGrid event this package reads.
type sendGridEvent struct {
	Email     string `json:"email"`
	Event     string `json:"event"`
	EventID   string `json:"sg_event_id"`
	SMTPID    string `json:"smtp-id"`
	Reason    string `json:"reason"`
	Response  string `json:"response"`
	Type      string `json:"type"` // of a bounce event: "bounce" (hard) or "blocked" (soft)
	Status    string `json:"status"`
	MessageID string `json:"sg_message_id"`
}

// Events checks a request's signature and timestamp and returns its bounces (event bounce,
// type bounce: hard; type blocked: soft), dropped mails (SendGrid would not send to the
// address: hard) and spam reports (complaints). Other events (delivered, open, click...) are
// left out.
func (v *SendGridVerifier) Events(body []byte, signature, timestamp string) ([]Event, error) {
	if signature == "" || timestamp == "" {
		return nil, unauthorized("a SendGrid event needs the X-Twilio-Email-Event-Webhook-Signature and -Timestamp headers")
	}
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return nil, unauthorized("X-Twilio-Email-Event-Webhook-Timestamp must be a Unix time")
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return nil, unauthorized("X-Twilio-Email-Event-Webhook-Signature must be base64")
	}
	h := sha256.New()
	h.Write([]byte(timestamp))
	h.Write(body)
	if !ecdsa.VerifyASN1(v.key, h.Sum(nil), sig) {
		return nil, unauthorized("the SendGrid signature does not match")
	}
	// Checked after the signature, so that the timestamp is SendGrid's.
	if !fresh(time.Unix(secs, 0), v.now(), SendGridWindow) {
		return nil, unauthorized("the SendGrid signature is older than %s: a replay", SendGridWindow)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, malformed("a SendGrid webhook posts a JSON array of events")
	}
	if len(raws) > MaxEvents {
		return nil, malformed("at most %d events a request", MaxEvents)
	}
	var out []Event
	for _, raw := range raws {
		var e sendGridEvent
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, malformed("a SendGrid event must be a JSON object")
		}
		ev := Event{Provider: SendGrid, Email: e.Email, MessageID: bareMessageID(e.SMTPID),
			Keys: []string{eventKey(e.EventID, raw)}}
		switch e.Event {
		case "bounce":
			ev.Kind = HardBounce
			if e.Type == "blocked" {
				ev.Kind = SoftBounce
			}
			ev.Reason = strings.TrimSpace(e.Status + " " + e.Reason)
		case "dropped":
			ev.Kind, ev.Reason = HardBounce, "dropped: "+e.Reason
		case "spamreport":
			ev.Kind = Complaint
		default:
			continue
		}
		out = append(out, ev)
	}
	return out, nil
}
