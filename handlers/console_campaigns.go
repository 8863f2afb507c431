package handlers

// The console's campaign pages: the list, the editor (with preview, schedule, send now, test send and
// the pause/resume/cancel buttons) and the report. Every action is a plain form POST that
// redirects back with a notice, or re-renders the page with the errors next to their fields;
// templates/static/console-campaigns.js only adds the live preview.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/dispatch"
	"github.com/regulars/regulars/campaigns/feedback"
	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/campaigns/tracking"
	"github.com/regulars/regulars/models"
)

// campaignNotices are the one-line notices after a redirect, by the done= code the redirect
// carries (a code, never the text, so that a link cannot put words on the page).
var campaignNotices = map[string]string{
	"created":   "Campaign created.",
	"saved":     "Campaign saved.",
	"scheduled": "Campaign scheduled.",
	"sending":   "Campaign sending now: the first mails go out within seconds.",
	"paused":    "Campaign paused.",
	"resumed":   "Campaign resumed.",
	"cancelled": "Campaign cancelled.",
	"tested":    "Test mail sent.",
}

// commonZones are offered in the schedule's time zone menus, with the server's own zone.
var commonZones = []string{
	"UTC", "Europe/Oslo", "Europe/Stockholm", "Europe/Copenhagen", "Europe/Helsinki", "Europe/Reykjavik",
	"Europe/London", "Europe/Dublin", "Europe/Berlin", "Europe/Amsterdam", "Europe/Brussels", "Europe/Paris",
	"Europe/Madrid", "Europe/Lisbon", "Europe/Rome", "Europe/Vienna", "Europe/Zurich", "Europe/Warsaw",
	"Europe/Prague", "Europe/Athens", "Europe/Istanbul", "America/New_York", "America/Chicago",
	"America/Denver", "America/Los_Angeles", "America/Toronto", "America/Sao_Paulo", "Asia/Dubai",
	"Asia/Kolkata", "Asia/Singapore", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland",
}

// zones are the time zones the schedule forms offer: the common ones, the server's and the
// campaign's own when they are not among them.
func (cn *console) zones(extra ...string) []string {
	out := append([]string(nil), commonZones...)
	for _, z := range append([]string{cn.s.tz.String()}, extra...) {
		found := z == "" || z == "Local"
		for _, have := range out {
			found = found || have == z
		}
		if !found {
			out = append(out, z)
		}
	}
	return out
}

// campaignRow is one line of the campaign list.
type campaignRow struct {
	campaigns.Campaign
	Segment  string
	Next     *time.Time
	Progress *dispatch.Progress
	Revenue  *tracking.Revenue
}

type campaignListData struct {
	Rows []campaignRow
	Zone *time.Location
}

func (cn *console) campaignList(c echo.Context) error {
	ctx := c.Request().Context()
	list, err := campaigns.List(ctx, cn.s.db)
	if err != nil {
		return err
	}
	progress, err := dispatch.FindProgress(ctx, cn.s.db)
	if err != nil {
		return err
	}
	names, err := segments.Names(c.Request().Context(), cn.s.db)
	if err != nil {
		return err
	}
	now := cn.s.db.Now()
	data := campaignListData{Rows: make([]campaignRow, 0, len(list)), Zone: cn.s.tz}
	for _, cp := range list {
		row := campaignRow{Campaign: cp}
		if cp.SegmentID != nil {
			row.Segment = names[*cp.SegmentID]
		}
		if at, ok := dispatch.NextSend(&cp, now); ok {
			row.Next = &at
		}
		if p, ok := progress[cp.ID]; ok {
			row.Progress = &p
			// Only campaigns that have sent have revenue; the stats cost a few grouped queries
			// each, which is fine for the tens of campaigns a shop sends.
			st, err := tracking.FindCampaignStats(ctx, cn.s.db, cp.ID, cn.statsOptions())
			if err != nil {
				return err
			}
			row.Revenue = &st.Total.Revenue
		}
		data.Rows = append(data.Rows, row)
	}
	return cn.render(c, http.StatusOK, "campaigns", consolePage{Title: "Campaigns", Nav: "campaigns",
		Flash: campaignNotices[c.QueryParam("done")], Data: data})
}

