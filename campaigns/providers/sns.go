package providers

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SNS SignatureVersion 1 is SHA1withRSA; version 2 is SHA256.
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// SNSWindow is how old an SNS message may be. Its Timestamp is when it was published and stays
// the same on every retry, and SNS retries an HTTPS delivery for at most an hour (a limit SNS
// documents as hard), so an older message is a replay.
const SNSWindow = time.Hour

// snsHost is the only host a signing certificate or a subscription URL may be on:
// sns.<region>.amazonaws.com (region like us-east-1, eu-central-2, us-gov-west-1).
var snsHost = regexp.MustCompile(`^sns\.[a-z]{2}(-[a-z]+)+-[0-9]+\.amazonaws\.com$`)

// snsCertPath is the path of SNS signing certificates (SimpleNotificationService-<hex>.pem):
// anything else on the host is no certificate, and is not fetched.
var snsCertPath = regexp.MustCompile(`^/SimpleNotificationService-[A-Za-z0-9]{1,64}\.pem$`)

// maxCertBytes bounds a fetched certificate; maxCachedCerts the certificates kept (SNS rotates
// its certificate rarely, so a handful covers every region in use).
const (
	maxCertBytes   = 64 << 10
	maxCachedCerts = 32
	// certFetchGap is the least time between two fetches of certificates not in the cache:
	// SNS uses one per region for months, so forged messages naming ever new certificate
	// paths cannot make serve call out to AWS more than once a second.
	certFetchGap = time.Second
)

// Fetcher GETs an https URL and returns at most limit bytes of its body; it is called only
// with URLs that passed CheckSNSURL. Tests give one of their own, so no test uses the network.
type Fetcher func(ctx context.Context, url string, limit int64) ([]byte, error)

// HTTPSFetch is the Fetcher of serve: client (nil: one with a 10 s timeout), following no
// redirect (a redirect could leave the SNS host), reading no more than limit bytes.
func HTTPSFetch(client *http.Client) Fetcher {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return func(ctx context.Context, u string, limit int64) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return nil, err
		}
		if int64(len(b)) > limit {
			return nil, fmt.Errorf("GET %s: over %d bytes", u, limit)
		}
		return b, nil
	}
}

// CheckSNSURL refuses any URL but https://sns.<region>.amazonaws.com/... (no port, no user,
// no fragment): certificates are fetched, and subscriptions confirmed, only there.
func CheckSNSURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Port() != "" || u.Fragment != "" ||
		!snsHost.MatchString(u.Hostname()) || u.Host != u.Hostname() {
		return nil, fmt.Errorf("%q is not an https URL on sns.<region>.amazonaws.com", raw)
	}
	return u, nil
}

// SNSMessage is an SNS message as posted to an HTTPS subscription.
type SNSMessage struct {
	Type             string  `json:"Type"`
	MessageID        string  `json:"MessageId"`
	Token            string  `json:"Token"`
	TopicArn         string  `json:"TopicArn"`
	Subject          *string `json:"Subject"`
	Message          string  `json:"Message"`
	Timestamp        string  `json:"Timestamp"`
	SignatureVersion string  `json:"SignatureVersion"`
	Signature        string  `json:"Signature"`
	SigningCertURL   string  `json:"SigningCertURL"`
	SubscribeURL     string  `json:"SubscribeURL"`
}

// SNS message types.
const (
	SNSNotification = "Notification"
	SNSSubscribe    = "SubscriptionConfirmation"
	SNSUnsubscribe  = "UnsubscribeConfirmation"
	snsSignatureV1  = "1"
	snsSignatureV2  = "2"
)

// SNSVerifier checks SNS messages: the topic must be one of the configured ones, the
// signature (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA, over SNS's canonical string)
// must verify with the certificate at SigningCertURL, which is fetched only from an SNS host
// and cached, and the message must be younger than SNSWindow.
type SNSVerifier struct {
	topics []string
	fetch  Fetcher
	now    func() time.Time

	mu        sync.Mutex
	certs     map[string]*x509.Certificate
	lastFetch time.Time
}

// NewSNSVerifier accepts the messages of topics.
func NewSNSVerifier(topics []string, fetch Fetcher, now func() time.Time) *SNSVerifier {
	return &SNSVerifier{topics: topics, fetch: fetch, now: now, certs: map[string]*x509.Certificate{}}
}

