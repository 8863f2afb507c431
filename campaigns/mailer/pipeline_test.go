package mailer_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/campaigns/mailer/smtptest"
)

// TestPipelinedSendsWhatOneCommandAtATimeSends runs the same exchanges through both ways of
// sending, pipelined (the test server offers PIPELINING) and go-mail's one command at a time:
// the relay receives the same envelope and bytes (the MIME boundaries aside, which are random),
// a refusal gives the same error, and the connection stays usable after it (a refused RCPT
// or DATA is reset, not redialled).
func TestPipelinedSendsWhatOneCommandAtATimeSends(t *testing.T) {
	boundary := regexp.MustCompile(`[0-9a-f]{60,}`)
	type outcome struct {
		errs     []string
		received []string
		conns    int
	}
	run := func(t *testing.T, opts ...mailer.Option) outcome {
		server := smtptest.New(t)
		sender := newSMTPSender(t, server, append([]mailer.Option{mailer.WithRetry(1, time.Millisecond), mailer.WithPoolSize(1)}, opts...)...)
		var out outcome
		send := func(id string) {
			m := newsletter(id, "kari@example.org")
			m.Date = time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
			err := sender.Send(context.Background(), m)
			if err == nil {
				out.errs = append(out.errs, "")
				return
			}
			out.errs = append(out.errs, err.Error())
		}
		send("one@shop.example")
		server.FailRcpt(1, 550)
		send("rcpt550@shop.example")
		send("two@shop.example")
		server.FailRcpt(1, 451)
		send("rcpt451@shop.example")
		server.FailData(1, 554)
		send("data554@shop.example")
		send("three@shop.example")
		for _, m := range server.Messages() {
			out.received = append(out.received, m.From+" "+strings.Join(m.To, ",")+"\n"+boundary.ReplaceAllString(string(m.Data), "B"))
		}
		out.conns = server.Connections()
		return out
	}
	pipelined, oneByOne := run(t), run(t, mailer.WithoutPipelining())
	if len(pipelined.errs) != len(oneByOne.errs) {
		t.Fatalf("%d outcomes against %d", len(pipelined.errs), len(oneByOne.errs))
	}
	for i := range pipelined.errs {
		if pipelined.errs[i] != oneByOne.errs[i] {
			t.Errorf("mail %d: pipelined error %q, one command at a time %q", i, pipelined.errs[i], oneByOne.errs[i])
		}
	}
	if want := []string{"", "x", "", "x", "x", ""}; len(pipelined.errs) == len(want) {
		for i, w := range want {
			if (pipelined.errs[i] == "") != (w == "") {
				t.Errorf("mail %d: error %q, want an error: %v", i, pipelined.errs[i], w != "")
			}
		}
	}
	if len(pipelined.received) != 3 || len(oneByOne.received) != 3 {
		t.Fatalf("received %d and %d mails, want 3 each", len(pipelined.received), len(oneByOne.received))
	}
	for i := range pipelined.received {
		if pipelined.received[i] != oneByOne.received[i] {
			t.Errorf("mail %d differs:\npipelined:\n%s\none at a time:\n%s", i, pipelined.received[i], oneByOne.received[i])
		}
	}
	if pipelined.conns != 1 || oneByOne.conns != 1 {
		t.Errorf("connections: %d pipelined, %d one at a time; want 1 each (refusals reset, not redialled)", pipelined.conns, oneByOne.conns)
	}
}

// TestPipelinedSendToARelayThatRefusesMAIL: MAIL refused (AUTH required), then RCPT and DATA
// refused as its consequence: the error is MAIL's, as go-mail's.
func TestPipelinedSendToARelayThatRefusesMAIL(t *testing.T) {
	server := smtptest.New(t, smtptest.WithAuth("shop", "secret"))
	var errs [2]string
	for i, opts := range [][]mailer.Option{nil, {mailer.WithoutPipelining()}} {
		cfg, err := mailer.ParseSMTPURL(strings.Replace(server.URL(), "shop:secret@", "", 1))
		if err != nil {
			t.Fatal(err)
		}
		sender, err := mailer.NewSMTP(cfg, append([]mailer.Option{mailer.WithRetry(1, time.Millisecond)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		err = sender.Send(context.Background(), newsletter("noauth@shop.example", "kari@example.org"))
		if !mailer.IsPermanent(err) {
			t.Fatalf("err = %v, want a permanent failure", err)
		}
		errs[i] = err.Error()
		_ = sender.Close()
	}
	if errs[0] != errs[1] || !strings.Contains(errs[0], "MAIL FROM") {
		t.Errorf("pipelined %q, one at a time %q; want the same MAIL FROM error", errs[0], errs[1])
	}
}

// TestPipelinedSendDeliversNothingWhenOneRecipientIsRefused: with two recipients and the first
// refused, the relay accepts DATA (the pipelined DATA is already sent); go-mail would have sent
// no DATA, so the pipelined send abandons the transaction rather than end an empty one, and the
// next mail goes out on a new connection.
func TestPipelinedSendDeliversNothingWhenOneRecipientIsRefused(t *testing.T) {
	for _, opts := range [][]mailer.Option{nil, {mailer.WithoutPipelining()}} {
		server := smtptest.New(t)
		sender := newSMTPSender(t, server, append([]mailer.Option{mailer.WithRetry(1, time.Millisecond), mailer.WithPoolSize(1)}, opts...)...)
		server.FailRcpt(1, 550)
		m := newsletter("two@shop.example", "kari@example.org")
		m.To = append(m.To, "ola@example.org")
		if err := sender.Send(context.Background(), m); !mailer.IsPermanent(err) {
			t.Fatalf("err = %v, want a permanent failure", err)
		}
		if err := sender.Send(context.Background(), newsletter("next@shop.example", "kari@example.org")); err != nil {
			t.Fatalf("next mail: %v", err)
		}
		var got []string
		for _, m := range server.Messages() {
			got = append(got, strings.Join(m.To, ",")+" "+m.Header.Get("Message-Id"))
		}
		if len(got) != 1 || got[0] != "kari@example.org <next@shop.example>" {
			t.Fatalf("received %q, want only the next mail", got)
		}
	}
}
