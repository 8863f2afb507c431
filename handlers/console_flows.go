package handlers

// The console's flow pages: the list, the editor (trigger form, the steps, the preview of each
// mail step and the activate/pause buttons) and the report. As on the campaign pages every
// action is a plain form POST that redirects back with a notice, or re-renders the page with the
// errors next to their fields. The steps travel as the flow's JSON in the form's steps field:
// without JavaScript that textarea is the editor; templates/static/console-flows.js turns it
// into an ordered list of steps that writes the textarea on every change and puts each error
// next to the step its JSON path names.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/feedback"
	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/flows"
	"github.com/regulars/regulars/models"
)

// flowNotices are the one-line notices after a redirect, by the done= code it carries.
var flowNotices = map[string]string{
	"created":   "Flow created.",
	"saved":     "Flow saved.",
	"activated": "Flow activated.",
	"paused":    "Flow paused.",
}

// flowEvent is a trigger the editor offers.
type flowEvent struct{ Value, Label string }

// flowEvents are the triggers the editor offers, in its menu's order (reward_affordable waits
// for the rewards program, so it is not offered).
var flowEvents = []flowEvent{
	{flows.EventJoined, "A member joins the club (consent confirmed)"},
	{flows.EventFirstPurchase, "A member makes their first purchase"},
	{flows.EventPurchaseCount, "A member makes their n-th purchase"},
	{flows.EventBirthday, "A member's birthday is near"},
	{flows.EventLapsed, "A member has not bought for a while"},
	{flows.EventPAliveBelow, "A member's chance of still being a customer drops"},
	{flows.EventTierChanged, "A member's tier changes"},
}

// flowExitReasons say why members left a flow before its end, by exit_reason.
var flowExitReasons = map[string]string{
	"purchase":   "Bought something",
	"consent":    "Withdrew consent",
	"erased":     "Erased",
	"suppressed": "Address suppressed (bounces or complaints)",
}

// triggerWords says what starts a flow, for people.
func triggerWords(t flows.Trigger) string {
	intOf := func(p *int) int {
		if p == nil {
			return 0
		}
		return *p
	}
	floatOf := func(p *float64) string {
		if p == nil {
			return "?"
		}
		return strconv.FormatFloat(*p, 'f', -1, 64)
	}
	switch t.Event {
	case flows.EventJoined:
		return "When a member joins"
	case flows.EventFirstPurchase:
		return "After a member's first purchase"
	case flows.EventPurchaseCount:
		return fmt.Sprintf("After a member's purchase number %d", intOf(t.Count))
	case flows.EventBirthday:
		if n := intOf(t.DaysBefore); n > 0 {
			return fmt.Sprintf("%d days before a member's birthday", n)
		}
		return "On a member's birthday"
	case flows.EventLapsed:
		if t.Personal {
			return fmt.Sprintf("When a member has not bought for %s × their usual gap, and at least %d days", floatOf(t.Factor), intOf(t.Days))
		}
		return fmt.Sprintf("When a member has not bought for %d days", intOf(t.Days))
	case flows.EventPAliveBelow:
		return "When a member's chance of still being a customer is below " + floatOf(t.Value)
	case flows.EventTierChanged:
		return "When a member's tier changes"
	}
	return t.Event
}

// flowRow is one line of the flow list.
type flowRow struct {
	flows.Flow
	Trigger         string
	Entered, Active int64
}

func (cn *console) flowList(c echo.Context) error {
	ctx := c.Request().Context()
	list, err := flows.FindFlows(ctx, cn.s.db)
	if err != nil {
		return err
	}
	counts, err := flows.FindFlowCounts(ctx, cn.s.db)
	if err != nil {
		return err
	}
	rows := make([]flowRow, 0, len(list))
	for _, f := range list {
		n := counts[f.ID]
		rows = append(rows, flowRow{Flow: f, Trigger: triggerWords(f.Trigger), Entered: n.Entered, Active: n.Active})
	}
	return cn.render(c, http.StatusOK, "flows", consolePage{Title: "Flows", Nav: "flows",
		Flash: flowNotices[c.QueryParam("done")], Data: rows})
}

