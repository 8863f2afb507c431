// Package clubmail delivers the discount club's own mail (confirm your address, you are already a
// member, welcome, the links a member asks for on the preferences page) from the club_mail queue: claim due mail, render it from templates in the
// member's language with freshly signed links, send it, and record the outcome. Temporary
// failures are retried with a growing backoff; several replicas may drain the same queue.
package clubmail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/number"

	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/templates"
)

// Defaults of the Sender's tunables.
const (
	DefaultBatch      = 20
	DefaultPoll       = 5 * time.Second
	DefaultConfirmTTL = 7 * 24 * time.Hour
	// PreferencesTTL is how long the preferences link in a mail works.
	PreferencesTTL = 90 * 24 * time.Hour
	// lease is how long a claimed mail stays with this sender; one that dies mid-send leaves
	// its mail to be claimed again after it.
	lease = 2 * time.Minute
	// barcodeCID names the inline barcode image in the welcome mail.
	barcodeCID = "card-barcode"
)

// retryDelays is the wait after the 1st, 2nd, ... failed attempt; after the last one the mail is
// given up (about 45 hours of trying in all, which outlasts a relay's weekend outage).
var retryDelays = [...]time.Duration{
	time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// MaxAttempts is how many times a mail is tried before it is given up.
const MaxAttempts = len(retryDelays) + 1

// errMemberGone gives up mail whose member was erased or purged after it was queued.
var errMemberGone = errors.New("member erased or purged: mail dropped unsent")

// errLinkGone gives up mail whose requested link was used or expired before it could be sent:
// a link that no longer works is no use to anyone.
var errLinkGone = errors.New("requested link used or expired: mail dropped unsent")

// Sender drains the club mail queue. Set the fields, then call Run (or RunOnce / Drain).
type Sender struct {
	DB   *models.DB
	Mail mailer.Sender
	// From is the author of club mail ("Name <address>"); its address also receives mailto
	// unsubscribe requests.
	From string
	// BaseURL is the public address links in mail point at, without a trailing slash.
	BaseURL string
	// Secret signs the links' tokens (the same secret the pages verify them with).
	Secret []byte
	// ConfirmTTL is how long a confirmation link works (0: DefaultConfirmTTL).
	ConfirmTTL time.Duration
	// Location is the time zone the confirmation link's expiry date is written in (nil: UTC).
	Location *time.Location
	Log      *slog.Logger
	// Batch is how many mails one claim takes (0: DefaultBatch); Poll how often the queue is
	// looked at without a Kick (0: DefaultPoll).
	Batch int
	Poll  time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Templates are the parsed mail templates (required; templates.Load).
	Templates *templates.Engine

	kickOnce sync.Once
	kick     chan struct{}
}

// Kick wakes Run at once, e.g. after a request queued mail. It never blocks: kicks that arrive
// while one is pending are merged.
func (s *Sender) Kick() {
	select {
	case s.kicks() <- struct{}{}:
	default:
	}
}

func (s *Sender) kicks() chan struct{} {
	s.kickOnce.Do(func() { s.kick = make(chan struct{}, 1) })
	return s.kick
}

// Run sends due mail until ctx ends, looking at the queue every Poll and whenever kicked.
// Errors are logged, not returned: the next round tries again.
func (s *Sender) Run(ctx context.Context) {
	poll := s.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kicks():
		case <-timer.C:
		}
		if _, err := s.Drain(ctx); err != nil && ctx.Err() == nil {
			s.log().Error("club mail", "err", err)
		}
		timer.Reset(poll)
	}
}

// Drain sends due mail batch after batch until none is due, and returns how many were sent.
func (s *Sender) Drain(ctx context.Context) (sent int, err error) {
	for {
		claimed, n, err := s.round(ctx)
		sent += n
		if err != nil || claimed == 0 {
			return sent, err
		}
	}
}

// RunOnce claims one batch of due mail, sends it and returns how many were sent.
func (s *Sender) RunOnce(ctx context.Context) (sent int, err error) {
	_, sent, err = s.round(ctx)
	return sent, err
}

func (s *Sender) round(ctx context.Context) (claimed, sent int, err error) {
	batch := s.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	mails, err := s.DB.ClaimClubMail(ctx, batch, lease)
	if err != nil {
		return 0, 0, fmt.Errorf("claim club mail: %w", err)
	}
	for _, m := range mails {
		if ctx.Err() != nil {
			// The rest stay leased and are claimed again when the lease ends.
			return len(mails), sent, ctx.Err()
		}
		ok, err := s.deliver(ctx, m)
		if err != nil {
			return len(mails), sent, err
		}
		if ok {
			sent++
		}
	}
	return len(mails), sent, nil
}

