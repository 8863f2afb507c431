package mailer_test

import (
	"context"
	"testing"

	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/campaigns/mailer/smtptest"
	"github.com/regulars/regulars/internal/cputime"
)

// BenchmarkSMTPSend is one mail through the SMTP sender to the in-process test server over
// loopback, on one pooled connection, pipelined and one command at a time: the relay's side
// (go-smtp, discarding the mail) runs in the same process, so ns/op and allocs/op are both
// sides'; compare the two within one run (docs/benchmarks.md, "Server CPU per mail").
func BenchmarkSMTPSend(b *testing.B) {
	for _, way := range []struct {
		name string
		opts []mailer.Option
	}{{"pipelined", nil}, {"one-at-a-time", []mailer.Option{mailer.WithoutPipelining()}}} {
		b.Run(way.name, func(b *testing.B) {
			server := smtptest.New(b, smtptest.WithDiscard())
			cfg, err := mailer.ParseSMTPURL(server.URL())
			if err != nil {
				b.Fatal(err)
			}
			sender, err := mailer.NewSMTP(cfg, append([]mailer.Option{mailer.WithPoolSize(1), mailer.WithHELO("bench.localhost")}, way.opts...)...)
			if err != nil {
				b.Fatal(err)
			}
			defer sender.Close()
			m := newsletter("bench@shop.example", "kari@example.org")
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				if err := sender.Send(context.Background(), m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
