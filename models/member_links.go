package models

// High-privilege member links. The preferences link travels in every campaign mail, whose HTML a
// marketer writes, so whoever holds it may only change harmless things (issue 10). Exporting the
// member's data, erasing the membership and granting marketing consent again need a link the
// member asks for on the preferences page: it is mailed to the member's own address, works for an
// hour, and works once.
//
// A request is a member_links row. The link's token is signed for the row's id with a purpose per
// action (LinkTokenPurpose), so the database holds nothing that works as a credential. Using the
// link sets used_at in the same transaction as the action: a link that fails half-way can be
// used again, one that succeeded cannot.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Actions a member link may do.
const (
	LinkExport  = "export"  // download everything held about the member
	LinkErase   = "erase"   // erase the membership
	LinkConsent = "consent" // grant marketing consent again
)

// Kinds of club mail that carry a member link (templates/mail/link_<action>.html|.txt).
const (
	MailLinkExport  = "link_export"
	MailLinkErase   = "link_erase"
	MailLinkConsent = "link_consent"
)

// MemberLinkTTL is how long a requested link works.
const MemberLinkTTL = time.Hour

// ErrLinkUsed is a member link that has done its action already.
var ErrLinkUsed = errors.New("link already used")

// linkMailKinds maps an action to the kind of mail that carries its link.
var linkMailKinds = map[string]string{LinkExport: MailLinkExport, LinkErase: MailLinkErase, LinkConsent: MailLinkConsent}

// LinkTokenPurpose is the token purpose of a link for action, "" for no such action. Each action
// has its own, so an export link cannot be replayed as an erase link.
func LinkTokenPurpose(action string) string {
	switch action {
	case LinkExport:
		return TokenLinkExport
	case LinkErase:
		return TokenLinkErase
	case LinkConsent:
		return TokenLinkConsent
	}
	return ""
}

// publicMailKinds are the club mails a stranger can make us send: the join form's and the link
// requests'. Together they share one hourly cap per mailbox.
var publicMailKinds = []string{MailConfirm, MailAlreadyMember, MailLinkExport, MailLinkErase, MailLinkConsent}

// MailboxKey is the mailbox an address delivers to, as far as the cap on public mail is
// concerned: lower case, and name+tag@domain counted as name@domain, the sub-addressing most
// providers offer.
func MailboxKey(email string) string {
	e := strings.ToLower(strings.TrimSpace(email))
	at := strings.LastIndexByte(e, '@')
	if at < 0 {
		return e
	}
	local, domain := e[:at], e[at:]
	if plus := strings.IndexByte(local, '+'); plus >= 0 {
		local = local[:plus]
	}
	return local + domain
}

// mayMailPublicly takes the mailbox's transaction lock and reports whether one more public mail
// may go to it this hour. The lock makes concurrent requests for name+1@ and name+2@ take turns,
// so the cap is exact.
func mayMailPublicly(ctx context.Context, tx pgx.Tx, mailbox string) (bool, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('club_mail:' || $1, 0))`, mailbox); err != nil {
		return false, fmt.Errorf("lock mailbox: %w", err)
	}
	var recent int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM club_mail WHERE mailbox = $1 AND kind = ANY($2)
		AND created_at > now() - interval '1 hour'`, mailbox, publicMailKinds).Scan(&recent); err != nil {
		return false, fmt.Errorf("count recent mail: %w", err)
	}
	return recent < MaxJoinMailsPerHour, nil
}

