package handlers

// The console's segments: the saved segments with their cached counts, and the builder of a
// segment's rule tree. The builder is a form with the rules as JSON in a textarea, validated on
// the server, so it works without script; templates/static/console-segments.js turns it into a
// visual editor that keeps the textarea in sync and shows a live count from
// GET /console/api/segments/preview.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/models"
)

// segmentPreviewSize is how many members the builder shows as a sample.
const segmentPreviewSize = 10

// newSegmentRules is the tree a new segment starts from: one empty-ish rule a marketer edits.
const newSegmentRules = `{
  "all": [
    {"field": "status", "op": "eq", "value": "active"}
  ]
}`

// segmentCounts are a tree's live counts and sample, as the builder shows them.
type segmentCounts struct {
	Members  int64                   `json:"members"`
	Mailable int64                   `json:"mailable"`
	Sample   []segments.SampleMember `json:"sample"`
	// Freshness, when set, says these are cached counts rather than live ones ("counted 3 min
	// ago"): the live count did not finish in time.
	Freshness string `json:"-"`
}

// segmentRuleError is a problem of the rules at a JSON path ("rules.all.0.value").
type segmentRuleError struct {
	Path, Why string
}

// segmentFormView is the Data of segment.html, the builder.
type segmentFormView struct {
	ID          int64 // 0 for a new segment
	Name        string
	Description string
	Rules       string
	// Errors are the problems of the last post by form field (name, description, rules);
	// RuleErrors are those of the rules' nodes, by path. Message says what went wrong overall.
	Errors     map[string]string
	RuleErrors []segmentRuleError
	Message    string
	Counts     *segmentCounts // the live counts of the shown rules, when they are valid
	// Counting says the saved rules are too slow to count live and have no cached counts yet.
	Counting  bool
	Previewed bool   // Counts are of unsaved rules (the Preview button)
	Builder   string // JSON for the visual builder: fields, store codes, tier names, limits
	Fields    []segments.Field
}

// segmentListView is the Data of segments.html.
type segmentListView struct {
	Segments []segmentRow
}

// segmentRow is a saved segment in the list, with its cached counts and how fresh they are.
type segmentRow struct {
	segments.Counted
	// Freshness is "counted 3 min ago", or "counting…" while the rules have no counts yet.
	Freshness string
}

// countedAgo says how fresh cached counts are, for a marketer; at nil they are being counted.
func countedAgo(now time.Time, at *time.Time) string {
	if at == nil {
		return "counting…"
	}
	switch age := now.Sub(*at); {
	case age < time.Minute:
		return "counted just now"
	case age < time.Hour:
		return "counted " + strconv.Itoa(int(age/time.Minute)) + " min ago"
	case age < 48*time.Hour:
		return "counted " + strconv.Itoa(int(age/time.Hour)) + " h ago"
	default:
		return "counted on " + at.Format(time.DateOnly)
	}
}

// liveAsOf is the as-of time of live counts: now, in the shop's timezone (as segments.Get uses).
func (cn *console) liveAsOf() time.Time {
	return cn.s.db.Now().In(cn.s.tz)
}

// segmentList shows the cached counts (segments.List); segments not counted yet show
// "counting…" and are counted in the background.
func (cn *console) segmentList(c echo.Context) error {
	list, err := segments.List(c.Request().Context(), cn.s.db)
	if err != nil {
		return err
	}
	cn.s.countUncounted(list)
	now := cn.s.db.Now()
	view := &segmentListView{Segments: make([]segmentRow, len(list))}
	for i, sc := range list {
		view.Segments[i] = segmentRow{Counted: sc, Freshness: countedAgo(now, sc.CountedAt)}
	}
	page := consolePage{Title: "Segments", Nav: "segments", Data: view}
	switch {
	case c.QueryParam("deleted") != "":
		page.Flash = "Segment deleted."
	}
	return cn.render(c, http.StatusOK, "segments", page)
}

func (cn *console) segmentNew(c echo.Context) error {
	view := &segmentFormView{Rules: newSegmentRules}
	return cn.renderSegmentForm(c, http.StatusOK, view, "")
}

func (cn *console) segmentEdit(c echo.Context) error {
	id, err := segmentID(c)
	if err != nil {
		return err
	}
	view, err := cn.savedSegmentView(c.Request().Context(), id)
	if err != nil {
		return err
	}
	flash := ""
	if c.QueryParam("saved") != "" {
		flash = "Segment saved."
	}
	return cn.renderSegmentForm(c, http.StatusOK, view, flash)
}

