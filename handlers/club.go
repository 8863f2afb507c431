package handlers

import "time"

// ClubOptions configure the public club pages (join, confirm, preferences, unsubscribe).
type ClubOptions struct {
	// Secret signs and verifies the tokens in mail links (REGULARS_SECRET).
	Secret []byte
	// BaseURL is the public address of the server, for absolute links (REGULARS_BASE_URL).
	BaseURL string
	// ConfirmTTL is how long a confirmation link is valid; unconfirmed sign-ups are purged after it.
	ConfirmTTL time.Duration
	// JoinRate is how many join submissions one IP may make per minute (burst the same); 0: 10.
	JoinRate int
	// MailQueued is called after a request queued club mail, to wake the sender at once.
	MailQueued func()
}

// SetClub configures the club pages; without it they answer with a default configuration whose
// secret is random per process (fine for tests of the API alone).
func (s *Server) SetClub(o ClubOptions) { s.club = o }