// flowForm is the editor's fields as typed, so that a refused form comes back as it was. Steps
// is the steps' JSON.
type flowForm struct {
	Name, Event, Days, Factor, Count, DaysBefore, Value string
	Personal                                            bool
	SegmentID, ReentryDays, Holdout, Steps              string
	ExitOnPurchase                                      bool
}

func flowFormOf(f *flows.Flow) flowForm {
	str := func(p *int) string {
		if p == nil {
			return ""
		}
		return strconv.Itoa(*p)
	}
	flt := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'f', -1, 64)
	}
	t := f.Trigger
	form := flowForm{Name: f.Name, Event: t.Event, Days: str(t.Days), Personal: t.Personal, Factor: flt(t.Factor),
		Count: str(t.Count), DaysBefore: str(t.DaysBefore), Value: flt(t.Value), ReentryDays: str(f.ReentryDays),
		Holdout: flt(&f.HoldoutPercent), ExitOnPurchase: f.ExitOnPurchase}
	if f.SegmentID != nil {
		form.SegmentID = strconv.FormatInt(*f.SegmentID, 10)
	}
	steps, _ := json.MarshalIndent(f.Steps, "", "  ")
	form.Steps = string(steps)
	return form
}

func readFlowForm(c echo.Context) flowForm {
	// Browsers send textareas with CRLF line ends; templates are stored with LF.
	return flowForm{Name: c.FormValue("name"), Event: c.FormValue("event"), Days: c.FormValue("days"),
		Personal: c.FormValue("personal") != "", Factor: c.FormValue("factor"), Count: c.FormValue("count"),
		DaysBefore: c.FormValue("days_before"), Value: c.FormValue("value"), SegmentID: c.FormValue("segment_id"),
		ReentryDays: c.FormValue("reentry_days"), Holdout: c.FormValue("holdout_percent"),
		Steps: strings.ReplaceAll(c.FormValue("steps"), "\r\n", "\n"), ExitOnPurchase: c.FormValue("exit_on_purchase") != ""}
}

// body turns the form into the flow's JSON, as the API takes it: only the trigger fields of the
// chosen event, numbers as numbers. Fields that do not parse are in fe, by their JSON path.
func (f flowForm) body(fe models.FieldErrors) []byte {
	number := func(path, s string, whole bool) any {
		s = strings.ReplaceAll(strings.TrimSpace(s), ",", ".")
		if s == "" {
			return nil
		}
		if whole {
			if n, err := strconv.Atoi(s); err == nil {
				return n
			}
			fe.Add(path, "must be a whole number")
			return nil
		}
		if v, err := strconv.ParseFloat(s, 64); err == nil {
			return v
		}
		fe.Add(path, "must be a number")
		return nil
	}
	trigger := map[string]any{"event": f.Event}
	set := func(key string, v any) {
		if v != nil {
			trigger[key] = v
		}
	}
	switch f.Event {
	case flows.EventLapsed:
		set("days", number("trigger.days", f.Days, true))
		if f.Personal {
			trigger["personal"] = true
			set("factor", number("trigger.factor", f.Factor, false))
		}
	case flows.EventPurchaseCount:
		set("count", number("trigger.count", f.Count, true))
	case flows.EventBirthday:
		set("days_before", number("trigger.days_before", f.DaysBefore, true))
	case flows.EventPAliveBelow:
		set("value", number("trigger.value", f.Value, false))
	}
	holdout := number("holdout_percent", f.Holdout, false)
	if holdout == nil {
		holdout = 0
	}
	in := map[string]any{"name": f.Name, "trigger": trigger, "exit_on_purchase": f.ExitOnPurchase,
		"reentry_days": number("reentry_days", f.ReentryDays, true), "holdout_percent": holdout,
		"segment_id": nil}
	if s := strings.TrimSpace(f.SegmentID); s != "" {
		if id, err := strconv.ParseInt(s, 10, 64); err == nil && id > 0 {
			in["segment_id"] = id
		} else {
			fe.Add("segment_id", "choose a segment from the list")
		}
	}
	steps := json.RawMessage(strings.TrimSpace(f.Steps))
	if !json.Valid(steps) {
		fe.Add("steps", `must be the steps as JSON, such as [{"wait": "72h"}]`)
		steps = json.RawMessage("[]")
	}
	in["steps"] = steps
	out, _ := json.Marshal(in) // maps of strings, numbers and valid JSON: cannot fail
	return out
}

