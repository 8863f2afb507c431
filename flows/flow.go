// Package flows is automated journeys: a flow mails each member who meets its trigger, once per
// entry, after optional waits, and stops when the member buys (product.md, "Flows").
//
// A flow is stored as the JSON the API takes (flows.trigger, flows.steps) and compiled into a
// Program whose instructions point at each other by index; a member's place in the flow is an
// index into it (flow_entries.step), so that the engine can move every member at the same step
// with one statement. Each mail step is a campaign row owned by the flow (campaigns.flow_id):
// its mails are queued as campaign recipients and sent by the campaign sender, so a flow gets
// the crash rule, leases, the rate limit, retries, bounces and click tracking unchanged.
//
// The Engine (engine.go) finds who enters (triggers.go, one statement per flow and tick) and
// moves members along, on every serve replica; a per-flow advisory lock lets one replica at a
// time work on a flow.
package flows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/models"
)

// Flow states: a draft has never run; an active flow enters and moves members; a paused one
// keeps its members where they are until it is activated again.
const (
	StatusDraft  = "draft"
	StatusActive = "active"
	StatusPaused = "paused"
)

// Trigger events.
const (
	EventJoined           = "joined"
	EventFirstPurchase    = "first_purchase"
	EventPurchaseCount    = "purchase_count"
	EventBirthday         = "birthday"
	EventLapsed           = "lapsed"
	EventPAliveBelow      = "p_alive_below"
	EventTierChanged      = "tier_changed"
	EventRewardAffordable = "reward_affordable"
)

// Limits of a flow.
const (
	MaxNameLen     = 200
	MaxSteps       = 50 // steps in all, branches included
	MaxDepth       = 4  // if inside if
	MaxHoldout     = 50
	MinWait        = time.Minute
	MaxWait        = 365 * 24 * time.Hour
	MaxReentryDays = 3650
	MaxBodyBytes   = 256 << 10 // one mail's subject, HTML and text together
)

// Voucher lifetimes: a voucher step's expires_in.
const (
	MinVoucherLife = time.Hour
	MaxVoucherLife = 10 * 365 * 24 * time.Hour
)

