package providers

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// MailgunWindow is how old a Mailgun signature's timestamp may be; Mailgun signs each POST, its
// retries included.
const MailgunWindow = 10 * time.Minute

// MailgunVerifier checks Mailgun's webhook signature: hex HMAC-SHA256, with the webhook signing
// key, of the timestamp followed by the token, posted in the body beside the event. The
// signature does not cover the event, so its token is one of the event's one-time keys: a
// signature taken from one request and put on another event is refused as a repeat.
type MailgunVerifier struct {
	key []byte
	now func() time.Time
}

type mailgunBody struct {
	Signature struct {
		Timestamp json.RawMessage `json:"timestamp"` // a string in the documentation; a number is read too
		Token     string          `json:"token"`
		Signature string          `json:"signature"`
	} `json:"signature"`
	EventData json.RawMessage `json:"event-data"`
}

type mailgunEvent struct {
	ID        string `json:"id"`
	Event     string `json:"event"`
	Severity  string `json:"severity"`
	Reason    string `json:"reason"`
	Recipient string `json:"recipient"`
	Message   struct {
		Headers struct {
			MessageID string `json:"message-id"`
		} `json:"headers"`
	} `json:"message"`
	DeliveryStatus struct {
		Code        int    `json:"code"`
		Message     string `json:"message"`
		Description string `json:"description"`
	} `json:"delivery-status"`
}

// Events checks a request's signature and timestamp and returns its event: a permanent
// failure (event failed, severity permanent) is a hard bounce, a complaint (event complained)
// a complaint; temporary failures, which Mailgun retries itself, and other events, none.
func (v *MailgunVerifier) Events(body []byte) ([]Event, error) {
	var b mailgunBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, unauthorized("not a signed Mailgun webhook: the body must be JSON with signature and event-data")
	}
	ts := strings.Trim(string(bytes.TrimSpace(b.Signature.Timestamp)), `"`)
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || b.Signature.Token == "" || b.Signature.Signature == "" {
		return nil, unauthorized("a Mailgun webhook needs signature.timestamp, .token and .signature")
	}
	got, err := hex.DecodeString(b.Signature.Signature)
	if err != nil {
		return nil, unauthorized("the Mailgun signature must be hex")
	}
	mac := hmac.New(sha256.New, v.key)
	mac.Write([]byte(ts))
	mac.Write([]byte(b.Signature.Token))
	if !hmac.Equal(mac.Sum(nil), got) {
		return nil, unauthorized("the Mailgun signature does not match")
	}
	if !fresh(time.Unix(secs, 0), v.now(), MailgunWindow) {
		return nil, unauthorized("the Mailgun signature is older than %s: a replay", MailgunWindow)
	}
	if len(b.Signature.Token) > maxIDLen {
		return nil, unauthorized("the Mailgun token is too long")
	}
	var e mailgunEvent
	if err := json.Unmarshal(b.EventData, &e); err != nil {
		return nil, malformed("event-data must be a JSON object")
	}
	ev := Event{Provider: Mailgun, Email: e.Recipient, MessageID: bareMessageID(e.Message.Headers.MessageID),
		Keys: []string{eventKey(e.ID, b.EventData), "token:" + b.Signature.Token}}
	switch {
	case e.Event == "failed" && e.Severity == "permanent":
		ev.Kind = HardBounce
		ev.Reason = strings.TrimSpace(e.Reason + " " + strconv.Itoa(e.DeliveryStatus.Code) + " " +
			e.DeliveryStatus.Message + " " + e.DeliveryStatus.Description)
	case e.Event == "complained":
		ev.Kind = Complaint
	default:
		return nil, nil
	}
	return []Event{ev}, nil
}
