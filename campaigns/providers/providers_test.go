package providers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/providers"
	"github.com/regulars/regulars/campaigns/providers/providertest"
	"github.com/regulars/regulars/models"
)

var now = time.Date(2026, 12, 6, 6, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if models.ErrorCode(err) != code {
		t.Fatalf("error %v, want %s", err, code)
	}
}

func TestSendGrid(t *testing.T) {
	sg, err := providertest.NewSendGrid()
	if err != nil {
		t.Fatal(err)
	}
	v, err := providers.NewSendGridVerifier(sg.PublicKey, clock)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`[{"email":"a@x.example","event":"bounce","type":"bounce","sg_event_id":"ev1","smtp-id":"<run-1.member-2@shop.example>","status":"5.1.1","reason":"550 no such user"},
		{"email":"b@x.example","event":"bounce","type":"blocked","sg_event_id":"ev2"},
		{"email":"c@x.example","event":"dropped","reason":"Bounced Address","sg_event_id":"ev3"},
		{"email":"d@x.example","event":"spamreport","sg_event_id":"ev4"},
		{"email":"e@x.example","event":"delivered","sg_event_id":"ev5"}]`)
	sig, ts := sg.Sign(body, now.Add(-time.Minute))
	events, err := v.Events(body, sig, ts)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []providers.Kind{providers.HardBounce, providers.SoftBounce, providers.HardBounce, providers.Complaint}
	if len(events) != len(kinds) {
		t.Fatalf("%d events: %+v", len(events), events)
	}
	for i, k := range kinds {
		if events[i].Kind != k || events[i].Provider != providers.SendGrid {
			t.Errorf("event %d: %+v, want %s", i, events[i], k)
		}
	}
	if events[0].MessageID != "run-1.member-2@shop.example" || events[0].Keys[0] != "ev1" {
		t.Errorf("first event %+v", events[0])
	}

	// Forged: another body under the signature, another key's signature, none at all.
	_, err = v.Events([]byte(strings.Replace(string(body), "a@x", "z@x", 1)), sig, ts)
	wantCode(t, err, models.EUNAUTHORIZED)
	other, _ := providertest.NewSendGrid()
	osig, ots := other.Sign(body, now)
	_, err = v.Events(body, osig, ots)
	wantCode(t, err, models.EUNAUTHORIZED)
	_, err = v.Events(body, "", "")
	wantCode(t, err, models.EUNAUTHORIZED)
	// The timestamp is signed: moving it breaks the signature.
	_, err = v.Events(body, sig, ots)
	wantCode(t, err, models.EUNAUTHORIZED)
	// Replayed: a genuine request posted again after the window.
	rsig, rts := sg.Sign(body, now.Add(-providers.SendGridWindow-time.Second))
	_, err = v.Events(body, rsig, rts)
	wantCode(t, err, models.EUNAUTHORIZED)

	if _, err := providers.NewSendGridVerifier("bm90IGEga2V5", clock); err == nil {
		t.Error("a key that is not one was taken")
	}
}