// savedSegmentView is the builder of saved segment id with its live counts and sample. When the
// rules are too slow to count within half the statement limit, it shows the cached counts
// instead, so that a slow segment can still be opened, changed and deleted.
func (cn *console) savedSegmentView(ctx context.Context, id int64) (*segmentFormView, error) {
	liveCtx, cancel := context.WithTimeout(ctx, cn.s.statementLimit/2)
	d, err := segments.Get(liveCtx, cn.s.db, id)
	cancel()
	if err == nil {
		return &segmentFormView{ID: d.ID, Name: d.Name, Description: d.Description, Rules: indentJSON(d.Rules),
			Counts: &segmentCounts{Members: d.Members, Mailable: d.Mailable, Sample: d.Sample}}, nil
	}
	if ctx.Err() != nil || !errors.Is(liveCtx.Err(), context.DeadlineExceeded) {
		return nil, err
	}
	sc, err := segments.FindCounted(ctx, cn.s.db, id)
	if err != nil {
		return nil, err
	}
	cn.s.countLater([]int64{id}, time.Unix(0, 0), false) // unless counted, or a count is under way
	view := &segmentFormView{ID: sc.ID, Name: sc.Name, Description: sc.Description, Rules: indentJSON(sc.Rules)}
	if sc.CountedAt == nil {
		view.Counting = true
		return view, nil
	}
	view.Counts = &segmentCounts{Members: *sc.Members, Mailable: *sc.Mailable,
		Freshness: countedAgo(cn.s.db.Now(), sc.CountedAt)}
	return view, nil
}

// segmentFormInput reads the builder's form. action=preview asks for the counts of the posted
// rules without saving them (the builder's no-script preview).
func segmentFormInput(c echo.Context) (view *segmentFormView, preview bool) {
	view = &segmentFormView{Name: c.FormValue("name"), Description: c.FormValue("description"), Rules: c.FormValue("rules")}
	return view, c.FormValue("action") == "preview"
}

func (cn *console) segmentCreate(c echo.Context) error {
	view, preview := segmentFormInput(c)
	if preview {
		return cn.previewSegmentForm(c, view)
	}
	saved, err := segments.Create(c.Request().Context(), cn.s.db, segments.SavedInput{
		Name: view.Name, Description: view.Description, Rules: json.RawMessage(view.Rules)})
	if err != nil {
		return cn.segmentFormError(c, view, err)
	}
	cn.s.countSaved(saved.ID, saved.UpdatedAt)
	return c.Redirect(http.StatusSeeOther, "/console/segments/"+strconv.FormatInt(saved.ID, 10)+"?saved=1")
}

func (cn *console) segmentUpdate(c echo.Context) error {
	id, err := segmentID(c)
	if err != nil {
		return err
	}
	view, preview := segmentFormInput(c)
	view.ID = id
	if preview {
		return cn.previewSegmentForm(c, view)
	}
	saved, err := segments.Update(c.Request().Context(), cn.s.db, id, segments.SavedPatch{
		Name: &view.Name, Description: &view.Description, Rules: json.RawMessage(view.Rules)})
	if err != nil {
		return cn.segmentFormError(c, view, err)
	}
	cn.s.countSaved(id, saved.UpdatedAt)
	return c.Redirect(http.StatusSeeOther, "/console/segments/"+strconv.FormatInt(id, 10)+"?saved=1")
}

func (cn *console) segmentDelete(c echo.Context) error {
	id, err := segmentID(c)
	if err != nil {
		return err
	}
	err = segments.Delete(c.Request().Context(), cn.s.db, id)
	if models.ErrorCode(err) == models.ECONFLICT {
		// Used by a campaign: show the segment again with why it stays.
		view, gerr := cn.savedSegmentView(c.Request().Context(), id)
		if gerr != nil {
			return gerr
		}
		view.Message = "This segment is not deleted: a campaign uses it. Change the campaign's segment first."
		return cn.renderSegmentForm(c, http.StatusConflict, view, "")
	}
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/console/segments?deleted=1")
}

// previewSegmentForm shows the posted form again with the counts of its rules, saving nothing.
func (cn *console) previewSegmentForm(c echo.Context, view *segmentFormView) error {
	tree, err := segments.Parse([]byte(view.Rules))
	if err != nil {
		return cn.segmentFormError(c, view, err)
	}
	counts, err := cn.countTree(c.Request().Context(), tree)
	if err != nil {
		return err
	}
	view.Counts, view.Previewed = counts, true
	return cn.renderSegmentForm(c, http.StatusOK, view, "")
}