// Verify checks body, an SNS message, and returns it.
func (v *SNSVerifier) Verify(ctx context.Context, body []byte) (*SNSMessage, error) {
	var m SNSMessage
	if err := json.Unmarshal(body, &m); err != nil || m.Type == "" || m.Signature == "" {
		return nil, unauthorized("not a signed SNS message")
	}
	if !slices.Contains(v.topics, m.TopicArn) {
		// Checked first: anyone with an AWS account can make a topic SNS signs for.
		return nil, unauthorized("SNS topic %q is not in REGULARS_SES_TOPIC_ARNS", m.TopicArn)
	}
	canonical, err := m.canonical()
	if err != nil {
		return nil, unauthorized("%v", err)
	}
	var hash crypto.Hash
	var digest []byte
	switch m.SignatureVersion {
	case snsSignatureV1:
		sum := sha1.Sum(canonical) //nolint:gosec // what SignatureVersion 1 is
		hash, digest = crypto.SHA1, sum[:]
	case snsSignatureV2:
		sum := sha256.Sum256(canonical)
		hash, digest = crypto.SHA256, sum[:]
	default:
		return nil, unauthorized("SNS SignatureVersion must be 1 or 2")
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return nil, unauthorized("the SNS signature must be base64")
	}
	if u, err := CheckSNSURL(m.SigningCertURL); err != nil {
		return nil, unauthorized("SigningCertURL: %v", err)
	} else if !snsCertPath.MatchString(u.Path) || u.RawQuery != "" {
		return nil, unauthorized("SigningCertURL %q is not an SNS certificate's", m.SigningCertURL)
	}
	// The timestamp is checked before the certificate is fetched (the signature covers it, so
	// a changed one fails below): an old message costs no fetch.
	ts, err := time.Parse(time.RFC3339Nano, m.Timestamp)
	if err != nil || !fresh(ts, v.now(), SNSWindow) {
		return nil, unauthorized("the SNS message is older than %s: a replay", SNSWindow)
	}
	cert, err := v.cert(ctx, m.SigningCertURL)
	if err != nil {
		return nil, unauthorized("the SNS signing certificate: %v", err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, unauthorized("the SNS signing certificate has no RSA key")
	}
	if err := rsa.VerifyPKCS1v15(pub, hash, digest, sig); err != nil {
		return nil, unauthorized("the SNS signature does not match")
	}
	return &m, nil
}

// canonical is the string SNS signs: for a notification Message, MessageId, Subject (when
// present), Timestamp, TopicArn and Type; for (un)subscription confirmations Message,
// MessageId, SubscribeURL, Timestamp, Token, TopicArn and Type; each as its name, a newline,
// its value and a newline.
func (m *SNSMessage) canonical() ([]byte, error) {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	switch m.Type {
	case SNSNotification:
		add("Message", m.Message)
		add("MessageId", m.MessageID)
		if m.Subject != nil {
			add("Subject", *m.Subject)
		}
		add("Timestamp", m.Timestamp)
		add("TopicArn", m.TopicArn)
		add("Type", m.Type)
	case SNSSubscribe, SNSUnsubscribe:
		add("Message", m.Message)
		add("MessageId", m.MessageID)
		add("SubscribeURL", m.SubscribeURL)
		add("Timestamp", m.Timestamp)
		add("Token", m.Token)
		add("TopicArn", m.TopicArn)
		add("Type", m.Type)
	default:
		return nil, fmt.Errorf("unknown SNS message type %q", m.Type)
	}
	return []byte(b.String()), nil
}

// cert returns the certificate at u (already checked), fetched once and cached.
func (v *SNSVerifier) cert(ctx context.Context, u string) (*x509.Certificate, error) {
	v.mu.Lock()
	c, ok := v.certs[u]
	now := v.now()
	busy := !ok && now.Sub(v.lastFetch) < certFetchGap
	if !ok && !busy {
		v.lastFetch = now
	}
	v.mu.Unlock()
	if busy {
		return nil, errors.New("another certificate was fetched less than a second ago; SNS will retry")
	}
	if !ok {
		b, err := v.fetch(ctx, u, maxCertBytes)
		if err != nil {
			return nil, err
		}
		block, _ := pem.Decode(b)
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, errors.New("not a PEM certificate")
		}
		if c, err = x509.ParseCertificate(block.Bytes); err != nil {
			return nil, err
		}
		v.mu.Lock()
		if len(v.certs) >= maxCachedCerts {
			clear(v.certs)
		}
		v.certs[u] = c
		v.mu.Unlock()
	}
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return nil, errors.New("the certificate is not valid now")
	}
	return c, nil
}