// flowMailStep is a mail step of the saved flow, for the preview's menu.
type flowMailStep struct {
	Index   int // in the flow's program (campaigns.flow_step)
	Label   string
	Subject string
}

// flowEditData is what the editor page shows.
type flowEditData struct {
	// Flow is nil for a new flow.
	Flow *flows.Flow
	Form flowForm
	// Errors are by JSON path ("name", "trigger.days", "steps.1.wait"); StepErrors are those
	// of the steps, listed under the steps' JSON for a browser without the script.
	Errors     map[string]string
	StepErrors []pathError
	ErrorsJSON string // Errors for the script
	Problem    string
	Events     []flowEvent
	Segments   []segments.Counted

	MailSteps      []flowMailStep
	Sample         []segments.SampleMember
	PreviewStep    int
	SampleMemberID int64
	Preview        *campaigns.Rendered
	PreviewErrors  map[string]string

	CanActivate, CanPause bool
	Zone                  *time.Location
}

// pathError is one error and the JSON path it belongs to.
type pathError struct{ Path, Why string }

func (cn *console) flowNew(c echo.Context) error {
	d := &flowEditData{Form: flowForm{Event: flows.EventLapsed, Days: "60", Holdout: "10", ExitOnPurchase: true,
		Steps: "[]"}}
	return cn.renderFlowEditor(c, http.StatusOK, d, "")
}

// loadFlow reads the :id flow.
func (cn *console) loadFlow(c echo.Context) (*flows.Flow, error) {
	id, err := flowID(c)
	if err != nil {
		return nil, err
	}
	return flows.FindFlowByID(c.Request().Context(), cn.s.db, id)
}

func (cn *console) flowEdit(c echo.Context) error {
	f, err := cn.loadFlow(c)
	if err != nil {
		return err
	}
	return cn.renderFlowEditor(c, http.StatusOK, &flowEditData{Flow: f}, flowNotices[c.QueryParam("done")])
}

// flowSave serves the editor's save button: create without a flow, update with one.
func (cn *console) flowSave(c echo.Context, saved *flows.Flow) error {
	form := readFlowForm(c)
	d := &flowEditData{Flow: saved, Form: form}
	fe := models.FieldErrors{}
	body := form.body(fe)
	var out *flows.Flow
	in, err := flows.ParseInput(body)
	if err == nil && len(fe) == 0 {
		if saved == nil {
			out, err = flows.Create(c.Request().Context(), cn.s.db, cn.s.campaigns.From, in)
		} else {
			out, err = flows.Update(c.Request().Context(), cn.s.db, cn.s.campaigns.From, saved.ID, in)
		}
	}
	var me *models.Error
	switch err = invalidFields(err, fe); {
	case errors.As(err, &me) && me.Code == models.ECONFLICT:
		d.Problem = "The flow was not saved: " + me.Message + "."
		return cn.renderFlowEditor(c, http.StatusConflict, d, "")
	case err != nil:
		return err
	case len(fe) > 0:
		d.Errors = fe
		d.Problem = "The flow was not saved: see the fields marked below."
		if why := fe[""]; why != "" {
			d.Problem = "The flow was not saved: " + why + "."
		}
		return cn.renderFlowEditor(c, http.StatusUnprocessableEntity, d, "")
	case saved == nil:
		return cn.flowRedirect(c, out.ID, "", "created")
	}
	return cn.flowRedirect(c, out.ID, "", "saved")
}

// invalidFields moves the field errors of an EINVALID err into fe and returns nil for it; any
// other err is returned as it is.
func invalidFields(err error, fe models.FieldErrors) error {
	var me *models.Error
	if !errors.As(err, &me) || me.Code != models.EINVALID {
		return err
	}
	for k, v := range me.Fields {
		fe.Add(k, v)
	}
	if len(me.Fields) == 0 {
		fe.Add("", me.Message)
	}
	return nil
}