func (cn *console) statsOptions() tracking.StatsOptions {
	return tracking.StatsOptions{AttributionDays: cn.s.tracking.AttributionDays, CostPerMail: cn.s.tracking.CostPerMail}
}

// campaignForm is the editor's fields as typed, so that a refused form comes back as it was.
type campaignForm struct {
	Name, Subject, From, HTML, Text, SegmentID, Holdout string
	TrackOpens                                          bool
	// TextAuto: the text body is made from the HTML (campaigns.HTMLToText) when saved, unless the
	// marketer unticks it to write the text by hand.
	TextAuto bool
}

func formOf(cp *campaigns.Campaign) campaignForm {
	f := campaignForm{Name: cp.Name, Subject: cp.Subject, From: cp.From, HTML: cp.HTML, Text: cp.Text,
		Holdout: strconv.FormatFloat(cp.HoldoutPercent, 'f', -1, 64), TrackOpens: cp.TrackOpens,
		// A stored text that is what the HTML makes was made so: it stays made so.
		TextAuto: cp.HTML != "" && cp.Text == campaigns.HTMLToText(cp.HTML)}
	if cp.SegmentID != nil {
		f.SegmentID = strconv.FormatInt(*cp.SegmentID, 10)
	}
	return f
}

// input reads the form into a campaigns.Input; fields that do not parse are in fe.
func (f campaignForm) input(fe models.FieldErrors) campaigns.Input {
	in := campaigns.Input{Name: &f.Name, Subject: &f.Subject, From: &f.From, HTML: &f.HTML, Text: &f.Text,
		TrackOpens: &f.TrackOpens}
	if s := strings.TrimSpace(f.SegmentID); s != "" {
		if id, err := strconv.ParseInt(s, 10, 64); err != nil || id <= 0 {
			fe.Add("segment_id", "choose a segment from the list")
		} else {
			in.SegmentID = &id
		}
	}
	holdout := 0.0
	if s := strings.TrimSpace(f.Holdout); s != "" {
		v, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", "."), 64)
		if err != nil {
			fe.Add("holdout_percent", "must be a number between 0 and "+strconv.Itoa(campaigns.MaxHoldout))
		}
		holdout = v
	}
	in.HoldoutPercent = &holdout
	return in
}

func readCampaignForm(c echo.Context) campaignForm {
	// Browsers send textareas with CRLF line ends; templates are stored with LF.
	lf := func(s string) string { return strings.ReplaceAll(c.FormValue(s), "\r\n", "\n") }
	f := campaignForm{Name: c.FormValue("name"), Subject: c.FormValue("subject"), From: c.FormValue("from"),
		HTML: lf("html"), Text: lf("text"), SegmentID: c.FormValue("segment_id"),
		Holdout: c.FormValue("holdout_percent"), TrackOpens: c.FormValue("track_opens") != "",
		TextAuto: c.FormValue("text_auto") != ""}
	if f.TextAuto && f.HTML != "" {
		f.Text = campaigns.HTMLToText(f.HTML)
	}
	return f
}

// scheduleForm is the schedule forms' fields as typed.
type scheduleForm struct {
	Mode         string // once or recurring
	Date, Time   string
	Timezone     string
	Cron         string
	CronTimezone string
}

// campaignEditData is what the editor page shows.
type campaignEditData struct {
	// Campaign is nil for a new campaign.
	Campaign *campaigns.Campaign
	Form     campaignForm
	// Errors are the campaign form's, by field (name, subject, from, html, text, segment_id,
	// holdout_percent).
	Errors map[string]string
	// Problem is a page-wide notice: why the campaign cannot change, a refused action.
	Problem  string
	Editable bool
	Segments []segments.Counted

	// The preview: sample members of the segment, the chosen one, and the rendered mail.
	Sample         []segments.SampleMember
	SampleMemberID int64
	PreviewCard    string
	Preview        *campaigns.Rendered
	PreviewErrors  map[string]string

	Schedule       scheduleForm
	ScheduleErrors map[string]string
	Zones          []string
	Next           *time.Time

	TestAddresses string
	TestErrors    map[string]string

	// ConfirmSend is set on the Send now button's first click: the audience, for the second.
	ConfirmSend *sendConfirm

	// Starters are offered on a new campaign's page; Starter is the one it opened on.
	Starters []campaigns.Starter
	Starter  string

	CanSchedule, CanPause, CanResume, CanCancel bool
	Zone                                        *time.Location
}