// deliver sends one claimed mail and records the outcome. It returns an error only when the
// outcome could not be recorded.
func (s *Sender) deliver(ctx context.Context, cm models.ClubMail) (sent bool, err error) {
	log := s.log().With("mail_id", cm.ID, "kind", cm.Kind, "member_id", cm.MemberID, "attempt", cm.Attempts)
	msg, err := s.compose(ctx, cm)
	if err != nil {
		if errors.Is(err, errMemberGone) || errors.Is(err, errLinkGone) {
			log.Info("club mail dropped", "reason", err)
			return false, s.record(ctx, cm, err, nil)
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		// A template or database error: try again later like a relay failure, so a passing
		// database hiccup does not lose the mail and a broken template is loud in the log.
		return false, s.failed(ctx, log, cm, err, true)
	}
	err = s.Mail.Send(ctx, msg)
	if err == nil {
		// Recorded even if ctx ended meanwhile: the mail is out, and sending it again after the
		// lease would be a duplicate.
		if err := s.record(ctx, cm, nil, nil); err != nil {
			return true, err
		}
		log.Info("club mail sent")
		return true, nil
	}
	if ctx.Err() != nil && !mailer.IsPermanent(err) {
		// Shutting down: leave it leased; another round picks it up.
		return false, ctx.Err()
	}
	return false, s.failed(ctx, log, cm, err, !mailer.IsPermanent(err))
}

// failed records a failed attempt, scheduling a retry when it may help and attempts remain.
func (s *Sender) failed(ctx context.Context, log *slog.Logger, cm models.ClubMail, cause error, temporary bool) error {
	attempts := max(cm.Attempts, 1) // the claim counts the attempt it is for
	if temporary && attempts < MaxAttempts {
		retryAt := s.now().Add(retryDelays[attempts-1])
		log.Warn("club mail failed, will retry", "err", cause, "retry_at", retryAt)
		return s.record(ctx, cm, cause, &retryAt)
	}
	log.Error("club mail given up", "err", cause, "attempts", attempts)
	return s.record(ctx, cm, cause, nil)
}

// record writes the outcome of an attempt: sent when cause is nil, else failed (retry at retryAt,
// or given up). It outlives a cancelled ctx briefly, so a shutdown does not forget what was done.
func (s *Sender) record(ctx context.Context, cm models.ClubMail, cause error, retryAt *time.Time) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var err error
	if cause == nil {
		err = s.DB.ClubMailSent(ctx, cm.ID)
	} else {
		err = s.DB.ClubMailFailed(ctx, cm.ID, cause, retryAt)
	}
	if err != nil {
		return fmt.Errorf("record club mail %d: %w", cm.ID, err)
	}
	return nil
}

// mailData is what the mail templates see. It holds the recipient's own data only.
type mailData struct {
	Name           string
	Card           string
	ConfirmURL     string
	ExpiresOn      string
	LinkURL        string // the requested link of the link_* kinds
	PreferencesURL string
	UnsubscribeURL string
	BarcodeCID     string
	Tier           string
	Discount       string
	HasDiscount    bool
}