// MemberLink is one requested link.
type MemberLink struct {
	ID        int64
	MemberID  int64
	Action    string // Link*
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// LinkRequest is what RequestMemberLink did. Queued is false when the mailbox has had its
// hourly share of mail: the member is told the same either way.
type LinkRequest struct {
	LinkID int64
	Queued bool
}

// RequestMemberLink records a request for a link that does action for member id and queues the
// mail that carries it, to the member's own address in lang, in one transaction. Beyond the
// hourly cap on public mail to the mailbox nothing is recorded or queued. ENOTFOUND for a missing
// or erased member; EINVALID (field email) for a member without an email address.
func (db *DB) RequestMemberLink(ctx context.Context, id int64, action, lang string) (*LinkRequest, error) {
	kind, ok := linkMailKinds[action]
	if !ok {
		return nil, Errorf(EINVALID, "no link action %q", action)
	}
	now := db.Now()
	var res LinkRequest
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		lm, err := lockLiveMember(ctx, tx, id)
		if err != nil {
			return err
		}
		if lm.email == nil || *lm.email == "" {
			return &Error{Code: EINVALID, Message: "no email address",
				Fields: map[string]string{"email": "the member has no email address to send the link to"}}
		}
		ok, err := mayMailPublicly(ctx, tx, MailboxKey(*lm.email))
		if err != nil || !ok {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO member_links (member_id, action, created_at, expires_at)
			VALUES ($1, $2, $3, $4) RETURNING id`, id, action, now, now.Add(MemberLinkTTL)).Scan(&res.LinkID); err != nil {
			return fmt.Errorf("record %s link for member %d: %w", action, id, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO club_mail (kind, member_id, to_addr, language, mailbox, link_id)
			VALUES ($1, $2, $3, $4, $5, $6)`, kind, id, *lm.email, languageOr(lang), MailboxKey(*lm.email), res.LinkID); err != nil {
			return fmt.Errorf("queue %s mail for member %d: %w", kind, id, err)
		}
		res.Queued = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// FindMemberLink returns link id whatever its state; ENOTFOUND when there is none.
func (db *DB) FindMemberLink(ctx context.Context, id int64) (*MemberLink, error) {
	var l MemberLink
	err := db.Pool.QueryRow(ctx, `SELECT id, member_id, action, created_at, expires_at, used_at
		FROM member_links WHERE id = $1`, id).Scan(&l.ID, &l.MemberID, &l.Action, &l.CreatedAt, &l.ExpiresAt, &l.UsedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENOTFOUND, "no member link %d", id)
	}
	if err != nil {
		return nil, fmt.Errorf("find member link %d: %w", id, err)
	}
	return &l, nil
}

// Usable reports why link l cannot be used at now: ErrLinkUsed, ErrTokenExpired, or nil.
func (l *MemberLink) Usable(now time.Time) error {
	switch {
	case l.UsedAt != nil:
		return ErrLinkUsed
	case !now.Before(l.ExpiresAt):
		return ErrTokenExpired
	}
	return nil
}

// useLink marks link id for action used inside tx and returns its member. The UPDATE's WHERE is
// the single-use check: of two concurrent uses the second waits for the first's row lock and then
// finds used_at set. ENOTFOUND for no such link (or one for another action), ErrLinkUsed,
// ErrTokenExpired.
func useLink(ctx context.Context, tx pgx.Tx, id int64, action string, now time.Time) (int64, error) {
	var memberID int64
	err := tx.QueryRow(ctx, `UPDATE member_links SET used_at = $3
		WHERE id = $1 AND action = $2 AND used_at IS NULL AND expires_at > $3
		RETURNING member_id`, id, action, now).Scan(&memberID)
	if err == nil {
		return memberID, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("use member link %d: %w", id, err)
	}
	var l MemberLink
	err = tx.QueryRow(ctx, `SELECT action, expires_at, used_at FROM member_links WHERE id = $1`, id).Scan(&l.Action, &l.ExpiresAt, &l.UsedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || (err == nil && l.Action != action):
		return 0, Errorf(ENOTFOUND, "no %s link %d", action, id)
	case err != nil:
		return 0, fmt.Errorf("use member link %d: %w", id, err)
	}
	if err := l.Usable(now); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("use member link %d: not usable", id) // unreachable: the UPDATE would have matched
}

// ExportMemberByLink uses export link id and returns the member's data. ENOTFOUND for no such
// link or an erased member; ErrLinkUsed; ErrTokenExpired.
func (db *DB) ExportMemberByLink(ctx context.Context, id int64) (*MemberExport, error) {
	l, err := db.FindMemberLink(ctx, id)
	if err != nil {
		return nil, err
	}
	// The tier is read before the transaction, on its own connection: it only reads, and a
	// transaction waiting for a second pooled connection could starve a small pool.
	tier, discount, err := db.FindMemberTier(ctx, l.MemberID)
	if err != nil {
		return nil, err
	}
	var out *MemberExport
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		memberID, err := useLink(ctx, tx, id, LinkExport, db.Now())
		if err != nil {
			return err
		}
		out, err = db.exportMember(ctx, tx, memberID, tier, discount)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// EraseMemberByLink uses erase link id and erases its member (see EraseMember). ENOTFOUND for no
// such link; ErrLinkUsed; ErrTokenExpired.
func (db *DB) EraseMemberByLink(ctx context.Context, id int64) error {
	return pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		memberID, err := useLink(ctx, tx, id, LinkErase, db.Now())
		if err != nil {
			return err
		}
		return eraseMember(ctx, tx, memberID)
	})
}

// GrantConsentByLink uses consent link id and records its member's marketing consent as
// confirmed: the member asked for the link on the preferences page and opened it from their own
// mailbox. textVersion names the wording on the page with the button; ev's source is
// "email_link" unless set. ENOTFOUND for no such link or an erased member; EINVALID for a member
// without an email address; ErrLinkUsed; ErrTokenExpired.
func (db *DB) GrantConsentByLink(ctx context.Context, id int64, textVersion string, ev ConsentEvidence) (*Member, error) {
	if ev.Source == "" {
		ev.Source = "email_link"
	}
	var memberID int64
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		var err error
		if memberID, err = useLink(ctx, tx, id, LinkConsent, db.Now()); err != nil {
			return err
		}
		lm, err := lockMember(ctx, tx, memberID)
		if err != nil {
			return err
		}
		switch {
		case lm.status == StatusErased:
			return Errorf(ENOTFOUND, "no member %d", memberID)
		case lm.email == nil:
			return &Error{Code: EINVALID, Message: "no email address",
				Fields: map[string]string{"marketing_consent": "needs an email address to send offers to"}}
		case lm.consent == ConsentConfirmed:
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE members SET marketing_consent = 'confirmed', updated_at = now() WHERE id = $1`, memberID); err != nil {
			return fmt.Errorf("grant consent of member %d: %w", memberID, err)
		}
		return recordConsent(ctx, tx, memberID, true, textVersion, ev)
	})
	if err != nil {
		return nil, err
	}
	return db.FindMemberByID(ctx, memberID)
}

// PurgeMemberLinks deletes the requested links that expired before cutoff, with the mail that
// carried them, and returns how many. Past its hour a row only tells the member the link
// expired; nothing needs it for long.
func (db *DB) PurgeMemberLinks(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := db.Pool.Exec(ctx, `DELETE FROM member_links WHERE expires_at < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("purge member links: %w", err)
	}
	return tag.RowsAffected(), nil
}