// campaignNew opens the editor on a starter (?starter=, the first one by default; "blank"
// for none), written for the shop (CampaignOptions.Shop).
func (cn *console) campaignNew(c echo.Context) error {
	d := &campaignEditData{Form: campaignForm{Holdout: "10", TextAuto: true}, Starter: c.QueryParam("starter")}
	if d.Starter == "" {
		d.Starter = campaigns.StarterKeys()[0]
	}
	if d.Starter != "blank" {
		st, err := campaigns.MakeStarter(d.Starter, cn.shop())
		if err != nil {
			return echo.ErrNotFound
		}
		d.Form.Subject, d.Form.HTML, d.Form.Text = st.Subject, st.HTML, st.Text
	}
	return cn.renderEditor(c, http.StatusOK, d)
}

// shop is the shop the starters are written for (see campaigns.Shop.WithDefaults).
func (cn *console) shop() campaigns.Shop {
	return cn.s.campaigns.Shop.WithDefaults(cn.s.campaigns.From)
}

func (cn *console) campaignCreate(c echo.Context) error {
	form := readCampaignForm(c)
	fe := models.FieldErrors{}
	in := form.input(fe)
	if len(fe) > 0 {
		return cn.renderEditor(c, http.StatusUnprocessableEntity, &campaignEditData{Form: form, Errors: fe})
	}
	cp, err := campaigns.Create(c.Request().Context(), cn.s.db, cn.s.campaigns.From, in)
	if err != nil {
		var me *models.Error
		if errors.As(err, &me) && me.Code == models.EINVALID {
			return cn.renderEditor(c, http.StatusUnprocessableEntity, &campaignEditData{Form: form, Errors: me.Fields,
				Problem: "The campaign was not saved: see the fields marked below."})
		}
		return err
	}
	return cn.campaignRedirect(c, cp.ID, "", "created")
}

// loadCampaign reads the :id campaign.
func (cn *console) loadCampaign(c echo.Context) (*campaigns.Campaign, error) {
	id, err := campaignID(c)
	if err != nil {
		return nil, err
	}
	return campaigns.Get(c.Request().Context(), cn.s.db, id)
}

func (cn *console) campaignEdit(c echo.Context) error {
	cp, err := cn.loadCampaign(c)
	if err != nil {
		return err
	}
	d := &campaignEditData{Campaign: cp}
	if id, err := strconv.ParseInt(c.QueryParam("member_id"), 10, 64); err == nil && id > 0 {
		d.SampleMemberID = id
	}
	return cn.renderEditorFlash(c, http.StatusOK, d, campaignNotices[c.QueryParam("done")])
}

func (cn *console) campaignUpdate(c echo.Context) error {
	cp, err := cn.loadCampaign(c)
	if err != nil {
		return err
	}
	form := readCampaignForm(c)
	fe := models.FieldErrors{}
	in := form.input(fe)
	d := &campaignEditData{Campaign: cp, Form: form}
	if len(fe) > 0 {
		d.Errors = fe
		return cn.renderEditor(c, http.StatusUnprocessableEntity, d)
	}
	out, err := campaigns.Update(c.Request().Context(), cn.s.db, cn.s.campaigns.From, cp.ID, in)
	var me *models.Error
	switch {
	case err == nil:
		return cn.campaignRedirect(c, out.ID, "", "saved")
	case errors.As(err, &me) && me.Code == models.EINVALID:
		d.Errors = me.Fields
		d.Problem = "The campaign was not saved: see the fields marked below."
		return cn.renderEditor(c, http.StatusUnprocessableEntity, d)
	case errors.As(err, &me) && me.Code == models.ECONFLICT:
		d.Problem = "The campaign was not saved: it is " + cp.Status + ", and only a draft or a paused campaign may be changed."
		return cn.renderEditor(c, http.StatusConflict, d)
	}
	return err
}

