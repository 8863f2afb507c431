package dispatch

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/internal/cputime"
	"github.com/regulars/regulars/models/dbtest"
	"github.com/wneessen/go-mail"
)

// BenchmarkMail is the server's own CPU for one campaign mail, network excluded, beside its
// ceiling in the same run (docs/benchmarks.md, "Per-mail CPU of building a mail"):
//
//   - ours: Sender.deliver for one claimed recipient, as a worker runs it: the member's signed
//     links, the render of cmd/benchsend's campaign (subject, HTML and text templates under the
//     sandbox, the footer), the click-tracking rewrite of a real tracking.Tracker, and the
//     mailer building the message (List-Unsubscribe with one-click, Message-ID) and writing it
//     out (mailer.Discard);
//   - bare: go-mail alone building and writing the very message ours produced (its subject,
//     bodies and headers, taken from one of ours), the cheapest way to put those bytes out.
//
// Both with and without a DKIM signature (Ed25519). Compare ns/op and allocs/op within one run;
// the machine is shared.
func BenchmarkMail(b *testing.B) {
	ctx := context.Background()
	db := dbtest.New(b)
	html, text := `<h1>New records are in</h1><p>Hello {{.Member.FirstName}}, forty new LPs arrived this week, `+
		`from jazz to krautrock.</p><p><a href="https://shop.example/new">See them</a> before Saturday.</p>`,
		"Hello {{.Member.FirstName}}, forty new LPs arrived this week, from jazz to krautrock.\n"+
			"See them before Saturday: https://shop.example/new"
	name, subject := "Bench", "Hello {{.Member.FirstName}}, new records are in"
	camp, err := campaigns.Create(ctx, db, testFrom, campaigns.Input{Name: &name, Subject: &subject, HTML: &html, Text: &text})
	if err != nil {
		b.Fatal(err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	st := runState{RunStatus: RunStatus{Status: "sending", CampaignID: camp.ID, UpdatedAt: camp.UpdatedAt}}
	member := ClaimedMember{Data: campaigns.MemberData{FirstName: "Kari", Name: "Kari Nordmann",
		Card: "7012345678908", HomeStore: "oslo-1", Language: "en"}, Mailable: true}

	for _, signed := range []bool{false, true} {
		var opts []mailer.Option
		kind := "plain"
		if signed {
			opts, kind = append(opts, mailer.WithDKIM("shop.example", "mail", key)), "dkim"
		}
		// One mail of ours, kept to give the bare loop the same message.
		var sample *mailer.Message
		keep := &keepMailer{Sender: mailer.NewDiscard(opts...), keep: &sample}
		s := &Sender{Queue: &PostgresQueue{DB: db}, Mail: keep, BaseURL: "https://club.example",
			Secret: []byte("0123456789abcdef0123456789abcdef"), DefaultFrom: testFrom}
		s.init()
		r := Claimed{RunID: 1, MemberID: 1, Email: "kari@example.com", Attempts: 1}
		if ok, err := s.deliver(ctx, r, st, member); !ok || err != nil {
			b.Fatalf("deliver: %v %v", ok, err)
		}
		s.Mail = keep.Sender

		b.Run(kind+"/ours", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.MemberID++
				if ok, err := s.deliver(ctx, r, st, member); !ok || err != nil {
					b.Fatalf("deliver: %v %v", ok, err)
				}
			}
		})
		var signer *mail.DKIMSigner
		if signed {
			signer = mail.NewDKIMSigner("shop.example", "mail", key)
		}
		b.Run(kind+"/bare", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bareMail(sample, signer); err != nil {
					b.Fatal(err)
				}
			}
		})
		// One of each in turn, so that both see the same machine: the ratio of their times is
		// what to compare between runs (the machine's load moves ns/op by ±40%).
		// The times are the process's CPU time (user and system, GC included), which the other
		// processes on the machine do not inflate as they do wall time; GC started by one side's
		// garbage may run during the other's turn.
		b.Run(kind+"/pair", func(b *testing.B) {
			var ours, bare time.Duration
			for b.Loop() {
				c0 := cputime.Process()
				r.MemberID++
				if ok, err := s.deliver(ctx, r, st, member); !ok || err != nil {
					b.Fatalf("deliver: %v %v", ok, err)
				}
				c1 := cputime.Process()
				if err := bareMail(sample, signer); err != nil {
					b.Fatal(err)
				}
				ours, bare = ours+c1-c0, bare+cputime.Process()-c1
			}
			b.ReportMetric(float64(ours)/float64(b.N), "ours-cpu-ns/mail")
			b.ReportMetric(float64(bare)/float64(b.N), "bare-cpu-ns/mail")
			b.ReportMetric(float64(ours)/float64(bare), "ours/bare")
		})
	}
}

// keepMailer keeps the first message it sends.
type keepMailer struct {
	mailer.Sender
	keep **mailer.Message
}

func (k *keepMailer) Send(ctx context.Context, m *mailer.Message) error {
	if *k.keep == nil {
		*k.keep = m
	}
	return k.Sender.Send(ctx, m)
}

// bareMail builds m with go-mail alone, as cmd/benchsend's bare loop does, and writes it out.
func bareMail(m *mailer.Message, signer *mail.DKIMSigner) error {
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.From(m.From); err != nil {
		return err
	}
	if err := msg.To(m.To...); err != nil {
		return err
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(m.MessageID)
	msg.SetDateWithValue(time.Now())
	for _, h := range m.Headers {
		msg.SetGenHeader(mail.Header(h.Name), h.Value)
	}
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	if signer != nil {
		msg.SetDKIM(signer)
	}
	if _, err := msg.GetSender(false); err != nil {
		return err
	}
	if _, err := msg.GetRecipients(); err != nil {
		return err
	}
	_, err := msg.WriteTo(io.Discard)
	return err
}
