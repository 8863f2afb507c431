package handlers

import "time"

// DefaultJoinRate is how many join submissions one IP may make per minute when
// ClubOptions.JoinRate is 0 (REGULARS_JOIN_RATE's default).
const DefaultJoinRate = 10

// ClubOptions configure the public club pages (join, confirm, preferences, unsubscribe) and the
// tracked links of campaign mail.
type ClubOptions struct {
	// Secret signs and verifies the tokens in mail links (REGULARS_SECRET). Without one no
	// member link and no tracked link is accepted.
	Secret []byte
	// BaseURL is the public address of the server, for absolute links and Secure cookies
	// (REGULARS_BASE_URL).
	BaseURL string
	// ConfirmTTL is how long a confirmation link is valid; unconfirmed sign-ups are purged after it.
	ConfirmTTL time.Duration
	// JoinRate is how many join submissions one IP may make per minute (burst the same); 0:
	// DefaultJoinRate.
	JoinRate int
	// MailQueued is called after a request queued club mail, to wake the sender at once.
	MailQueued func()
}
