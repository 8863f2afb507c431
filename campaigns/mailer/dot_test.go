package mailer

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net/textproto"
	"testing"
)

// TestWriteDotStuffedWritesWhatTheDotWriterWrites compares writeDotStuffed with net/textproto's
// DotWriter (and its Close) on chosen and random contents made of the bytes its states turn on.
func TestWriteDotStuffedWritesWhatTheDotWriterWrites(t *testing.T) {
	inputs := []string{"", ".", "\n", "\r", "\r\n", "\r\r\n", "\r\r\r\n", ".\r\n.", "a\nb", "a\r\n.b\r\n",
		"..\r\n..", "a\r", "a\r\r", "\n.\n.\r\n", "From: x\r\n\r\n.\r\nend\r\n", "x\r.\r\n"}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{'\r', '\n', '.', 'a', ' '}
	for range 5000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		var want bytes.Buffer
		tw := textproto.NewWriter(bufio.NewWriter(&want))
		dw := tw.DotWriter()
		if _, err := dw.Write([]byte(in)); err != nil {
			t.Fatal(err)
		}
		if err := dw.Close(); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		bw := bufio.NewWriterSize(&got, 16) // small, so that lines span flushes
		if err := writeDotStuffed(bw, []byte(in)); err != nil {
			t.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Fatalf("%q: wrote %q, the DotWriter %q", in, got.String(), want.String())
		}
	}
}

// BenchmarkDotStuffing is the content of DATA for a 4 KB message of 76-character lines:
// writeDotStuffed against net/textproto's DotWriter.
func BenchmarkDotStuffing(b *testing.B) {
	msg := bytes.Repeat([]byte("Hello Kari, forty new LPs arrived this week, from jazz to krautrock. See=\r\n"), 55)
	bw := bufio.NewWriter(io.Discard)
	b.Run("lines", func(b *testing.B) {
		for b.Loop() {
			_ = writeDotStuffed(bw, msg)
			_ = bw.Flush()
		}
	})
	b.Run("textproto", func(b *testing.B) {
		tw := textproto.NewWriter(bw)
		for b.Loop() {
			dw := tw.DotWriter()
			_, _ = dw.Write(msg)
			_ = dw.Close()
		}
	})
}