func (cn *console) flowCreate(c echo.Context) error { return cn.flowSave(c, nil) }

func (cn *console) flowUpdate(c echo.Context) error {
	f, err := cn.loadFlow(c)
	if err != nil {
		return err
	}
	return cn.flowSave(c, f)
}

// previewChoice reads the preview's step and member (0: the made-up sample member).
func previewChoice(step, member string, fe models.FieldErrors) (int, int64) {
	i, err := strconv.Atoi(step)
	if err != nil || i < 0 {
		fe.Add("step", "choose a mail step")
	}
	id, err := strconv.ParseInt(member, 10, 64)
	if err != nil || id < 0 {
		fe.Add("member_id", "choose a sample member")
	}
	return i, id
}

// flowPreviewForm renders the editor with a saved mail step previewed for the chosen member:
// the preview without JavaScript.
func (cn *console) flowPreviewForm(c echo.Context) error {
	f, err := cn.loadFlow(c)
	if err != nil {
		return err
	}
	fe := models.FieldErrors{}
	d := &flowEditData{Flow: f}
	d.PreviewStep, d.SampleMemberID = previewChoice(c.FormValue("step"), c.FormValue("member_id"), fe)
	if len(fe) == 0 {
		d.Preview, err = flows.Preview(c.Request().Context(), cn.s.db, cn.s.campaignConfig(), f.ID, d.PreviewStep, d.SampleMemberID)
		if err = invalidFields(err, fe); err != nil {
			return err
		}
	}
	status := http.StatusOK
	if len(fe) > 0 {
		d.PreviewErrors, status = fe, http.StatusUnprocessableEntity
	}
	return cn.renderFlowEditor(c, status, d, "")
}

// flowPreviewJSON is the live preview console-campaigns.js fetches for the editor: {subject,
// html, text} of mail step :step for member_id.
func (cn *console) flowPreviewJSON(c echo.Context) error {
	id, err := flowID(c)
	if err != nil {
		return err
	}
	fe := models.FieldErrors{}
	step, memberID := previewChoice(c.Param("step"), c.QueryParam("member_id"), fe)
	if err := fe.Err("invalid preview"); err != nil {
		return err
	}
	out, err := flows.Preview(c.Request().Context(), cn.s.db, cn.s.campaignConfig(), id, step, memberID)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

// flowStateForm serves the activate and pause buttons.
func (cn *console) flowStateForm(change func(ctx context.Context, db *models.DB, id int64) (*flows.Flow, error), done string) echo.HandlerFunc {
	return func(c echo.Context) error {
		f, err := cn.loadFlow(c)
		if err != nil {
			return err
		}
		if _, err := change(c.Request().Context(), cn.s.db, f.ID); err != nil {
			var me *models.Error
			if errors.As(err, &me) && me.Code == models.ECONFLICT {
				return cn.renderFlowEditor(c, http.StatusConflict, &flowEditData{Flow: f,
					Problem: "Not " + done + ": " + me.Message + "."}, "")
			}
			return err
		}
		back := ""
		if c.FormValue("back") == "report" {
			back = "/report"
		}
		return cn.flowRedirect(c, f.ID, back, done)
	}
}

// renderFlowEditor fills what every editor page shows around d's own state and renders it.
func (cn *console) renderFlowEditor(c echo.Context, status int, d *flowEditData, flash string) error {
	ctx := c.Request().Context()
	var err error
	if d.Segments, err = segments.List(ctx, cn.s.db); err != nil {
		return err
	}
	d.Events, d.Zone = flowEvents, cn.s.tz
	for path, why := range d.Errors {
		if path == "steps" || strings.HasPrefix(path, "steps.") {
			d.StepErrors = append(d.StepErrors, pathError{Path: path, Why: why})
		}
	}
	sort.Slice(d.StepErrors, func(i, j int) bool { return d.StepErrors[i].Path < d.StepErrors[j].Path })
	errs, _ := json.Marshal(d.Errors) // strings only: cannot fail
	d.ErrorsJSON = string(errs)
	title := "New flow"
	if f := d.Flow; f != nil {
		title = f.Name
		if d.Form == (flowForm{}) {
			d.Form = flowFormOf(f)
		}
		d.CanActivate = f.Status != flows.StatusActive
		d.CanPause = f.Status == flows.StatusActive
		prog, err := flows.Compile(f.Steps)
		if err != nil {
			return err
		}
		for i, op := range prog {
			if op.Kind == flows.OpMail {
				d.MailSteps = append(d.MailSteps, flowMailStep{Index: i, Label: stepLabel(op.Path), Subject: op.Mail.Subject})
			}
		}
		if d.Preview == nil && d.PreviewErrors == nil && len(d.MailSteps) > 0 {
			d.PreviewStep = d.MailSteps[0].Index
		}
		if f.SegmentID != nil {
			sample, err := segments.SavedSample(ctx, cn.s.db, *f.SegmentID, segments.SavedSampleSize)
			if err != nil && models.ErrorCode(err) != models.ENOTFOUND {
				return err
			}
			d.Sample = sample
		}
	}
	return cn.render(c, status, "flow_edit", consolePage{Title: title, Nav: "flows", Flash: flash, Data: d, MailPreview: true})
}

// stepLabel names a step by its JSON path for people: "steps.2.then.0" is "step 3 › then 1".
func stepLabel(path string) string {
	parts := strings.Split(strings.TrimPrefix(path, "steps."), ".")
	var b strings.Builder
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		switch {
		case err == nil && i == 0:
			fmt.Fprintf(&b, "step %d", n+1)
		case err == nil:
			fmt.Fprintf(&b, " %d", n+1)
		default:
			b.WriteString(" › " + p)
		}
	}
	return b.String()
}