// Confirm confirms the subscription of a verified SubscriptionConfirmation by visiting its
// SubscribeURL, which must be on an SNS host too.
func (v *SNSVerifier) Confirm(ctx context.Context, m *SNSMessage) error {
	if m.Type != SNSSubscribe {
		return nil
	}
	if _, err := CheckSNSURL(m.SubscribeURL); err != nil {
		return unauthorized("SubscribeURL: %v", err)
	}
	if _, err := v.fetch(ctx, m.SubscribeURL, maxCertBytes); err != nil {
		return fmt.Errorf("confirm the SNS subscription to %s: %w", m.TopicArn, err)
	}
	return nil
}

// sesNotification is the part of an SES notification (notificationType) or event
// (eventType) this package reads.
type sesNotification struct {
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"`
	Bounce           *struct {
		BounceType        string `json:"bounceType"`
		BounceSubType     string `json:"bounceSubType"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
	} `json:"bounce"`
	Complaint *struct {
		ComplainedRecipients []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
		ComplaintFeedbackType string `json:"complaintFeedbackType"`
	} `json:"complaint"`
	Mail struct {
		MessageID string `json:"messageId"`
		Headers   []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"headers"`
		CommonHeaders struct {
			MessageID string `json:"messageId"`
		} `json:"commonHeaders"`
	} `json:"mail"`
}

// SESEvents reads the SES notification in a verified SNS Notification: a Permanent bounce is a
// hard bounce and a Transient one (SES has given up retrying) a soft one, for each bounced
// recipient; a complaint is a complaint for each complained recipient, unless its feedback type
// is not-spam. Other notifications (deliveries, Undetermined bounces) give none. Each event's
// key is the SNS MessageId and the recipient.
func SESEvents(m *SNSMessage) ([]Event, error) {
	var n sesNotification
	if err := json.Unmarshal([]byte(m.Message), &n); err != nil {
		return nil, malformed("the SNS message is not an SES notification")
	}
	kind := n.NotificationType
	if kind == "" {
		kind = n.EventType
	}
	// The original Message-ID header; SES may replace the one it sends with its own.
	messageID := n.Mail.CommonHeaders.MessageID
	for _, h := range n.Mail.Headers {
		if strings.EqualFold(h.Name, "Message-ID") {
			messageID = h.Value
			break
		}
	}
	messageID = bareMessageID(messageID)
	var out []Event
	add := func(k Kind, email, reason string) {
		out = append(out, Event{Provider: SES, Kind: k, Email: email, MessageID: messageID, Reason: reason,
			Keys: []string{eventKey(m.MessageID+"/"+strings.ToLower(email), []byte(m.Message+"/"+email))}})
	}
	switch {
	case kind == "Bounce" && n.Bounce != nil:
		k := HardBounce
		switch n.Bounce.BounceType {
		case "Permanent":
		case "Transient":
			k = SoftBounce
		default:
			return nil, nil
		}
		for _, r := range n.Bounce.BouncedRecipients {
			add(k, r.EmailAddress, strings.TrimSpace(n.Bounce.BounceType+"/"+n.Bounce.BounceSubType+" "+r.Status+" "+r.DiagnosticCode))
		}
	case kind == "Complaint" && n.Complaint != nil:
		if n.Complaint.ComplaintFeedbackType == "not-spam" {
			return nil, nil
		}
		for _, r := range n.Complaint.ComplainedRecipients {
			add(Complaint, r.EmailAddress, n.Complaint.ComplaintFeedbackType)
		}
	}
	if len(out) > MaxEvents {
		return nil, malformed("at most %d recipients a notification", MaxEvents)
	}
	return out, nil
}