// segmentFormError shows the form again with a validation problem by its field (422) or a
// name clash (409); any other error is the error page's.
func (cn *console) segmentFormError(c echo.Context, view *segmentFormView, err error) error {
	var merr *models.Error
	if !errors.As(err, &merr) || (merr.Code != models.EINVALID && merr.Code != models.ECONFLICT) {
		return err
	}
	view.Errors = map[string]string{}
	for path, why := range merr.Fields {
		if path == segments.RootPath || !strings.HasPrefix(path, segments.RootPath+".") {
			view.Errors[path] = why
			continue
		}
		view.RuleErrors = append(view.RuleErrors, segmentRuleError{Path: path, Why: why})
	}
	sort.Slice(view.RuleErrors, func(i, j int) bool { return view.RuleErrors[i].Path < view.RuleErrors[j].Path })
	if len(view.RuleErrors) > 0 && view.Errors[segments.RootPath] == "" {
		view.Errors[segments.RootPath] = "has a problem at the paths listed below"
	}
	view.Message = "The segment was not saved: " + merr.Message + "."
	status := http.StatusUnprocessableEntity
	if merr.Code == models.ECONFLICT {
		status = http.StatusConflict
	}
	return cn.renderSegmentForm(c, status, view, "")
}

func (cn *console) renderSegmentForm(c echo.Context, status int, view *segmentFormView, flash string) error {
	builder, err := cn.segmentBuilderData(c.Request().Context())
	if err != nil {
		return err
	}
	view.Builder = builder
	view.Fields = segments.Fields()
	title := "New segment"
	if view.ID != 0 {
		title = "Segment " + view.Name
	}
	return cn.render(c, status, "segment", consolePage{Title: title, Nav: "segments", Flash: flash, Data: view})
}

// segmentBuilderData is what the visual builder needs, as JSON for a data- attribute: the field
// registry, suggestions for the free-text fields that name stores and tiers, the fields whose
// values a picker searches in the catalogue (GET /console/api/catalogue), and the limits
// segments.Parse enforces.
func (cn *console) segmentBuilderData(ctx context.Context) (string, error) {
	stores, err := cn.s.db.FindStores(ctx)
	if err != nil {
		return "", err
	}
	tiers, err := cn.s.db.FindTiers(ctx)
	if err != nil {
		return "", err
	}
	suggest := map[string][]string{"home_store": {}, "tier": {}}
	for _, s := range stores {
		suggest["home_store"] = append(suggest["home_store"], s.Code)
	}
	for _, t := range tiers {
		suggest["tier"] = append(suggest["tier"], t.Name)
	}
	b, err := json.Marshal(map[string]any{
		"fields": segments.Fields(), "suggest": suggest,
		"maxDepth": segments.MaxDepth, "maxRules": segments.MaxRules,
		"preview":   "/console/api/segments/preview",
		"catalogue": "/console/api/catalogue", "pickers": []string{"bought_sku", "bought_category", "bought_brand"},
	})
	return string(b), err
}

// countTree gives a tree's live member count, mailable count and sample.
func (cn *console) countTree(ctx context.Context, tree *segments.Node) (*segmentCounts, error) {
	asOf := cn.liveAsOf()
	var out segmentCounts
	var err error
	if out.Members, err = segments.Count(ctx, cn.s.db, tree, asOf); err != nil {
		return nil, err
	}
	if out.Mailable, err = segments.CountMailable(ctx, cn.s.db, tree, asOf); err != nil {
		return nil, err
	}
	if out.Sample, err = segments.Sample(ctx, cn.s.db, tree, asOf, segmentPreviewSize); err != nil {
		return nil, err
	}
	return &out, nil
}

// segmentPreview answers the builder's live count: GET /console/api/segments/preview?rules=<json>
// gives {members, mailable, sample}, or the API's 422 error naming the bad paths.
func (cn *console) segmentPreview(c echo.Context) error {
	rules := c.QueryParam("rules")
	if rules == "" {
		return &models.Error{Code: models.EINVALID, Message: "invalid segment rules",
			Fields: map[string]string{segments.RootPath: "required"}}
	}
	tree, err := segments.Parse([]byte(rules))
	if err != nil {
		return err
	}
	counts, err := cn.countTree(c.Request().Context(), tree)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, counts)
}

// indentJSON lays out stored rules for the textarea; anything that is not JSON stays as it is.
func indentJSON(raw []byte) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep numbers as written (no float rounding of large integers)
	if err := dec.Decode(&v); err != nil {
		return string(raw)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return string(raw)
	}
	return string(b)
}
