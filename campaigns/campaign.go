package campaigns

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/models"
)

// Campaign states. A campaign is written as a draft, scheduled, sent (sending → sent), and may be
// paused (and resumed) or cancelled on the way. Only draft and paused campaigns may change.
const (
	StatusDraft     = "draft"
	StatusScheduled = "scheduled"
	StatusSending   = "sending"
	StatusSent      = "sent"
	StatusPaused    = "paused"
	StatusCancelled = "cancelled"
)

// Limits of a campaign's fields.
const (
	MaxNameLen     = 200
	MaxSubjectLen  = 200
	MaxHoldout     = 50
	MaxTestTargets = 10
)

// Campaign is a stored campaign.
type Campaign struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Subject string `json:"subject"`
	// From is the author; empty means the server's sender (REGULARS_MAIL_FROM). It must have
	// that sender's address (only the name may differ): mail always goes out from it.
	From string `json:"from"`
	HTML string `json:"html"`
	Text string `json:"text"`
	// SegmentID is the audience; nil while the draft has none.
	SegmentID      *int64  `json:"segment_id"`
	HoldoutPercent float64 `json:"holdout_percent"`
	// TrackOpens adds the open-tracking pixel to its mails; off by default (privacy).
	TrackOpens bool   `json:"track_opens"`
	Status     string `json:"status"`
	// SendAt, or Cron in Timezone, is the schedule; set by scheduling, not by Create/Update.
	SendAt    *time.Time `json:"send_at"`
	Cron      *string    `json:"cron"`
	Timezone  *string    `json:"timezone"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	// FlowID is set on a flow's mail step (step FlowStep of its program): the flow owns it, so
	// it is not listed, edited or scheduled as a campaign.
	FlowID   *int64 `json:"-"`
	FlowStep *int   `json:"-"`
}

// Input creates a campaign (Create) or changes one (Update: nil fields stay as they are). The
// state and schedule are not part of it: they change through scheduling, pause and cancel.
type Input struct {
	Name           *string  `json:"name"`
	Subject        *string  `json:"subject"`
	From           *string  `json:"from"`
	HTML           *string  `json:"html"`
	Text           *string  `json:"text"`
	SegmentID      *int64   `json:"segment_id"`
	HoldoutPercent *float64 `json:"holdout_percent"`
	TrackOpens     *bool    `json:"track_opens"`
}

// touchesContent tells whether in changes anything but the name.
func (in Input) touchesContent() bool {
	return in.Subject != nil || in.From != nil || in.HTML != nil || in.Text != nil ||
		in.SegmentID != nil || in.HoldoutPercent != nil || in.TrackOpens != nil
}

func (in Input) apply(c *Campaign) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&c.Name, in.Name)
	set(&c.Subject, in.Subject)
	set(&c.From, in.From)
	set(&c.HTML, in.HTML)
	set(&c.Text, in.Text)
	if in.SegmentID != nil {
		c.SegmentID = in.SegmentID
	}
	if in.HoldoutPercent != nil {
		c.HoldoutPercent = *in.HoldoutPercent
	}
	if in.TrackOpens != nil {
		c.TrackOpens = *in.TrackOpens
	}
}

// Config is what previews and test sends need of the server's configuration.
type Config struct {
	// BaseURL is the public address of the server (REGULARS_BASE_URL), for links.
	BaseURL string
	// DefaultFrom is the author of campaigns without their own From (REGULARS_MAIL_FROM).
	DefaultFrom string
}

// validationFrom stands in for a missing default sender when templates are checked at save
// time: whether the server has REGULARS_MAIL_FROM is a matter for sending, not for saving.
const validationFrom = "campaigns@example.invalid"

// check validates c as it would be stored: its fields, its templates, and that its segment
// exists. Errors are EINVALID naming the fields.
func check(ctx context.Context, q querier, c *Campaign, defaultFrom string) error {
	fe := models.FieldErrors{}
	c.Name = strings.TrimSpace(c.Name)
	c.From = strings.TrimSpace(c.From)
	switch n := utf8.RuneCountInString(c.Name); {
	case n == 0:
		fe.Add("name", "is required")
	case n > MaxNameLen:
		fe.Add("name", fmt.Sprintf("must be at most %d characters", MaxNameLen))
	}
	switch n := utf8.RuneCountInString(c.Subject); {
	case strings.TrimSpace(c.Subject) == "":
		fe.Add("subject", "is required")
	case n > MaxSubjectLen:
		fe.Add("subject", fmt.Sprintf("must be at most %d characters", MaxSubjectLen))
	}
	if strings.TrimSpace(c.HTML) == "" && strings.TrimSpace(c.Text) == "" {
		fe.Add("html", "an HTML or a text body is required")
		fe.Add("text", "an HTML or a text body is required")
	}
	if c.HoldoutPercent < 0 || c.HoldoutPercent > MaxHoldout {
		fe.Add("holdout_percent", fmt.Sprintf("must be between 0 and %d", MaxHoldout))
	}
	if c.SegmentID != nil {
		var exists bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM segments WHERE id = $1)`, *c.SegmentID).Scan(&exists); err != nil {
			return fmt.Errorf("find segment %d: %w", *c.SegmentID, err)
		}
		if !exists {
			fe.Add("segment_id", "no segment "+strconv.FormatInt(*c.SegmentID, 10))
		}
	}
	if c.From != "" && defaultFrom != "" {
		// Mail goes out signed for the configured sender's domain: a campaign may give it
		// another name, never another address.
		if own, err := mail.ParseAddress(c.From); err == nil && !sameAddress(own.Address, defaultFrom) {
			fe.Add("from", "must be the club's sender address "+senderAddress(defaultFrom)+
				" (REGULARS_MAIL_FROM); only the name may differ: \"Shop <"+senderAddress(defaultFrom)+">\"")
		}
	}
	if defaultFrom == "" {
		defaultFrom = validationFrom
	}
	var tmplErr *models.Error
	if err := Validate(ctx, c, defaultFrom); errors.As(err, &tmplErr) {
		for field, why := range tmplErr.Fields {
			fe.Add(field, why)
		}
	} else if err != nil {
		return err
	}
	return fe.Err("invalid campaign")
}

