package handlers

// Console pages of the club: member search and profile (the member 360: figures, tier progress,
// points and a timeline of purchases, mails and consent changes), export and erase (admin), and
// the tier ladder (admin edits, marketer reads).

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/templates"
)

// memberTimelineShown is how many of a member's latest events (purchases, mails, consent
// changes) the profile's timeline lists.
const memberTimelineShown = models.MaxTimeline

// memberPointsShown is how many of a member's latest ledger entries the profile lists.
const memberPointsShown = 20

// blankTierRows are the empty rows the tier editor offers for new tiers.
const blankTierRows = 2

// membersView is the search page's data.
type membersView struct {
	Query   string
	Hits    []models.MemberHit
	Limited bool // as many hits as the page shows: there may be more
}

func (cn *console) members(c echo.Context) error {
	v := membersView{Query: strings.TrimSpace(c.QueryParam("q"))}
	var err error
	if v.Hits, err = cn.s.db.SearchMembers(c.Request().Context(), v.Query, models.MaxSearchResults); err != nil {
		return err
	}
	v.Limited = len(v.Hits) == models.MaxSearchResults
	return cn.render(c, http.StatusOK, "members", consolePage{Title: "Members", Nav: "members", Data: v})
}

// memberView is the profile page's data.
type memberView struct {
	Member   *models.Member
	Tier     *string
	Discount float64
	Consents []models.ConsentRecord
	Value    *models.MemberValue    // CLV, p_alive, RFM, tier progress
	Currency string                 // the shops' one currency, for the figures ("" when they differ)
	Timeline []models.TimelineEvent // newest first
	// ExpectedPurchases is Value's, written with one decimal ("–" before a metrics run).
	ExpectedPurchases string
	Points            *models.MemberPoints // balance and the latest ledger entries
	Vouchers          []models.Voucher     // unused and unexpired
	Erased            bool
	CanAdmin          bool // show export and erase
}

func (cn *console) member(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := memberID(c)
	if err != nil {
		return err
	}
	m, err := cn.s.db.FindMemberByID(ctx, id)
	if err != nil {
		return err
	}
	v := memberView{Member: m, Erased: m.Status == models.StatusErased,
		CanAdmin: currentConsoleUser(c).Role == models.RoleAdmin}
	if v.Tier, v.Discount, err = cn.s.db.FindMemberTier(ctx, id); err != nil {
		return err
	}
	if v.Consents, err = cn.s.db.FindMemberConsents(ctx, id); err != nil {
		return err
	}
	if v.Value, err = cn.s.db.FindMemberValue(ctx, id); err != nil {
		return err
	}
	v.ExpectedPurchases = templates.MissingFigure
	if e := v.Value.ExpectedPurchases; e != nil {
		v.ExpectedPurchases = strconv.FormatFloat(*e, 'f', 1, 64)
	}
	if v.Currency, err = cn.currency(c); err != nil {
		return err
	}
	if v.Timeline, err = cn.s.db.FindMemberTimeline(ctx, id, memberTimelineShown); err != nil {
		return err
	}
	if v.Points, err = cn.s.db.FindMemberPoints(ctx, id, memberPointsShown, 0); err != nil {
		return err
	}
	if v.Vouchers, err = cn.s.db.FindMemberVouchers(ctx, id); err != nil {
		return err
	}
	flash := ""
	if c.QueryParam("erased") != "" {
		flash = "The member's personal data was erased."
	}
	title := "Member " + m.Card
	if m.Name != "" {
		title = m.Name
	}
	return cn.render(c, http.StatusOK, "member", consolePage{Title: title, Nav: "members", Flash: flash, Data: v})
}