// Flow is a stored flow.
type Flow struct {
	ID             int64      `json:"id"`
	Name           string     `json:"name"`
	Trigger        Trigger    `json:"trigger"`
	Steps          []Step     `json:"steps"`
	ExitOnPurchase bool       `json:"exit_on_purchase"`
	ReentryDays    *int       `json:"reentry_days"`
	HoldoutPercent float64    `json:"holdout_percent"`
	SegmentID      *int64     `json:"segment_id"`
	Status         string     `json:"status"`
	ActivatedAt    *time.Time `json:"activated_at"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// Trigger is what starts a member on a flow. Which fields apply depends on Event.
type Trigger struct {
	Event string `json:"event"`
	// Days: lapsed (required; with Personal, the least number of days).
	Days *int `json:"days,omitempty"`
	// Personal and Factor: lapsed after Factor × the member's own median gap between purchase days.
	Personal bool     `json:"personal,omitempty"`
	Factor   *float64 `json:"factor,omitempty"`
	// Count: purchase_count.
	Count *int `json:"count,omitempty"`
	// DaysBefore: birthday (0 = on the day).
	DaysBefore *int `json:"days_before,omitempty"`
	// Value: p_alive_below.
	Value *float64 `json:"value,omitempty"`
	// Reward: reward_affordable, the reward whose cost the balance reaches (default: the
	// cheapest active one).
	Reward string `json:"reward,omitempty"`
}

// IsState tells the triggers evaluated on what members are (checked on activation and every
// few minutes) from those that react to events after activation.
func (t Trigger) IsState() bool {
	return t.Event == EventLapsed || t.Event == EventPAliveBelow || t.Event == EventBirthday
}

// Step is one step: exactly one of Mail, Wait, If (with Then and Else) and Voucher.
type Step struct {
	Mail *Mail `json:"mail,omitempty"`
	// Wait is a Go duration, at least a minute.
	Wait string `json:"wait,omitempty"`
	// If is a segment rule tree evaluated for the member when the step is reached.
	If   json.RawMessage `json:"if,omitempty"`
	Then []Step          `json:"then,omitempty"`
	Else []Step          `json:"else,omitempty"`
	// Voucher issues a voucher for this reward code, valid ExpiresIn after issue (a Go
	// duration, default 720h); the next mails show it as {{.Voucher.Code}}.
	Voucher   string `json:"voucher,omitempty"`
	ExpiresIn string `json:"expires_in,omitempty"`
}

// Mail is a mail step: templates in the campaign language.
type Mail struct {
	Subject string `json:"subject"`
	HTML    string `json:"html"`
	Text    string `json:"text"`
}

// Input is a parsed create or change request; a nil field was not given. ReentrySet tells a
// given null (never again) from an absent reentry_days.
type Input struct {
	Name           *string
	Trigger        *Trigger
	Steps          []Step
	ExitOnPurchase *bool
	ReentryDays    *int
	ReentrySet     bool
	HoldoutPercent *float64
	SegmentID      *int64
	SegmentSet     bool
}

// ParseInput reads a flow request body strictly: unknown keys, wrong types and bad values are
// an EINVALID error naming the JSON path ("steps.1.wait", "trigger.days"; the dotted form of segment rules). Templates and the
// segment's existence are checked when stored (check).
func ParseInput(body []byte) (*Input, error) {
	fe := models.FieldErrors{}
	var top map[string]json.RawMessage
	if err := strictDecode(body, &top); err != nil || top == nil {
		return nil, models.Errorf(models.EMALFORMED, "the body must be a JSON object")
	}
	in := &Input{}
	for key, raw := range top {
		switch key {
		case "name":
			var s string
			if decodeField(raw, &s, key, fe) {
				in.Name = &s
			}
		case "trigger":
			in.Trigger = parseTrigger(raw, fe)
		case "steps":
			p := &stepParser{fe: fe}
			in.Steps = p.list(raw, "steps", 1)
			if in.Steps != nil && len(in.Steps) == 0 {
				fe.Add("steps", "at least one step is required")
			}
			if p.count > MaxSteps {
				fe.Add("steps", fmt.Sprintf("more than %d steps", MaxSteps))
			}
		case "exit_on_purchase":
			var b bool
			if decodeField(raw, &b, key, fe) {
				in.ExitOnPurchase = &b
			}
		case "reentry_days":
			in.ReentrySet = true
			if !isNull(raw) {
				var n int
				if decodeField(raw, &n, key, fe) {
					if n < 1 || n > MaxReentryDays {
						fe.Add(key, fmt.Sprintf("must be null (never again) or between 1 and %d", MaxReentryDays))
					}
					in.ReentryDays = &n
				}
			}
		case "holdout_percent":
			var f float64
			if decodeField(raw, &f, key, fe) {
				if f < 0 || f > MaxHoldout || math.IsNaN(f) {
					fe.Add(key, fmt.Sprintf("must be between 0 and %d", MaxHoldout))
				}
				in.HoldoutPercent = &f
			}
		case "segment_id":
			in.SegmentSet = true
			if !isNull(raw) {
				var id int64
				if decodeField(raw, &id, key, fe) {
					in.SegmentID = &id
				}
			}
		case "id", "status", "activated_at", "created_at", "updated_at":
			// What GET returns may be sent back as it is; these change through their own calls.
		default:
			fe.Add(key, "unknown field")
		}
	}
	if err := fe.Err("invalid flow"); err != nil {
		return nil, err
	}
	return in, nil
}

// strictDecode decodes one JSON value with numbers kept exact and nothing after it.
func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the value")
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// decodeField decodes raw into v, recording a problem at path when it does not fit.
func decodeField(raw json.RawMessage, v any, path string, fe models.FieldErrors) bool {
	if isNull(raw) {
		fe.Add(path, "must not be null")
		return false
	}
	if err := strictDecode(raw, v); err != nil {
		fe.Add(path, "must be "+kindName(v))
		return false
	}
	return true
}

func kindName(v any) string {
	switch v.(type) {
	case *string:
		return "a string"
	case *bool:
		return "true or false"
	case *int, *int64:
		return "a whole number"
	case *float64:
		return "a number"
	}
	return "valid"
}

// parseTrigger reads and checks a trigger; nil after a problem.
func parseTrigger(raw json.RawMessage, fe models.FieldErrors) *Trigger {
	var fields map[string]json.RawMessage
	if err := strictDecode(raw, &fields); err != nil || fields == nil {
		fe.Add("trigger", `must be an object such as {"event": "joined"}`)
		return nil
	}
	t := &Trigger{}
	allowed := map[string]bool{"event": true}
	for key, v := range fields {
		path := "trigger." + key
		switch key {
		case "event":
			decodeField(v, &t.Event, path, fe)
		case "days", "count", "days_before":
			var n int
			if decodeField(v, &n, path, fe) {
				switch key {
				case "days":
					t.Days = &n
				case "count":
					t.Count = &n
				default:
					t.DaysBefore = &n
				}
			}
		case "personal":
			decodeField(v, &t.Personal, path, fe)
		case "reward":
			if decodeField(v, &t.Reward, path, fe) && !rewardCode.MatchString(t.Reward) {
				fe.Add(path, "must be a reward code (GET /rewards)")
			}
		case "factor", "value":
			var f float64
			if decodeField(v, &f, path, fe) {
				if key == "factor" {
					t.Factor = &f
				} else {
					t.Value = &f
				}
			}
		default:
			fe.Add(path, "unknown field")
		}
	}
	switch t.Event {
	case EventJoined, EventFirstPurchase, EventTierChanged:
	case EventPurchaseCount:
		allowed["count"] = true
		if t.Count == nil {
			fe.Add("trigger.count", "is required: the purchase that starts the flow (2 = the second)")
		} else if *t.Count < 1 || *t.Count > 1000 {
			fe.Add("trigger.count", "must be between 1 and 1000")
		}
	case EventBirthday:
		allowed["days_before"] = true
		if t.DaysBefore == nil {
			t.DaysBefore = new(int)
		} else if *t.DaysBefore < 0 || *t.DaysBefore > 60 {
			fe.Add("trigger.days_before", "must be between 0 and 60")
		}
	case EventLapsed:
		allowed["days"], allowed["personal"], allowed["factor"] = true, true, true
		if t.Days == nil {
			fe.Add("trigger.days", "is required: days since the last purchase")
		} else if *t.Days < 1 || *t.Days > MaxReentryDays {
			fe.Add("trigger.days", fmt.Sprintf("must be between 1 and %d", MaxReentryDays))
		}
		switch {
		case !t.Personal && t.Factor != nil:
			fe.Add("trigger.factor", `applies only with "personal": true`)
		case t.Personal && t.Factor == nil:
			fe.Add("trigger.factor", "is required with personal: the multiple of the member's median gap between purchases")
		case t.Personal && (*t.Factor < 1 || *t.Factor > 10 || math.IsNaN(*t.Factor)):
			fe.Add("trigger.factor", "must be between 1 and 10")
		}
	case EventPAliveBelow:
		allowed["value"] = true
		if t.Value == nil {
			fe.Add("trigger.value", "is required: the probability of still being a customer, between 0 and 1")
		} else if !(*t.Value > 0 && *t.Value < 1) {
			fe.Add("trigger.value", "must be between 0 and 1 (exclusive)")
		}
	case EventRewardAffordable:
		allowed["reward"] = true
	case "":
		fe.Add("trigger.event", "is required")
	default:
		fe.Add("trigger.event", "must be one of joined, first_purchase, purchase_count, birthday, lapsed, p_alive_below, tier_changed, reward_affordable")
	}
	if t.Event != "" {
		for key := range fields {
			if !allowed[key] && fe["trigger."+key] == "" {
				fe.Add("trigger."+key, "does not apply to "+t.Event)
			}
		}
	}
	return t
}

// stepParser reads step lists, counting steps and naming paths.
type stepParser struct {
	fe    models.FieldErrors
	count int
}

func (p *stepParser) list(raw json.RawMessage, path string, depth int) []Step {
	var items []json.RawMessage
	if err := strictDecode(raw, &items); err != nil || (items == nil && !isNull(raw)) {
		p.fe.Add(path, "must be a list of steps")
		return nil
	}
	if items == nil {
		p.fe.Add(path, "must be a list of steps")
		return nil
	}
	out := make([]Step, 0, len(items))
	for i, item := range items {
		p.count++
		if p.count > MaxSteps {
			break
		}
		out = append(out, p.step(item, fmt.Sprintf("%s.%d", path, i), depth))
	}
	return out
}

func (p *stepParser) step(raw json.RawMessage, path string, depth int) Step {
	var fields map[string]json.RawMessage
	if err := strictDecode(raw, &fields); err != nil || fields == nil {
		p.fe.Add(path, `must be an object with one of "mail", "wait", "if" or "voucher"`)
		return Step{}
	}
	var kinds []string
	for _, k := range []string{"mail", "wait", "if", "voucher"} {
		if _, ok := fields[k]; ok {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 1 {
		p.fe.Add(path, `must have exactly one of "mail", "wait", "if" or "voucher"`)
		return Step{}
	}
	var s Step
	for key, v := range fields {
		at := path + "." + key
		switch {
		case key == "mail":
			s.Mail = parseMail(v, at, p.fe)
		case key == "wait":
			if decodeField(v, &s.Wait, at, p.fe) {
				checkDuration(s.Wait, at, MinWait, p.fe)
			}
		case key == "if":
			s.If = parseRules(v, at, p.fe)
		case (key == "then" || key == "else") && kinds[0] == "if":
			if depth >= MaxDepth {
				p.fe.Add(at, fmt.Sprintf("ifs nest at most %d deep", MaxDepth))
				continue
			}
			branch := p.list(v, at, depth+1)
			if key == "then" {
				s.Then = branch
			} else {
				s.Else = branch
			}
		case key == "voucher":
			if decodeField(v, &s.Voucher, at, p.fe) && !rewardCode.MatchString(s.Voucher) {
				p.fe.Add(at, "must be a reward code (GET /rewards)")
			}
		case key == "expires_in" && kinds[0] == "voucher":
			if decodeField(v, &s.ExpiresIn, at, p.fe) {
				checkLife(s.ExpiresIn, at, p.fe)
			}
		default:
			p.fe.Add(at, "unknown field")
		}
	}
	return s
}

// checkDuration checks a Go duration between least and MaxWait.
func checkDuration(s, path string, least time.Duration, fe models.FieldErrors) {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		fe.Add(path, `must be a duration such as "30m", "72h" or "168h"`)
	case d < least:
		fe.Add(path, "must be at least "+strings.TrimSuffix(least.String(), "0s"))
	case d > MaxWait:
		fe.Add(path, "must be at most 8760h (a year)")
	}
}

// rewardCode is the form of a reward's code (the rewards table's check).
var rewardCode = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// DefaultVoucherLife is a voucher step's expires_in when it gives none.
const DefaultVoucherLife = "720h"

// checkLife checks a voucher step's expires_in.
func checkLife(s, path string, fe models.FieldErrors) {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		fe.Add(path, `must be a duration such as "720h" (30 days)`)
	case d < MinVoucherLife || d > MaxVoucherLife:
		fe.Add(path, "must be between 1h and 87600h (ten years)")
	}
}

func parseMail(raw json.RawMessage, path string, fe models.FieldErrors) *Mail {
	var m Mail
	if err := strictDecode(raw, &m); err != nil {
		fe.Add(path, `must be {"subject": …, "html": …, "text": …} (`+jsonProblem(err)+`)`)
		return nil
	}
	if strings.TrimSpace(m.Subject) == "" {
		fe.Add(path+".subject", "is required")
	}
	if strings.TrimSpace(m.HTML) == "" && strings.TrimSpace(m.Text) == "" {
		fe.Add(path+".html", "an HTML or a text body is required")
	}
	if len(m.Subject)+len(m.HTML)+len(m.Text) > MaxBodyBytes {
		fe.Add(path, fmt.Sprintf("must be at most %d KiB", MaxBodyBytes>>10))
	}
	if !utf8.ValidString(m.Subject + m.HTML + m.Text) {
		fe.Add(path, "must be valid UTF-8")
	}
	return &m
}

func jsonProblem(err error) string {
	msg := err.Error()
	return strings.TrimPrefix(msg, "json: ")
}

// parseRules checks an if step's rule tree with the segment parser, its error paths moved
// under path.
func parseRules(raw json.RawMessage, path string, fe models.FieldErrors) json.RawMessage {
	if _, err := segments.Parse(raw); err != nil {
		var me *models.Error
		if errors.As(err, &me) && len(me.Fields) > 0 {
			for field, why := range me.Fields {
				fe.Add(path+strings.TrimPrefix(field, segments.RootPath), why)
			}
		} else {
			fe.Add(path, err.Error())
		}
		return nil
	}
	return append(json.RawMessage(nil), raw...)
}