// senderAddress is the bare address of from ("Name <address>" or an address).
func senderAddress(from string) string {
	if a, err := mail.ParseAddress(from); err == nil {
		return a.Address
	}
	return from
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const campaignColumns = `id, name, subject, from_addr, html, text, segment_id, holdout_percent::float8,
	track_opens, status, send_at, cron, timezone, created_at, updated_at, flow_id, flow_step`

func scanCampaign(row pgx.Row) (*Campaign, error) {
	var c Campaign
	err := row.Scan(&c.ID, &c.Name, &c.Subject, &c.From, &c.HTML, &c.Text, &c.SegmentID, &c.HoldoutPercent,
		&c.TrackOpens, &c.Status, &c.SendAt, &c.Cron, &c.Timezone, &c.CreatedAt, &c.UpdatedAt, &c.FlowID, &c.FlowStep)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// Create stores a new draft campaign. name, subject and an HTML or text body are required;
// templates are checked (see Validate) with defaultFrom as the author when in.From is empty.
func Create(ctx context.Context, db *models.DB, defaultFrom string, in Input) (*Campaign, error) {
	c := &Campaign{Status: StatusDraft}
	in.apply(c)
	if err := check(ctx, db.Pool, c, defaultFrom); err != nil {
		return nil, err
	}
	out, err := scanCampaign(db.Pool.QueryRow(ctx, `
		INSERT INTO campaigns (name, subject, from_addr, html, text, segment_id, holdout_percent, track_opens)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		RETURNING `+campaignColumns,
		c.Name, c.Subject, c.From, c.HTML, c.Text, c.SegmentID, c.HoldoutPercent, c.TrackOpens))
	if err != nil {
		return nil, fmt.Errorf("create campaign: %w", err)
	}
	return out, nil
}

// Get returns campaign id, ENOTFOUND when there is none or it is a flow's mail step.
func Get(ctx context.Context, db *models.DB, id int64) (*Campaign, error) {
	c, err := get(ctx, db.Pool, id, "")
	if err == nil && c.FlowID != nil {
		return nil, models.Errorf(models.ENOTFOUND, "no campaign %d", id)
	}
	return c, err
}

// GetForSending returns campaign id, a flow's mail step too: what the sender mails.
func GetForSending(ctx context.Context, db *models.DB, id int64) (*Campaign, error) {
	return get(ctx, db.Pool, id, "")
}

func get(ctx context.Context, q querier, id int64, lock string) (*Campaign, error) {
	c, err := scanCampaign(q.QueryRow(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE id = $1 `+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, models.Errorf(models.ENOTFOUND, "no campaign %d", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get campaign %d: %w", id, err)
	}
	return c, nil
}

// List returns every campaign, newest first (not the mail steps of flows).
func List(ctx context.Context, db *models.DB) ([]Campaign, error) {
	rows, err := db.Pool.Query(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE flow_id IS NULL ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	defer rows.Close()
	out := []Campaign{}
	for rows.Next() {
		c, err := scanCampaign(rows)
		if err != nil {
			return nil, fmt.Errorf("list campaigns: %w", err)
		}
		out = append(out, *c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	return out, nil
}

// Update changes campaign id; nil fields of in stay as they are. The name may change in any
// state; everything else only while the campaign is a draft or paused (ECONFLICT otherwise), so
// that what is being sent or was sent stays what the stats describe.
func Update(ctx context.Context, db *models.DB, defaultFrom string, id int64, in Input) (*Campaign, error) {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("update campaign %d: %w", id, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	c, err := get(ctx, tx, id, "FOR UPDATE")
	if err != nil {
		return nil, err
	}
	if c.FlowID != nil {
		return nil, models.Errorf(models.ENOTFOUND, "no campaign %d", id)
	}
	if in.touchesContent() && c.Status != StatusDraft && c.Status != StatusPaused {
		return nil, models.Errorf(models.ECONFLICT,
			"campaign %d is %s: only a draft or paused campaign may be changed (its name always may)", id, c.Status)
	}
	in.apply(c)
	if err := check(ctx, tx, c, defaultFrom); err != nil {
		return nil, err
	}
	out, err := scanCampaign(tx.QueryRow(ctx, `
		UPDATE campaigns SET name = $2, subject = $3, from_addr = $4, html = $5, text = $6,
			segment_id = $7, holdout_percent = $8, track_opens = $9, updated_at = now()
		WHERE id = $1
		RETURNING `+campaignColumns,
		id, c.Name, c.Subject, c.From, c.HTML, c.Text, c.SegmentID, c.HoldoutPercent, c.TrackOpens))
	if err != nil {
		return nil, fmt.Errorf("update campaign %d: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("update campaign %d: %w", id, err)
	}
	return out, nil
}

// compile parses campaign id's templates for previews and test sends.
func compile(ctx context.Context, db *models.DB, cfg Config, id int64) (*Campaign, *Compiled, error) {
	c, err := Get(ctx, db, id)
	if err != nil {
		return nil, nil, err
	}
	from := cfg.DefaultFrom
	if from == "" {
		from = validationFrom
	}
	compiled, err := Compile(c, from)
	if err != nil {
		return nil, nil, err
	}
	return c, compiled, nil
}

// memberData loads what templates see of member id (field names the request field, for errors).
// FindMemberData is what templates see of member memberID (previews and test sends of
// campaigns and flows): the member, its tier and its points now. An unknown or erased member is
// EINVALID on field.
func FindMemberData(ctx context.Context, db *models.DB, memberID int64, field string) (MemberData, error) {
	m, err := db.FindMemberByID(ctx, memberID)
	if models.ErrorCode(err) == models.ENOTFOUND || err == nil && m.Status == "erased" {
		return MemberData{}, &models.Error{Code: models.EINVALID, Message: "invalid member",
			Fields: map[string]string{field: "no member " + strconv.FormatInt(memberID, 10)}}
	}
	if err != nil {
		return MemberData{}, err
	}
	tier, discount, err := db.FindMemberTier(ctx, memberID)
	if err != nil {
		return MemberData{}, err
	}
	d := NewMemberData(m, tier, discount)
	points, err := db.FindPointsSummary(ctx, memberID)
	if err != nil {
		return MemberData{}, err
	}
	AddPoints(&d, points.Balance, points.StampCost)
	return d, nil
}

// Preview renders campaign id for member memberID with their real data (tier included) and the
// footer. Its links carry PlaceholderToken instead of the member's tokens, so a preview cannot be
// used to change the member's preferences.
func Preview(ctx context.Context, db *models.DB, cfg Config, id, memberID int64) (*Rendered, error) {
	_, compiled, err := compile(ctx, db, cfg, id)
	if err != nil {
		return nil, err
	}
	member, err := FindMemberData(ctx, db, memberID, "member_id")
	if err != nil {
		return nil, err
	}
	return compiled.Preview(ctx, member, PlaceholderLinks(cfg.BaseURL))
}

// TestPrefix starts the subject of every test send.
const TestPrefix = "[TEST] "

// TestSend mails campaign id to addresses only (1 to MaxTestTargets bare addresses; duplicates
// are sent once), one message each, with the subject prefixed TestPrefix. The templates see
// member sampleMemberID when given, else a made-up member. No member's state changes, and the
// links carry PlaceholderToken. It returns how many mails were handed to sender.
func TestSend(ctx context.Context, db *models.DB, sender mailer.Sender, cfg Config, id int64,
	addresses []string, sampleMemberID *int64) (int, error) {
	targets, err := checkAddresses(addresses)
	if err != nil {
		return 0, err
	}
	_, compiled, err := compile(ctx, db, cfg, id)
	if err != nil {
		return 0, err
	}
	member := sampleMember
	if sampleMemberID != nil {
		if member, err = FindMemberData(ctx, db, *sampleMemberID, "member_id"); err != nil {
			return 0, err
		}
	}
	if sender == nil {
		return 0, models.Errorf(models.EINTERNAL, "no mail sender is configured")
	}
	sent := 0
	for i, to := range targets {
		msg, err := compiled.Render(ctx, Recipient{To: to, Member: member, Links: PlaceholderLinks(cfg.BaseURL),
			Vouchers: SampleVouchers{}}) // a test send issues no real voucher
		if err != nil {
			return sent, err
		}
		msg.Subject = TestPrefix + msg.Subject
		if err := sender.Send(ctx, msg); err != nil {
			if mailer.IsPermanent(err) {
				return sent, &models.Error{Code: models.EINVALID, Message: "the mail server refused an address",
					Fields: map[string]string{"addresses." + strconv.Itoa(i): err.Error()}}
			}
			return sent, fmt.Errorf("test send of campaign %d to %s: %w", id, to, err)
		}
		sent++
	}
	return sent, nil
}

// checkAddresses validates the targets of a test send and removes repeats (case-insensitively).
func checkAddresses(addresses []string) ([]string, error) {
	fe := models.FieldErrors{}
	if len(addresses) == 0 || len(addresses) > MaxTestTargets {
		fe.Add("addresses", fmt.Sprintf("must hold 1 to %d addresses", MaxTestTargets))
		return nil, fe.Err("invalid test send")
	}
	seen := map[string]bool{}
	var out []string
	for i, a := range addresses {
		a = strings.TrimSpace(a)
		addr, err := mail.ParseAddress(a)
		if err != nil || addr.Name != "" || addr.Address != a {
			fe.Add("addresses."+strconv.Itoa(i), "must be an email address such as kari@shop.example")
			continue
		}
		if key := strings.ToLower(a); !seen[key] {
			seen[key] = true
			out = append(out, a)
		}
	}
	if err := fe.Err("invalid test send"); err != nil {
		return nil, err
	}
	return out, nil
}