// exportMember downloads everything stored about a member as JSON (the same document as the
// API's GET /members/{id}/export).
func (cn *console) exportMember(c echo.Context) error {
	id, err := memberID(c)
	if err != nil {
		return err
	}
	out, err := cn.s.db.ExportMember(c.Request().Context(), id)
	if err != nil {
		return err
	}
	cn.s.log.InfoContext(c.Request().Context(), "console member export", "member", id, "by", currentConsoleUser(c).Email)
	consoleHeaders(c.Response().Header())
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="member-%d.json"`, id))
	return c.JSONPretty(http.StatusOK, out, "  ")
}

// eraseView is the erase confirmation page's data.
type eraseView struct {
	Member *models.Member
	Error  string
}

func (cn *console) eraseMemberForm(c echo.Context) error {
	id, err := memberID(c)
	if err != nil {
		return err
	}
	m, err := cn.s.db.FindMemberByID(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return cn.render(c, http.StatusOK, "members_erase", consolePage{Title: "Erase member", Nav: "members", Data: eraseView{Member: m}})
}

// eraseMember erases once the admin has typed the member's card number on the confirmation page,
// so that a slip of the mouse can never erase anyone.
func (cn *console) eraseMember(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := memberID(c)
	if err != nil {
		return err
	}
	m, err := cn.s.db.FindMemberByID(ctx, id)
	if err != nil {
		return err
	}
	if strings.TrimSpace(c.FormValue("confirm_card")) != m.Card {
		return cn.render(c, http.StatusUnprocessableEntity, "members_erase", consolePage{Title: "Erase member", Nav: "members",
			Data: eraseView{Member: m, Error: "Type the member's card number exactly to confirm."}})
	}
	if err := cn.s.db.EraseMember(ctx, id); err != nil {
		return err
	}
	cn.s.log.InfoContext(ctx, "console member erased", "member", id, "by", currentConsoleUser(c).Email)
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/console/members/%d?erased=1", id))
}

// tierRow is one row of the tier editor, as typed, with its errors.
type tierRow struct {
	Index                             int
	Name, MinSpend, Discount          string
	NameErr, MinSpendErr, DiscountErr string
	Remove                            bool
}

// tiersView is the tier page's data.
type tiersView struct {
	Rows     []tierRow
	CanEdit  bool
	Error    string
	ReadOnly []models.Tier
}

func (cn *console) tiers(c echo.Context) error {
	tiers, err := cn.s.db.FindTiers(c.Request().Context())
	if err != nil {
		return err
	}
	v := tiersView{CanEdit: currentConsoleUser(c).Role == models.RoleAdmin, ReadOnly: tiers}
	for i, t := range tiers {
		v.Rows = append(v.Rows, tierRow{Index: i, Name: t.Name, MinSpend: formatMajor(t.MinSpend),
			Discount: strconv.FormatFloat(t.DiscountPercent, 'f', -1, 64)})
	}
	v.Rows = addBlankTierRows(v.Rows)
	flash := ""
	if c.QueryParam("saved") != "" {
		flash = "Tiers saved."
	}
	return cn.render(c, http.StatusOK, "tiers", consolePage{Title: "Tiers", Nav: "members", Flash: flash, Data: v})
}

func addBlankTierRows(rows []tierRow) []tierRow {
	for range blankTierRows {
		rows = append(rows, tierRow{Index: len(rows)})
	}
	return rows
}

// saveTiers replaces the ladder with the rows of the form: rows left blank or ticked "remove"
// are left out. Amounts are typed in major units (500.00), stored in minor units.
func (cn *console) saveTiers(c echo.Context) error {
	n, _ := strconv.Atoi(c.FormValue("rows"))
	if n < 0 || n > models.MaxTiers+blankTierRows {
		n = 0
	}
	var (
		rows   []tierRow
		inputs []models.TierInput
		rowOf  []int // the form row of each input
		fe     = map[int]*tierRow{}
	)
	for i := range n {
		k := strconv.Itoa(i)
		r := tierRow{Index: i, Name: c.FormValue("name." + k), MinSpend: strings.TrimSpace(c.FormValue("min_spend." + k)),
			Discount: strings.TrimSpace(c.FormValue("discount." + k)), Remove: c.FormValue("remove."+k) != ""}
		rows = append(rows, r)
		if r.Remove || (strings.TrimSpace(r.Name) == "" && r.MinSpend == "" && r.Discount == "") {
			continue
		}
		in := models.TierInput{Name: r.Name}
		if r.MinSpend != "" {
			minor, ok := parseMajor(r.MinSpend)
			in.MinSpend = models.Int{Present: true, Value: minor}
			if !ok {
				in.MinSpend.Bad = "must be an amount such as 5000 or 5000.50"
			}
		}
		if r.Discount != "" {
			d, err := strconv.ParseFloat(strings.TrimSuffix(strings.ReplaceAll(r.Discount, ",", "."), "%"), 64)
			if err != nil {
				d = math.NaN()
			}
			in.DiscountPercent = &d
		}
		inputs = append(inputs, in)
		rowOf = append(rowOf, i)
	}
	for i := range rows {
		fe[i] = &rows[i]
	}
	_, err := cn.s.db.ReplaceTiers(c.Request().Context(), inputs)
	if err == nil {
		cn.s.log.InfoContext(c.Request().Context(), "console tiers saved", "tiers", len(inputs), "by", currentConsoleUser(c).Email)
		return c.Redirect(http.StatusSeeOther, "/console/tiers?saved=1")
	}
	var domain *models.Error
	if !errors.As(err, &domain) || domain.Code != models.EINVALID {
		return err
	}
	v := tiersView{CanEdit: true, Error: "The tiers were not saved: correct the fields marked below."}
	for field, why := range domain.Fields {
		parts := strings.Split(field, ".") // tiers.<i>.<field>
		if len(parts) != 3 {
			v.Error = "The tiers were not saved: " + why + "."
			continue
		}
		i, err := strconv.Atoi(parts[1])
		if err != nil || i < 0 || i >= len(rowOf) {
			continue
		}
		r := fe[rowOf[i]]
		switch parts[2] {
		case "name":
			r.NameErr = why
		case "min_spend":
			r.MinSpendErr = why
		case "discount_percent":
			r.DiscountErr = why
		}
	}
	if tiers, err := cn.s.db.FindTiers(c.Request().Context()); err == nil {
		v.ReadOnly = tiers
	}
	v.Rows = rows
	if len(v.Rows) == 0 {
		v.Rows = addBlankTierRows(nil)
	}
	return cn.render(c, http.StatusUnprocessableEntity, "tiers", consolePage{Title: "Tiers", Nav: "members", Data: v})
}

// formatMajor writes minor units as a major amount: 500000 → "5000.00".
func formatMajor(minor int64) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d.%02d", sign, minor/100, minor%100)
}

// parseMajor reads a major amount with at most two decimals ("5000", "5000.5", "5 000,50") as
// minor units.
func parseMajor(s string) (int64, bool) {
	s = strings.NewReplacer(" ", "", "\u00a0", "", ",", ".").Replace(s)
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" && !hasFrac || len(frac) > 2 || (hasFrac && frac == "") {
		return 0, false
	}
	if whole == "" {
		whole = "0"
	}
	for _, part := range []string{whole, frac} {
		for _, r := range part {
			if r < '0' || r > '9' {
				return 0, false
			}
		}
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > math.MaxInt64/100-1 {
		return 0, false
	}
	for len(frac) < 2 {
		frac += "0"
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	return w*100 + f, true
}