// campaignPreviewForm renders the editor with the saved campaign previewed for a member chosen
// from the sample or by card: the preview without JavaScript.
func (cn *console) campaignPreviewForm(c echo.Context) error {
	ctx := c.Request().Context()
	cp, err := cn.loadCampaign(c)
	if err != nil {
		return err
	}
	d := &campaignEditData{Campaign: cp, PreviewCard: strings.TrimSpace(c.FormValue("card"))}
	fe := models.FieldErrors{}
	var memberID int64
	if d.PreviewCard != "" {
		m, err := cn.s.db.LookupMember(ctx, d.PreviewCard, "", "")
		switch code := models.ErrorCode(err); {
		case err == nil:
			memberID = m.ID
		case code == models.ENOTFOUND:
			fe.Add("card", "no member has this card")
		case code == models.EINVALID:
			fe.Add("card", "must be a 13-digit club card number")
		default:
			return err
		}
	} else if id, err := strconv.ParseInt(c.FormValue("member_id"), 10, 64); err == nil && id > 0 {
		memberID = id
	} else {
		fe.Add("member_id", "choose a sample member or give a card number")
	}
	if memberID > 0 {
		d.SampleMemberID = memberID
		d.Preview, err = campaigns.Preview(ctx, cn.s.db, cn.s.campaignConfig(), cp.ID, memberID)
		var me *models.Error
		if errors.As(err, &me) && me.Code == models.EINVALID {
			d.Preview = nil
			for k, v := range me.Fields {
				fe.Add(k, v)
			}
		} else if err != nil {
			return err
		}
	}
	status := http.StatusOK
	if len(fe) > 0 {
		d.PreviewErrors, status = fe, http.StatusUnprocessableEntity
	}
	return cn.renderEditor(c, status, d)
}

