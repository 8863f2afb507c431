// Package providertest signs mail provider webhooks the way the providers do, with keys and a
// certificate of its own, for tests: nothing here talks to the network.
package providertest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SNS SignatureVersion 1
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strconv"
	"sync"
	"time"

	"github.com/regulars/regulars/campaigns/providers"
)

// CertURL is where the test SNS signer's certificate is "published".
const CertURL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"

// TopicARN is the test SNS topic.
const TopicARN = "arn:aws:sns:eu-west-1:123456789012:regulars-ses"

// SNS signs SNS messages with an RSA key whose self-made certificate its Fetch serves at
// CertURL; Fetch records every URL asked for.
type SNS struct {
	key     *rsa.PrivateKey
	certPEM []byte

	mu      sync.Mutex
	fetched []string
}

// NewSNS makes a key and a certificate valid around now.
func NewSNS(now time.Time) (*SNS, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &SNS{key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Fetch is a providers.Fetcher: the certificate at CertURL, an empty 200 for any other URL
// (a subscription URL).
func (s *SNS) Fetch(_ context.Context, url string, _ int64) ([]byte, error) {
	s.mu.Lock()
	s.fetched = append(s.fetched, url)
	s.mu.Unlock()
	if url == CertURL {
		return s.certPEM, nil
	}
	return []byte("<ConfirmSubscriptionResponse/>"), nil
}

// Fetched are the URLs Fetch was asked for, in order.
func (s *SNS) Fetched() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.fetched...)
}

// Notification is a signed SNS Notification of message (SignatureVersion version: "1" or "2")
// published at ts, as JSON.
func (s *SNS) Notification(id, message string, ts time.Time, version string) []byte {
	m := providers.SNSMessage{Type: providers.SNSNotification, MessageID: id, TopicArn: TopicARN,
		Message: message, Timestamp: ts.UTC().Format("2006-01-02T15:04:05.000Z"), SignatureVersion: version,
		SigningCertURL: CertURL}
	return s.Sign(m)
}

// SubscriptionConfirmation is a signed SubscriptionConfirmation asking to visit subscribeURL.
func (s *SNS) SubscriptionConfirmation(subscribeURL string, ts time.Time) []byte {
	m := providers.SNSMessage{Type: providers.SNSSubscribe, MessageID: "sub-1", Token: "tok-1", TopicArn: TopicARN,
		Message: "You have chosen to subscribe to the topic.", SubscribeURL: subscribeURL,
		Timestamp: ts.UTC().Format("2006-01-02T15:04:05.000Z"), SignatureVersion: "2", SigningCertURL: CertURL}
	return s.Sign(m)
}

