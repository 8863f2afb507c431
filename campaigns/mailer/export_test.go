package mailer

// WithoutPipelining makes the SMTP sender send one command at a time, as to a relay that does
// not offer PIPELINING, so that tests cover both paths against the same test server.
func WithoutPipelining() Option {
	return func(o *options) { o.noPipelining = true }
}
