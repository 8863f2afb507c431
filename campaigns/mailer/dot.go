package mailer

import (
	"bufio"
	"bytes"
	"sync"
)

// writeDotStuffed writes msg to w as the content of SMTP DATA, byte for byte what
// net/textproto's DotWriter writes for it followed by its Close (a leading dot doubled, a bare
// "\n" made "\r\n", the closing ".\r\n" on a line of its own), without going through the
// DotWriter's state machine one byte and one bufio.WriteByte at a time: whole lines are copied,
// found with bytes.IndexByte. It does not flush w.
//
// The DotWriter's states, as this follows them: at the beginning of a line a '.' is doubled;
// a '\n' gets a '\r' before it unless the DotWriter is in its "\r written" state, which a '\r'
// enters from any other state and leaves on the next byte (so before a '\n' that state holds
// exactly when the run of '\r's right before it is odd: "\r\r\n" becomes "\r\r\r\n").
func writeDotStuffed(w *bufio.Writer, msg []byte) error {
	if len(msg) == 0 {
		_, err := w.WriteString("\r\n.\r\n") // the DotWriter's Close in its initial state
		return err
	}
	for len(msg) > 0 {
		// At the beginning of a line.
		if msg[0] == '.' {
			w.WriteByte('.')
		}
		nl := bytes.IndexByte(msg, '\n')
		if nl < 0 {
			// The last line has no end: the DotWriter's Close ends it.
			w.Write(msg)
			if oddCRs(msg) {
				_, err := w.WriteString("\n.\r\n")
				return err
			}
			_, err := w.WriteString("\r\n.\r\n")
			return err
		}
		line := msg[:nl]
		w.Write(line)
		if !oddCRs(line) {
			w.WriteByte('\r')
		}
		if err := w.WriteByte('\n'); err != nil {
			return err
		}
		msg = msg[nl+1:]
	}
	_, err := w.WriteString(".\r\n")
	return err
}

// oddCRs tells whether b ends in an odd number of '\r's.
func oddCRs(b []byte) bool {
	n := 0
	for i := len(b) - 1; i >= 0 && b[i] == '\r'; i-- {
		n++
	}
	return n%2 == 1
}

// messageBuffers hold a message while it is written out (sendPipelined); one of over
// maxPooledMessage is left to the garbage collector rather than kept.
var messageBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledMessage = 1 << 20