func TestMailgun(t *testing.T) {
	mg := providertest.Mailgun{Key: "key-test-signing"}
	set, err := providers.New(providers.Settings{MailgunKey: mg.Key, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	v := set.Mailgun
	body := mg.Body(providertest.MailgunFailed("mg1", "a@x.example", "permanent", "run-3.member-4@shop.example"), now, "tok1")
	events, err := v.Events(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Kind != providers.HardBounce || events[0].MessageID != "run-3.member-4@shop.example" ||
		events[0].Email != "a@x.example" || len(events[0].Keys) != 2 {
		t.Fatalf("events %+v", events)
	}
	events, err = v.Events(mg.Body(providertest.MailgunComplained("mg2", "a@x.example", ""), now, "tok2"))
	if err != nil || len(events) != 1 || events[0].Kind != providers.Complaint {
		t.Fatalf("complaint: %+v %v", events, err)
	}
	events, err = v.Events(mg.Body(providertest.MailgunFailed("mg3", "a@x.example", "temporary", ""), now, "tok3"))
	if err != nil || len(events) != 0 {
		t.Fatalf("temporary failure: %+v %v", events, err)
	}

	// Forged: another key, a changed signature, no signature.
	_, err = v.Events(providertest.Mailgun{Key: "other"}.Body(providertest.MailgunComplained("mg4", "a@x.example", ""), now, "tok4"))
	wantCode(t, err, models.EUNAUTHORIZED)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	m["signature"].(map[string]any)["timestamp"] = "1"
	forged, _ := json.Marshal(m)
	_, err = v.Events(forged)
	wantCode(t, err, models.EUNAUTHORIZED)
	_, err = v.Events([]byte(`{"event-data":{"event":"complained","recipient":"a@x.example"}}`))
	wantCode(t, err, models.EUNAUTHORIZED)
	// Replayed after the window.
	_, err = v.Events(mg.Body(providertest.MailgunComplained("mg5", "a@x.example", ""), now.Add(-providers.MailgunWindow-time.Second), "tok5"))
	wantCode(t, err, models.EUNAUTHORIZED)
}

func TestPostmark(t *testing.T) {
	if _, err := providers.NewPostmarkVerifier("user-without-password"); err == nil {
		t.Error("an auth without a colon was taken")
	}
	v, err := providers.NewPostmarkVerifier("postmark:correct-horse-battery")
	if err != nil {
		t.Fatal(err)
	}
	events, err := v.Events(providertest.PostmarkBounce(42, "a@x.example", "HardBounce"), "postmark", "correct-horse-battery", true)
	if err != nil || len(events) != 1 || events[0].Kind != providers.HardBounce || events[0].Keys[0] != "42" {
		t.Fatalf("hard bounce: %+v %v", events, err)
	}
	events, err = v.Events(providertest.PostmarkBounce(43, "a@x.example", "AutoResponder"), "postmark", "correct-horse-battery", true)
	if err != nil || len(events) != 0 {
		t.Fatalf("auto-responder: %+v %v", events, err)
	}
	events, err = v.Events(providertest.PostmarkComplaint(44, "a@x.example"), "postmark", "correct-horse-battery", true)
	if err != nil || len(events) != 1 || events[0].Kind != providers.Complaint {
		t.Fatalf("complaint: %+v %v", events, err)
	}
	for _, c := range []struct {
		user, pass string
		ok         bool
	}{{"postmark", "wrong", true}, {"other", "correct-horse-battery", true}, {"", "", false}} {
		_, err := v.Events(providertest.PostmarkComplaint(45, "a@x.example"), c.user, c.pass, c.ok)
		wantCode(t, err, models.EUNAUTHORIZED)
	}
}

func TestSNS(t *testing.T) {
	ctx := context.Background()
	signer, err := providertest.NewSNS(now)
	if err != nil {
		t.Fatal(err)
	}
	v := providers.NewSNSVerifier([]string{providertest.TopicARN}, signer.Fetch, clock)
	for _, version := range []string{"1", "2"} {
		body := signer.Notification("m-"+version, providertest.SESBounce("a@x.example", "Permanent", "run-5.member-6@shop.example"), now.Add(-time.Minute), version)
		m, err := v.Verify(ctx, body)
		if err != nil {
			t.Fatalf("version %s: %v", version, err)
		}
		events, err := providers.SESEvents(m)
		if err != nil || len(events) != 1 || events[0].Kind != providers.HardBounce ||
			events[0].MessageID != "run-5.member-6@shop.example" || events[0].Keys[0] != "m-"+version+"/a@x.example" {
			t.Fatalf("version %s: %+v %v", version, events, err)
		}
	}
	if got := signer.Fetched(); len(got) != 1 || got[0] != providertest.CertURL {
		t.Errorf("fetched %v, want the certificate once (cached)", got)
	}

	m, err := v.Verify(ctx, signer.Notification("m-3", providertest.SESComplaint("b@x.example", "run-5.member-7@shop.example"), now, "2"))
	if err != nil {
		t.Fatal(err)
	}
	if events, err := providers.SESEvents(m); err != nil || len(events) != 1 || events[0].Kind != providers.Complaint {
		t.Fatalf("complaint: %+v %v", events, err)
	}
	m, err = v.Verify(ctx, signer.Notification("m-4", providertest.SESBounce("a@x.example", "Transient", ""), now, "2"))
	if err != nil {
		t.Fatal(err)
	}
	if events, _ := providers.SESEvents(m); len(events) != 1 || events[0].Kind != providers.SoftBounce || events[0].MessageID != "" {
		t.Fatalf("transient: %+v", events)
	}

	// Forged: a changed message, a signature by another key, no signature, another topic.
	good := signer.Notification("m-5", providertest.SESComplaint("b@x.example", ""), now, "2")
	_, err = v.Verify(ctx, []byte(strings.Replace(string(good), "b@x.example", "victim@x.example", 1)))
	wantCode(t, err, models.EUNAUTHORIZED)
	other, _ := providertest.NewSNS(now)
	_, err = v.Verify(ctx, other.Notification("m-6", providertest.SESComplaint("b@x.example", ""), now, "2"))
	wantCode(t, err, models.EUNAUTHORIZED)
	var raw map[string]any
	_ = json.Unmarshal(good, &raw)
	delete(raw, "Signature")
	unsigned, _ := json.Marshal(raw)
	_, err = v.Verify(ctx, unsigned)
	wantCode(t, err, models.EUNAUTHORIZED)
	foreign := providers.SNSMessage{Type: providers.SNSNotification, MessageID: "m-7", TopicArn: "arn:aws:sns:eu-west-1:999:evil",
		Message: providertest.SESComplaint("b@x.example", ""), Timestamp: now.Format(time.RFC3339), SignatureVersion: "2",
		SigningCertURL: providertest.CertURL}
	_, err = v.Verify(ctx, signer.Sign(foreign))
	wantCode(t, err, models.EUNAUTHORIZED)

	// A certificate anywhere but https://sns.<region>.amazonaws.com is refused before any fetch.
	before := len(signer.Fetched())
	for _, u := range []string{"http://sns.eu-west-1.amazonaws.com/c.pem", "https://sns.eu-west-1.amazonaws.com.evil.example/c.pem",
		"https://evil.example/sns.eu-west-1.amazonaws.com/c.pem", "https://sns.eu-west-1.amazonaws.com:8443/c.pem",
		"https://user@sns.eu-west-1.amazonaws.com/c.pem", "https://s3.eu-west-1.amazonaws.com/c.pem",
		"https://sns.eu-west-1.amazonaws.com/?Action=Publish&x=SimpleNotificationService-1.pem",
		"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem?x=1"} {
		m := foreign
		m.TopicArn, m.SigningCertURL = providertest.TopicARN, u
		_, err := v.Verify(ctx, signer.Sign(m))
		wantCode(t, err, models.EUNAUTHORIZED)
	}
	if after := len(signer.Fetched()); after != before {
		t.Errorf("fetched %v for refused certificate URLs", signer.Fetched()[before:])
	}

	// Replayed: a genuine message older than the window.
	_, err = v.Verify(ctx, signer.Notification("m-8", providertest.SESComplaint("b@x.example", ""), now.Add(-providers.SNSWindow-time.Second), "2"))
	wantCode(t, err, models.EUNAUTHORIZED)

	// Subscription confirmation: the SubscribeURL is visited through the fetcher, on an SNS host only.
	sub := "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + providertest.TopicARN + "&Token=tok-1"
	m, err = v.Verify(ctx, signer.SubscriptionConfirmation(sub, now))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Confirm(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got := signer.Fetched(); got[len(got)-1] != sub {
		t.Errorf("last fetched %q, want the subscribe URL", got[len(got)-1])
	}
	m, err = v.Verify(ctx, signer.SubscriptionConfirmation("https://evil.example/?Action=ConfirmSubscription", now))
	if err != nil {
		t.Fatal(err)
	}
	n := len(signer.Fetched())
	wantCode(t, v.Confirm(ctx, m), models.EUNAUTHORIZED)
	if len(signer.Fetched()) != n {
		t.Error("a subscribe URL off the SNS hosts was visited")
	}
}

// TestSNSFetchesAtMostOneNewCertificateASecond: forged messages naming ever new certificate
// paths on an SNS host cannot make serve call out more than once a second; a cached
// certificate is never held back.
func TestSNSFetchesAtMostOneNewCertificateASecond(t *testing.T) {
	ctx := context.Background()
	signer, err := providertest.NewSNS(now)
	if err != nil {
		t.Fatal(err)
	}
	at := now
	v := providers.NewSNSVerifier([]string{providertest.TopicARN}, signer.Fetch, func() time.Time { return at })
	forged := func(path string) []byte {
		return signer.Sign(providers.SNSMessage{Type: providers.SNSNotification, MessageID: path, TopicArn: providertest.TopicARN,
			Message: providertest.SESComplaint("b@x.example", ""), Timestamp: now.Format(time.RFC3339), SignatureVersion: "2",
			SigningCertURL: "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-" + path + ".pem"})
	}
	_, err = v.Verify(ctx, forged("a1"))
	wantCode(t, err, models.EUNAUTHORIZED) // fetched: not a certificate
	_, err = v.Verify(ctx, forged("a2"))
	wantCode(t, err, models.EUNAUTHORIZED)
	if got := signer.Fetched(); len(got) != 1 {
		t.Fatalf("fetched %v within a second, want only the first", got)
	}
	at = at.Add(100 * time.Millisecond)
	if _, err := v.Verify(ctx, signer.Notification("m-1", providertest.SESComplaint("b@x.example", ""), now, "2")); err == nil {
		t.Fatal("a new certificate was fetched 0.1 s after another")
	}
	at = at.Add(time.Second)
	if _, err := v.Verify(ctx, signer.Notification("m-2", providertest.SESComplaint("b@x.example", ""), now, "2")); err != nil {
		t.Fatalf("a second later: %v", err)
	}
	_, err = v.Verify(ctx, forged("a3"))
	wantCode(t, err, models.EUNAUTHORIZED)
	if _, err := v.Verify(ctx, signer.Notification("m-3", providertest.SESComplaint("b@x.example", ""), now, "2")); err != nil {
		t.Fatalf("the cached certificate right after another fetch: %v", err)
	}
	if got := signer.Fetched(); len(got) != 2 || got[1] != providertest.CertURL {
		t.Errorf("fetched %v, want a1 and the real certificate", got)
	}
}