// compose renders mail cm for its member; errMemberGone when there is nobody to mail any more.
func (s *Sender) compose(ctx context.Context, cm models.ClubMail) (*mailer.Message, error) {
	member, err := s.DB.FindMemberByID(ctx, cm.MemberID)
	if err != nil && models.ErrorCode(err) == models.ENOTFOUND {
		return nil, errMemberGone
	}
	if err != nil {
		return nil, fmt.Errorf("member %d: %w", cm.MemberID, err)
	}
	to := cm.To
	if to == "" && member.Email != nil {
		to = *member.Email
	}
	if member.Status == "erased" || to == "" {
		return nil, errMemberGone
	}
	lang := cm.Language
	if !templates.Supported(lang) {
		lang = templates.Match(member.Language)
	}

	now := s.now()
	data := mailData{
		Name:           member.Name,
		Card:           member.Card,
		PreferencesURL: s.link("preferences", models.TokenPreferences, member.ID, now.Add(PreferencesTTL)),
		UnsubscribeURL: s.link("unsubscribe", models.TokenUnsubscribe, member.ID, time.Time{}),
	}
	msg := &mailer.Message{
		From: s.From,
		To:   []string{to},
		// The same id on every attempt, so a relay or client can tell a retry from a new mail.
		MessageID: fmt.Sprintf("club-%d.%s@%s", cm.ID, cm.Kind, s.messageIDDomain()),
	}
	switch cm.Kind {
	case models.MailConfirm, models.MailConsentConfirm:
		expires := now.Add(s.confirmTTL())
		data.ConfirmURL = s.link("confirm", models.TokenConfirm, member.ID, expires)
		data.ExpiresOn = expires.In(s.location()).Format(templates.T(lang, "mail.date_layout", nil))
	case models.MailAlreadyMember:
	case models.MailLinkExport, models.MailLinkErase, models.MailLinkConsent:
		if data.LinkURL, err = s.memberLink(ctx, cm, now); err != nil {
			return nil, err
		}
	case models.MailWelcome:
		tier, discount, err := s.DB.FindMemberTier(ctx, member.ID)
		if err != nil {
			return nil, fmt.Errorf("tier of member %d: %w", member.ID, err)
		}
		if tier != nil {
			data.Tier = *tier
		}
		if discount > 0 {
			data.HasDiscount = true
			data.Discount = formatPercent(lang, discount)
		}
		png, err := templates.BarcodePNG(member.Card, 400, 160)
		if err != nil {
			return nil, err
		}
		data.BarcodeCID = barcodeCID
		msg.Inline = append(msg.Inline, mailer.Inline{
			ContentID: barcodeCID, Filename: "card-" + member.Card + ".png", ContentType: "image/png", Data: png,
		})
	default:
		return nil, fmt.Errorf("unknown club mail kind %q", cm.Kind)
	}

	if s.Templates == nil {
		return nil, errors.New("clubmail: no templates")
	}
	rendered, err := s.Templates.Mail(cm.Kind, lang, data)
	if err != nil {
		return nil, err
	}
	msg.Subject, msg.HTML, msg.Text = rendered.Subject, rendered.HTML, rendered.Text
	targets := []string{data.UnsubscribeURL}
	if addr := s.fromAddress(); addr != "" {
		targets = append(targets, "mailto:"+addr+"?subject=unsubscribe")
	}
	msg.SetListUnsubscribe(targets...)
	return msg, nil
}

// memberLink is the link that mail cm carries: its token names the member_links row, for the
// row's action, until the row expires. errLinkGone when it no longer works.
func (s *Sender) memberLink(ctx context.Context, cm models.ClubMail, now time.Time) (string, error) {
	l, err := s.DB.FindMemberLink(ctx, cm.LinkID)
	if models.ErrorCode(err) == models.ENOTFOUND {
		return "", errLinkGone
	}
	if err != nil {
		return "", fmt.Errorf("member link %d: %w", cm.LinkID, err)
	}
	if l.MemberID != cm.MemberID || "link_"+l.Action != cm.Kind {
		return "", fmt.Errorf("member link %d is not for mail %d", l.ID, cm.ID)
	}
	if l.Usable(now) != nil {
		return "", errLinkGone
	}
	return s.link("preferences/"+l.Action, models.LinkTokenPurpose(l.Action), l.ID, l.ExpiresAt), nil
}

// link is an absolute link to page with a token for purpose (expires zero: never).
func (s *Sender) link(page, purpose string, id int64, expires time.Time) string {
	token := models.SignToken(s.Secret, purpose, id, expires)
	return strings.TrimRight(s.BaseURL, "/") + "/" + page + "?token=" + url.QueryEscape(token)
}

// fromAddress is From's bare address, "" when From does not parse.
func (s *Sender) fromAddress() string {
	a, err := mail.ParseAddress(s.From)
	if err != nil {
		return ""
	}
	return a.Address
}

func (s *Sender) messageIDDomain() string {
	if _, domain, ok := strings.Cut(s.fromAddress(), "@"); ok && domain != "" {
		return domain
	}
	return "regulars.invalid"
}

// formatPercent writes a discount percent the way lang writes numbers ("7.5" or "7,5").
func formatPercent(lang string, p float64) string {
	return message.NewPrinter(language.Make(lang)).Sprint(number.Decimal(p, number.MaxFractionDigits(2)))
}

func (s *Sender) confirmTTL() time.Duration {
	if s.ConfirmTTL > 0 {
		return s.ConfirmTTL
	}
	return DefaultConfirmTTL
}

func (s *Sender) location() *time.Location {
	if s.Location != nil {
		return s.Location
	}
	return time.UTC
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}