// flowStepRow is one mail step's line in the report.
type flowStepRow struct {
	flows.StepStats
	Label string
}

// flowExitRow is one exit reason's line in the report.
type flowExitRow struct {
	Reason string
	Count  int
}

// flowReportData is what the report page shows.
type flowReportData struct {
	Flow     *flows.Flow
	Trigger  string
	Stats    *flows.Stats
	Steps    []flowStepRow
	Exits    []flowExitRow
	Currency string
	Zone     *time.Location
	// MinGroup is the fewest matured entries a group needs (flows.MinMatured).
	MinGroup int
	// Margin is the gross margin of the purchases in the revenue (matured mailed entries).
	Margin reportMargin
}

func (cn *console) flowReport(c echo.Context) error {
	f, err := cn.loadFlow(c)
	if err != nil {
		return err
	}
	st, err := flows.FindFlowStats(c.Request().Context(), cn.s.db, f.ID, cn.s.tracking.AttributionDays)
	if err != nil {
		return err
	}
	d := flowReportData{Flow: f, Trigger: triggerWords(f.Trigger), Stats: st, Zone: cn.s.tz, MinGroup: flows.MinMatured}
	if d.Currency, err = cn.currency(c); err != nil {
		return err
	}
	d.Margin = reportMargin{Margin: st.Revenue.Margin, Currency: d.Currency}
	for _, s := range st.Steps {
		d.Steps = append(d.Steps, flowStepRow{StepStats: s, Label: stepLabel(s.Step)})
	}
	for reason, n := range st.Exits {
		label := flowExitReasons[reason]
		if label == "" {
			label = reason
		}
		d.Exits = append(d.Exits, flowExitRow{Reason: label, Count: n})
	}
	sort.Slice(d.Exits, func(i, j int) bool { return d.Exits[i].Count > d.Exits[j].Count })
	return cn.render(c, http.StatusOK, "flow_report", consolePage{Title: "Report: " + f.Name, Nav: "flows",
		Flash: cn.autoPauseNotice(c, flowNotices[c.QueryParam("done")], feedback.FlowAutoPause, f.ID), Data: d})
}

func (cn *console) flowRedirect(c echo.Context, id int64, suffix, done string) error {
	q := url.Values{"done": {done}}
	return c.Redirect(http.StatusSeeOther, "/console/flows/"+strconv.FormatInt(id, 10)+suffix+"?"+q.Encode())
}