// campaignPreviewJSON is the live preview the editor's script fetches: {subject, html, text}.
func (cn *console) campaignPreviewJSON(c echo.Context) error {
	id, err := campaignID(c)
	if err != nil {
		return err
	}
	memberID, err := strconv.ParseInt(c.QueryParam("member_id"), 10, 64)
	if err != nil || memberID <= 0 {
		return &models.Error{Code: models.EINVALID, Message: "invalid preview",
			Fields: map[string]string{"member_id": "is required: a member's id"}}
	}
	out, err := campaigns.Preview(c.Request().Context(), cn.s.db, cn.s.campaignConfig(), id, memberID)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

func (cn *console) campaignSchedule(c echo.Context) error {
	cp, err := cn.loadCampaign(c)
	if err != nil {
		return err
	}
	sf := scheduleForm{Mode: c.FormValue("mode"), Date: c.FormValue("date"), Time: c.FormValue("time"),
		Timezone: c.FormValue("timezone"), Cron: strings.TrimSpace(c.FormValue("cron")),
		CronTimezone: c.FormValue("cron_timezone")}
	d := &campaignEditData{Campaign: cp, Schedule: sf}
	fe := models.FieldErrors{}
	var in dispatch.ScheduleInput
	if sf.Mode == "recurring" {
		in.Cron, in.Timezone = &sf.Cron, &sf.CronTimezone
	} else {
		loc, err := time.LoadLocation(sf.Timezone)
		if sf.Timezone == "" || sf.Timezone == "Local" || err != nil {
			fe.Add("timezone", "choose a time zone from the list")
		}
		at, perr := time.ParseInLocation("2006-01-02 15:04", strings.TrimSpace(sf.Date)+" "+strings.TrimSpace(sf.Time), time.UTC)
		if perr != nil {
			fe.Add("send_at", "give a date (YYYY-MM-DD) and a time (HH:MM)")
		}
		if len(fe) == 0 {
			at = time.Date(at.Year(), at.Month(), at.Day(), at.Hour(), at.Minute(), 0, 0, loc)
			in.SendAt = &at
		}
	}
	if len(fe) == 0 {
		_, err = dispatch.Schedule(c.Request().Context(), cn.s.db, cp.ID, in)
		if err == nil {
			return cn.campaignRedirect(c, cp.ID, "", "scheduled")
		}
		var me *models.Error
		switch {
		case errors.As(err, &me) && me.Code == models.EINVALID:
			for k, v := range me.Fields {
				fe.Add(k, v)
			}
		case errors.As(err, &me) && me.Code == models.ECONFLICT:
			d.Problem = "Not scheduled: " + conflictReason(cp.Status, "scheduled")
			return cn.renderEditor(c, http.StatusConflict, d)
		default:
			return err
		}
	}
	d.ScheduleErrors = fe
	if why, ok := fe["segment_id"]; ok {
		d.Problem = "Not scheduled: " + why + "."
	}
	return cn.renderEditor(c, http.StatusUnprocessableEntity, d)
}

// sendConfirm is what the Send now confirmation shows: the segment and how many members it
// would mail now (mailable by consent; the bounced and the held-out share are left out when the
// run starts, so "up to").
type sendConfirm struct {
	Segment  string
	Mailable int64
	HeldOut  int64 // about: the holdout share of Mailable
}

// campaignSendNow serves the Send now button in two steps, so that a stray click mails nobody:
// the first POST counts the segment and shows the audience with a second button, and only that
// one (confirm=send) sends, through dispatch.SendNow under the scheduling rules.
func (cn *console) campaignSendNow(c echo.Context) error {
	cp, err := cn.loadCampaign(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d := &campaignEditData{Campaign: cp}
	refuse := func(status int, why string) error {
		d.Problem = "Not sent: " + why
		return cn.renderEditor(c, status, d)
	}
	if c.FormValue("confirm") != "send" {
		switch {
		case cp.Status != campaigns.StatusDraft && cp.Status != campaigns.StatusPaused:
			return refuse(http.StatusConflict, conflictReason(cp.Status, "sent now"))
		case cp.SegmentID == nil:
			return refuse(http.StatusUnprocessableEntity, "the campaign needs a segment before it can be sent.")
		}
		// A live count: this is what the marketer is about to mail (the lists' cached count
		// may be minutes old); a count made in the last minute is reused.
		if _, err := segments.Recount(ctx, cn.s.db, *cp.SegmentID, cn.s.db.Now().Add(-time.Minute), true); err != nil {
			return err
		}
		seg, err := segments.FindCounted(ctx, cn.s.db, *cp.SegmentID)
		if err != nil {
			return err
		}
		conf := &sendConfirm{Segment: seg.Name}
		if seg.Mailable != nil {
			conf.Mailable = *seg.Mailable
		}
		conf.HeldOut = int64(float64(conf.Mailable) * cp.HoldoutPercent / 100)
		d.ConfirmSend = conf
		return cn.renderEditor(c, http.StatusOK, d)
	}
	_, err = dispatch.SendNow(ctx, cn.s.db, cp.ID)
	var me *models.Error
	switch {
	case err == nil:
		return cn.campaignRedirect(c, cp.ID, "", "sending")
	case errors.As(err, &me) && me.Code == models.ECONFLICT:
		return refuse(http.StatusConflict, conflictReason(cp.Status, "sent now"))
	case errors.As(err, &me) && me.Code == models.EINVALID:
		return refuse(http.StatusUnprocessableEntity, "the campaign needs a segment before it can be sent.")
	}
	return err
}

// conflictReason says, for people, why a campaign in status cannot be action.
func conflictReason(status, action string) string {
	switch action {
	case "scheduled", "sent now":
		if status == campaigns.StatusPaused {
			return "the campaign has already started sending; resume or cancel it instead."
		}
		return "the campaign is " + status + "; only a draft or a paused campaign can be " + action + "."
	case "paused":
		return "the campaign is " + status + "; only a scheduled or sending campaign can be paused."
	case "resumed":
		return "the campaign is " + status + "; only a paused campaign can be resumed."
	default:
		return "the campaign is " + status + " and cannot be cancelled."
	}
}

// campaignStateForm serves the pause, resume and cancel buttons.
func (cn *console) campaignStateForm(change func(ctx context.Context, db *models.DB, id int64) (*campaigns.Campaign, error), done string) echo.HandlerFunc {
	return func(c echo.Context) error {
		cp, err := cn.loadCampaign(c)
		if err != nil {
			return err
		}
		if _, err := change(c.Request().Context(), cn.s.db, cp.ID); err != nil {
			if models.ErrorCode(err) == models.ECONFLICT {
				verb := map[string]string{"paused": "paused", "resumed": "resumed", "cancelled": "cancelled"}[done]
				return cn.renderEditor(c, http.StatusConflict, &campaignEditData{Campaign: cp,
					Problem: "Not " + verb + ": " + conflictReason(cp.Status, done)})
			}
			return err
		}
		back := ""
		if c.FormValue("back") == "report" {
			back = "/report"
		}
		return cn.campaignRedirect(c, cp.ID, back, done)
	}
}

func (cn *console) campaignTestSend(c echo.Context) error {
	cp, err := cn.loadCampaign(c)
	if err != nil {
		return err
	}
	d := &campaignEditData{Campaign: cp, TestAddresses: c.FormValue("addresses")}
	addresses := strings.FieldsFunc(d.TestAddresses, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	var sample *int64
	if id, err := strconv.ParseInt(c.FormValue("member_id"), 10, 64); err == nil && id > 0 {
		sample, d.SampleMemberID = &id, id
	}
	if cn.s.campaigns.Mail == nil {
		d.TestErrors = map[string]string{"addresses": "no mail server is configured on this server, so no test mail can be sent"}
		return cn.renderEditor(c, http.StatusServiceUnavailable, d)
	}
	_, err = cn.s.testSend(c, consoleMarketer(c), cp.ID, addresses, sample)
	var me *models.Error
	switch {
	case err == nil:
		q := url.Values{}
		if sample != nil {
			q.Set("member_id", strconv.FormatInt(*sample, 10))
		}
		return cn.campaignRedirectQuery(c, cp.ID, "", "tested", q)
	case errors.As(err, &me) && me.Code == models.EINVALID:
		d.TestErrors = map[string]string{}
		var why []string
		keys := make([]string, 0, len(me.Fields))
		for k := range me.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := me.Fields[k]
			if i, ok := strings.CutPrefix(k, "addresses."); ok {
				if n, err := strconv.Atoi(i); err == nil && n < len(addresses) {
					v = addresses[n] + ": " + v
				}
				why = append(why, v)
				continue
			}
			if k == "addresses" {
				why = append(why, v)
				continue
			}
			d.TestErrors[k] = v
		}
		if len(why) > 0 {
			d.TestErrors["addresses"] = strings.Join(why, "; ")
		}
		return cn.renderEditor(c, http.StatusUnprocessableEntity, d)
	case errors.As(err, &me) && me.Code == models.ERATELIMITED: // Retry-After set by testSend
		d.TestErrors = map[string]string{"addresses": me.Message}
		return cn.renderEditor(c, http.StatusTooManyRequests, d)
	}
	return err
}

// campaignReportData is what the report page shows.
type campaignReportData struct {
	Campaign *campaigns.Campaign
	Stats    *tracking.Stats
	Segment  string
	// Sending: a run is being sent, so the page refreshes itself.
	Sending   bool
	Recurring bool
	Zone      *time.Location
	// MinGroup is the fewest members a group needs for a verdict (tracking.MinGroupMembers).
	MinGroup int
	// Margin is the gross margin of the attributed purchases of all runs.
	Margin reportMargin
}

// reportMargin is what the layout's report-margin partials show on the campaign and flow
// reports: the gross margin of the purchases behind the revenue, in the revenue's currency.
type reportMargin struct {
	models.Margin
	Currency string
}

func (cn *console) campaignReport(c echo.Context) error {
	cp, err := cn.loadCampaign(c)
	if err != nil {
		return err
	}
	st, err := tracking.FindCampaignStats(c.Request().Context(), cn.s.db, cp.ID, cn.statsOptions())
	if err != nil {
		return err
	}
	d := campaignReportData{Campaign: cp, Stats: st, Zone: cn.s.tz, MinGroup: tracking.MinGroupMembers, Recurring: cp.Cron != nil || len(st.Runs) > 1,
		Sending: cp.Status == campaigns.StatusSending, Margin: reportMargin{Margin: st.Total.Revenue.Margin}}
	if cur := st.Total.Revenue.Currency; cur != nil {
		d.Margin.Currency = *cur
	}
	for _, r := range st.Runs {
		d.Sending = d.Sending || r.Status == "sending"
	}
	if cp.SegmentID != nil {
		names, err := segments.Names(c.Request().Context(), cn.s.db)
		if err != nil {
			return err
		}
		d.Segment = names[*cp.SegmentID]
	}
	return cn.render(c, http.StatusOK, "campaign_report", consolePage{Title: "Report: " + cp.Name, Nav: "campaigns",
		Flash: cn.autoPauseNotice(c, campaignNotices[c.QueryParam("done")], feedback.CampaignAutoPause, cp.ID), Data: d})
}

func (cn *console) renderEditor(c echo.Context, status int, d *campaignEditData) error {
	return cn.renderEditorFlash(c, status, d, "")
}

// renderEditorFlash fills what every editor page shows around d's own state and renders it.
func (cn *console) renderEditorFlash(c echo.Context, status int, d *campaignEditData, flash string) error {
	ctx := c.Request().Context()
	var err error
	if d.Segments, err = segments.List(ctx, cn.s.db); err != nil {
		return err
	}
	d.Zone = cn.s.tz
	d.Editable = true
	title := "New campaign"
	if d.Campaign == nil {
		if d.Starters, err = campaigns.Starters(cn.shop()); err != nil {
			return err
		}
	}
	if cp := d.Campaign; cp != nil {
		title = cp.Name
		if d.Form == (campaignForm{}) {
			d.Form = formOf(cp)
		}
		d.Editable = cp.Status == campaigns.StatusDraft || cp.Status == campaigns.StatusPaused
		d.CanSchedule = d.Editable
		d.CanPause = cp.Status == campaigns.StatusScheduled || cp.Status == campaigns.StatusSending
		d.CanResume = cp.Status == campaigns.StatusPaused
		d.CanCancel = cp.Status != campaigns.StatusSent && cp.Status != campaigns.StatusCancelled
		if at, ok := dispatch.NextSend(cp, cn.s.db.Now()); ok {
			d.Next = &at
		}
		tz := ""
		if cp.Timezone != nil {
			tz = *cp.Timezone
		}
		d.Zones = cn.zones(tz, d.Schedule.Timezone, d.Schedule.CronTimezone)
		if d.Schedule == (scheduleForm{}) {
			d.Schedule = cn.scheduleDefaults(cp)
		}
		if cp.SegmentID != nil {
			// The sample only: counting the segment is the lists' job (cached).
			sample, err := segments.SavedSample(ctx, cn.s.db, *cp.SegmentID, segments.SavedSampleSize)
			if err != nil && models.ErrorCode(err) != models.ENOTFOUND {
				return err
			}
			d.Sample = sample
		}
		if d.SampleMemberID == 0 && len(d.Sample) > 0 {
			d.SampleMemberID = d.Sample[0].ID
		}
	}
	return cn.render(c, status, "campaign_edit", consolePage{Title: title, Nav: "campaigns", Flash: flash, Data: d, MailPreview: true})
}

// scheduleDefaults fills the schedule forms from cp's schedule, or with tomorrow at 09:00 in the
// server's zone.
func (cn *console) scheduleDefaults(cp *campaigns.Campaign) scheduleForm {
	zone := cn.s.tz
	f := scheduleForm{Mode: "once", Timezone: zone.String(), CronTimezone: zone.String(), Cron: "0 9 * * 1"}
	at := cn.s.db.Now().In(zone).AddDate(0, 0, 1)
	at = time.Date(at.Year(), at.Month(), at.Day(), 9, 0, 0, 0, zone)
	if cp.Cron != nil {
		f.Mode, f.Cron = "recurring", *cp.Cron
		if cp.Timezone != nil {
			f.CronTimezone = *cp.Timezone
		}
	} else if cp.SendAt != nil {
		at = cp.SendAt.In(zone)
	}
	f.Date, f.Time = at.Format(time.DateOnly), at.Format("15:04")
	return f
}

func (cn *console) campaignRedirect(c echo.Context, id int64, suffix, done string) error {
	return cn.campaignRedirectQuery(c, id, suffix, done, url.Values{})
}

func (cn *console) campaignRedirectQuery(c echo.Context, id int64, suffix, done string, q url.Values) error {
	q.Set("done", done)
	return c.Redirect(http.StatusSeeOther, "/console/campaigns/"+strconv.FormatInt(id, 10)+suffix+"?"+q.Encode())
}