// Sign fills m's Signature (over SNS's canonical string for m.Type) and returns m as JSON;
// m's SigningCertURL and TopicArn are kept as given.
func (s *SNS) Sign(m providers.SNSMessage) []byte {
	canonical := "Message\n" + m.Message + "\nMessageId\n" + m.MessageID + "\n"
	if m.Type == providers.SNSNotification {
		if m.Subject != nil {
			canonical += "Subject\n" + *m.Subject + "\n"
		}
		canonical += "Timestamp\n" + m.Timestamp + "\nTopicArn\n" + m.TopicArn + "\nType\n" + m.Type + "\n"
	} else {
		canonical += "SubscribeURL\n" + m.SubscribeURL + "\nTimestamp\n" + m.Timestamp + "\nToken\n" + m.Token +
			"\nTopicArn\n" + m.TopicArn + "\nType\n" + m.Type + "\n"
	}
	var sig []byte
	var err error
	if m.SignatureVersion == "1" {
		sum := sha1.Sum([]byte(canonical)) //nolint:gosec // what version 1 is
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA1, sum[:])
	} else {
		sum := sha256.Sum256([]byte(canonical))
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	}
	if err != nil {
		panic(err)
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// SESBounce is an SES bounce notification (the SNS Message) of bounceType for email, the mail
// having had Message-ID messageID ("" leaves the headers out).
func SESBounce(email, bounceType, messageID string) string {
	mail := map[string]any{"messageId": "0102018c-ses-id", "destination": []string{email}}
	if messageID != "" {
		mail["headers"] = []map[string]string{{"name": "From", "value": "club@shop.example"},
			{"name": "Message-ID", "value": "<" + messageID + ">"}}
		mail["commonHeaders"] = map[string]any{"messageId": "<" + messageID + ">"}
	}
	b, _ := json.Marshal(map[string]any{"notificationType": "Bounce",
		"bounce": map[string]any{"bounceType": bounceType, "bounceSubType": "General",
			"bouncedRecipients": []map[string]string{{"emailAddress": email, "action": "failed", "status": "5.1.1",
				"diagnosticCode": "smtp; 550 5.1.1 user unknown"}}},
		"mail": mail})
	return string(b)
}

// SESComplaint is an SES complaint notification about the mail to email.
func SESComplaint(email, messageID string) string {
	b, _ := json.Marshal(map[string]any{"notificationType": "Complaint",
		"complaint": map[string]any{"complaintFeedbackType": "abuse",
			"complainedRecipients": []map[string]string{{"emailAddress": email}}},
		"mail": map[string]any{"messageId": "0102018c-ses-id",
			"headers": []map[string]string{{"name": "Message-ID", "value": "<" + messageID + ">"}}}})
	return string(b)
}

// SendGrid signs SendGrid Event Webhook requests.
type SendGrid struct {
	key *ecdsa.PrivateKey
	// PublicKey is the verification key as SendGrid's dashboard shows it (base64 DER).
	PublicKey string
}

// NewSendGrid makes a P-256 key.
func NewSendGrid() (*SendGrid, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &SendGrid{key: key, PublicKey: base64.StdEncoding.EncodeToString(der)}, nil
}

// Sign returns the signature and timestamp headers' values for body posted at ts.
func (s *SendGrid) Sign(body []byte, ts time.Time) (signature, timestamp string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	sum := sha256.Sum256(append([]byte(timestamp), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, sum[:])
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(sig), timestamp
}

// Mailgun signs Mailgun webhooks with Key.
type Mailgun struct{ Key string }

// Body is a signed Mailgun webhook body for eventData, signed at ts with token.
func (m Mailgun) Body(eventData map[string]any, ts time.Time, token string) []byte {
	timestamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(m.Key))
	mac.Write([]byte(timestamp + token))
	b, err := json.Marshal(map[string]any{
		"signature":  map[string]string{"timestamp": timestamp, "token": token, "signature": hex.EncodeToString(mac.Sum(nil))},
		"event-data": eventData})
	if err != nil {
		panic(err)
	}
	return b
}

// MailgunFailed is the event-data of a failed delivery.
func MailgunFailed(id, email, severity, messageID string) map[string]any {
	return map[string]any{"id": id, "event": "failed", "severity": severity, "reason": "bounce", "recipient": email,
		"timestamp": 1521233195.375624, "message": map[string]any{"headers": map[string]string{"message-id": messageID}},
		"delivery-status": map[string]any{"code": 550, "message": "5.1.1 The email account does not exist", "description": ""}}
}

// MailgunComplained is the event-data of a complaint.
func MailgunComplained(id, email, messageID string) map[string]any {
	return map[string]any{"id": id, "event": "complained", "recipient": email,
		"message": map[string]any{"headers": map[string]string{"message-id": messageID}}}
}

// PostmarkBounce is a Postmark bounce webhook record.
func PostmarkBounce(id int64, email, typ string) []byte {
	return []byte(fmt.Sprintf(`{"RecordType":"Bounce","ID":%d,"Type":%q,"TypeCode":1,"Name":"Hard bounce",
		"MessageID":"883953f4-6105-42a2-a16a-77a8eac79483","ServerID":23,"MessageStream":"outbound",
		"Description":"The server was unable to deliver your message","Details":"550 user unknown",
		"Email":%q,"From":"club@shop.example","BouncedAt":"2026-12-06T06:00:00Z","Inactive":true}`, id, typ, email))
}

// PostmarkComplaint is a Postmark spam complaint webhook record.
func PostmarkComplaint(id int64, email string) []byte {
	return []byte(fmt.Sprintf(`{"RecordType":"SpamComplaint","ID":%d,"Type":"SpamComplaint","TypeCode":512,
		"Email":%q,"From":"club@shop.example","BouncedAt":"2026-12-06T06:00:00Z"}`, id, email))
}
