package mailer

import (
	"bytes"
	"errors"
	"net/textproto"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// sendPipelined delivers msg on c as go-mail's SendWithSMTPClient does (with WithoutNoop and
// WithoutRset), but with MAIL, RCPT and DATA written together and their replies read after
// (RFC 2920 PIPELINING, which the caller has checked the relay offers): one write and one wait
// for the envelope instead of three of each. Those round trips were a quarter of the server's
// CPU while sending (system calls and the goroutine waking for each reply; docs/benchmarks.md,
// "Server CPU per mail"). The commands, the message's bytes and what is done after a refusal
// are go-mail's: the same MAIL parameters, RSET after a refused MAIL or RCPT, nothing sent
// after DATA unless the relay answered 354. Errors carry go-mail's reasons (txError), so that
// attempt's redial and classify read both paths alike.
func sendPipelined(c *smtp.Client, msg *mail.Msg, timeout time.Duration) error {
	// go-mail's connection check without NOOP: the deadline of this exchange.
	if err := c.UpdateDeadline(timeout); err != nil {
		return newTxError(mail.ErrConnCheck, err, msg)
	}
	from, err := msg.GetSender(false)
	if err != nil {
		return newTxError(mail.ErrGetSender, err, msg)
	}
	rcpts, err := msg.GetRecipients()
	if err != nil {
		return newTxError(mail.ErrGetRcpts, err, msg)
	}
	// go-mail's Client.Mail and Rcpt refuse a line break before sending anything.
	if strings.ContainsAny(from, "\r\n") {
		return newTxError(mail.ErrSMTPMailFrom, errLineBreak, msg)
	}
	for _, rcpt := range rcpts {
		if strings.ContainsAny(rcpt, "\r\n") {
			return newTxError(mail.ErrSMTPRcptTo, errLineBreak, msg)
		}
	}

	w := c.Text.W
	w.WriteString("MAIL FROM:")
	w.WriteString(from)
	// The parameters go-mail's Client.Mail adds (no DSN here: the client never asks for one).
	if ok, _ := c.Extension("8BITMIME"); ok {
		w.WriteString(" BODY=8BITMIME")
	}
	if ok, _ := c.Extension("SMTPUTF8"); ok {
		w.WriteString(" SMTPUTF8")
	}
	w.WriteString("\r\n")
	for _, rcpt := range rcpts {
		w.WriteString("RCPT TO:")
		w.WriteString(rcpt)
		w.WriteString("\r\n")
	}
	w.WriteString("DATA\r\n")
	if err := w.Flush(); err != nil {
		// Nothing of the mail reached the relay: as a MAIL that met a broken connection.
		return newTxError(mail.ErrSMTPMailFrom, err, msg)
	}

	// Every command gets its reply, in order; the first refusal is the mail's error. A reply
	// that is not an SMTP reply (EOF, timeout) ends the exchange: the connection is gone.
	var refused *txError
	if _, _, err := c.Text.ReadResponse(250); err != nil {
		if refused = newTxError(mail.ErrSMTPMailFrom, err, msg); !isReply(err) {
			return refused
		}
	}
	for _, rcpt := range rcpts {
		if _, _, err := c.Text.ReadResponse(25); err != nil {
			if !isReply(err) {
				return firstOf(refused, newTxError(mail.ErrSMTPRcptTo, err, msg))
			}
			if refused == nil {
				refused = newTxError(mail.ErrSMTPRcptTo, err, msg)
			}
			if refused.reason == mail.ErrSMTPRcptTo {
				refused.rcpts = append(refused.rcpts, rcpt)
			}
		}
	}
	_, _, err = c.Text.ReadResponse(354)
	if err != nil && !isReply(err) {
		return firstOf(refused, newTxError(mail.ErrSMTPData, err, msg))
	}
	if refused != nil {
		if err == nil {
			// DATA accepted after a refusal: one recipient of several was refused (go-mail
			// would have sent no DATA then, and delivered nothing), or a relay that accepts
			// DATA with no recipient. Ending the data, even empty, would deliver a mail, so the
			// connection is closed instead, which abandons the transaction; attempt redials.
			_ = c.Close()
			return refused
		}
		// As go-mail does after a refused MAIL or RCPT.
		if resetErr := c.Reset(); resetErr != nil {
			refused.errs = append(refused.errs, resetErr)
		}
		return refused
	}
	if err != nil {
		return newTxError(mail.ErrSMTPData, err, msg)
	}

	// The message is written into a buffer, then dot-stuffed onto the connection in lines
	// (writeDotStuffed: the bytes textproto's DotWriter would write, without its state machine
	// a byte at a time).
	buf := messageBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledMessage {
			messageBuffers.Put(buf)
		}
	}()
	if _, err := msg.WriteTo(buf); err != nil {
		return newTxError(mail.ErrWriteContent, err, msg)
	}
	if err := writeDotStuffed(c.Text.W, buf.Bytes()); err != nil {
		return newTxError(mail.ErrWriteContent, err, msg)
	}
	_ = c.Text.W.Flush() // as go-mail's DataCloser.Close: the reply tells
	if _, _, err := c.Text.ReadResponse(250); err != nil {
		return newTxError(mail.ErrSMTPDataClose, err, msg)
	}
	return nil
}

var errLineBreak = errors.New("smtp: A line must not contain CR or LF")

// isReply tells whether err is the relay's reply (as opposed to a broken connection).
func isReply(err error) bool {
	var reply *textproto.Error
	return errors.As(err, &reply)
}

func firstOf(refused, err *txError) *txError {
	if refused != nil {
		return refused
	}
	return err
}

// txError is a failed pipelined transaction, worded as go-mail's SendError (whose fields a
// caller cannot set): the step that failed (go-mail's reason), the reply code when the relay
// gave a 4xx or 5xx one, and the errors met.
type txError struct {
	reason mail.SendErrReason
	code   int
	errs   []error
	rcpts  []string
	msgID  string
}

func newTxError(reason mail.SendErrReason, err error, msg *mail.Msg) *txError {
	e := &txError{reason: reason, errs: []error{err}, msgID: msg.GetMessageID()}
	var reply *textproto.Error
	if errors.As(err, &reply) && reply.Code >= 400 && reply.Code < 600 {
		e.code = reply.Code
	}
	return e
}

func (e *txError) Error() string {
	var b strings.Builder
	b.WriteString(e.reason.String())
	for i, err := range e.errs {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(err.Error())
	}
	if len(e.rcpts) > 0 {
		b.WriteString(", affected recipient(s): ")
		b.WriteString(strings.Join(e.rcpts, ", "))
	}
	if e.msgID != "" {
		b.WriteString(", affected message ID: ")
		b.WriteString(e.msgID)
	}
	return b.String()
}

// sendFailure is the step that failed and the relay's reply code of a failed send, by either
// path (go-mail's SendError or txError); ok is false for any other error.
func sendFailure(err error) (reason mail.SendErrReason, code int, ok bool) {
	var tx *txError
	if errors.As(err, &tx) {
		return tx.reason, tx.code, true
	}
	var sendErr *mail.SendError
	if errors.As(err, &sendErr) {
		return sendErr.Reason, sendErr.ErrorCode(), true
	}
	return 0, 0, false
}
