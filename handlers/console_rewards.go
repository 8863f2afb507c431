package handlers

// Console page of the rewards (product.md, "Rewards"): the program and the rewards points buy.
// The admin changes them, a marketer reads them; the models validate (models/rewards.go) and
// their field errors show next to the fields, with what was typed kept.

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

// Discount kinds of the reward forms.
const (
	discountAmount  = "amount"
	discountPercent = "percent"
)

// programForm is the program's form, as stored or as typed, with its errors by field name
// (points_per_visit, points_per_major_unit, min_amount, expire_after_days).
type programForm struct {
	PointsPerVisit, PointsPerMajorUnit, MinAmount, ExpireAfterDays string
	Errors                                                         map[string]string
}

// rewardForm is one reward's form (a new one when New), as stored or as typed, with its errors
// by field name (code, name, cost_points, discount, active).
type rewardForm struct {
	New                              bool
	Code, Name, CostPoints, Discount string
	DiscountKind                     string // discountAmount or discountPercent
	Active                           bool
	Errors                           map[string]string
	Stored                           *models.Reward // nil for the new reward's form
}

// rewardsView is the rewards page's data.
type rewardsView struct {
	CanEdit  bool
	Currency string // the shops' currency, "" when they differ
	Program  *models.RewardProgram
	Form     programForm
	Rewards  []rewardForm
	New      rewardForm
	Error    string // a summary above the form that failed
	Failed   string // "program", "new" or the code of the reward whose form failed
}

func (cn *console) rewards(c echo.Context) error {
	flash := ""
	switch c.QueryParam("saved") {
	case "program":
		flash = "Reward program saved."
	case "reward":
		flash = "Reward saved."
	}
	v, err := cn.rewardsView(c)
	if err != nil {
		return err
	}
	return cn.render(c, http.StatusOK, "rewards", consolePage{Title: "Rewards", Nav: "rewards", Flash: flash, Data: v})
}

// rewardsView reads the program and the rewards into forms showing what is stored.
func (cn *console) rewardsView(c echo.Context) (*rewardsView, error) {
	ctx := c.Request().Context()
	v := &rewardsView{CanEdit: currentConsoleUser(c).Role == models.RoleAdmin,
		New: rewardForm{New: true, DiscountKind: discountAmount, Active: true, Errors: map[string]string{}}}
	var err error
	if v.Currency, err = cn.currency(c); err != nil {
		return nil, err
	}
	digits := templates.MinorDigits(v.Currency)
	v.Program, err = cn.s.db.FindRewardProgram(ctx)
	switch {
	case models.ErrorCode(err) == models.ENOTFOUND:
		v.Form = programForm{PointsPerVisit: "0", PointsPerMajorUnit: "0", MinAmount: formatAmount(0, digits)}
	case err != nil:
		return nil, err
	default:
		p := v.Program
		v.Form = programForm{PointsPerVisit: strconv.Itoa(p.PointsPerVisit),
			PointsPerMajorUnit: strconv.FormatFloat(p.PointsPerMajorUnit, 'f', -1, 64),
			MinAmount:          formatAmount(p.MinAmount, digits)}
		if p.ExpireAfterDays != nil {
			v.Form.ExpireAfterDays = strconv.Itoa(*p.ExpireAfterDays)
		}
	}
	v.Form.Errors = map[string]string{}
	rewards, err := cn.s.db.FindRewards(ctx)
	if err != nil {
		return nil, err
	}
	for i := range rewards {
		r := &rewards[i]
		f := rewardForm{Code: r.Code, Name: r.Name, CostPoints: strconv.Itoa(r.CostPoints), Active: r.Active,
			DiscountKind: discountAmount, Errors: map[string]string{}, Stored: r}
		if r.DiscountMinor != nil {
			f.Discount = formatAmount(*r.DiscountMinor, digits)
		}
		if r.DiscountPercent != nil {
			f.DiscountKind, f.Discount = discountPercent, strconv.FormatFloat(*r.DiscountPercent, 'f', -1, 64)
		}
		v.Rewards = append(v.Rewards, f)
	}
	return v, nil
}

// saveRewardProgram replaces the program with the form's.
func (cn *console) saveRewardProgram(c echo.Context) error {
	v, err := cn.rewardsView(c)
	if err != nil {
		return err
	}
	f := programForm{PointsPerVisit: strings.TrimSpace(c.FormValue("points_per_visit")),
		PointsPerMajorUnit: strings.TrimSpace(c.FormValue("points_per_major_unit")),
		MinAmount:          strings.TrimSpace(c.FormValue("min_amount")),
		ExpireAfterDays:    strings.TrimSpace(c.FormValue("expire_after_days")), Errors: map[string]string{}}
	digits := templates.MinorDigits(v.Currency)
	in := models.RewardProgramInput{PointsPerVisit: formInt(f.PointsPerVisit), ExpireAfterDays: formInt(f.ExpireAfterDays),
		PointsPerMajorUnit: formFloat(f.PointsPerMajorUnit, "points_per_major_unit", "must be a number such as 1 or 0.5", f.Errors)}
	if f.MinAmount != "" {
		in.MinAmount = formAmount(f.MinAmount, digits)
	}
	_, err = cn.s.db.SetRewardProgram(c.Request().Context(), in)
	if err == nil {
		cn.s.log.InfoContext(c.Request().Context(), "console reward program saved", "by", currentConsoleUser(c).Email)
		return c.Redirect(http.StatusSeeOther, "/console/rewards?saved=program")
	}
	if !fieldErrorsInto(err, f.Errors, nil) {
		return err
	}
	v.Form, v.Failed, v.Error = f, "program", "The program was not saved: correct the fields marked below."
	return cn.render(c, http.StatusUnprocessableEntity, "rewards", consolePage{Title: "Rewards", Nav: "rewards", Data: v})
}

// createReward adds the reward of the form below the list.
func (cn *console) createReward(c echo.Context) error {
	return cn.saveReward(c, "")
}

// updateReward changes reward :code (an unticked "Active" deactivates it). The code sits under
// edit/ so that a reward may be called "program".
func (cn *console) updateReward(c echo.Context) error {
	return cn.saveReward(c, c.Param("code"))
}

// saveReward creates a reward (code "") or changes reward code from the form posted.
func (cn *console) saveReward(c echo.Context, code string) error {
	ctx := c.Request().Context()
	v, err := cn.rewardsView(c)
	if err != nil {
		return err
	}
	f := rewardForm{New: code == "", Code: code, Name: c.FormValue("name"),
		CostPoints: strings.TrimSpace(c.FormValue("cost_points")), Discount: strings.TrimSpace(c.FormValue("discount")),
		DiscountKind: c.FormValue("discount_kind"), Active: c.FormValue("active") != "", Errors: map[string]string{}}
	if f.New {
		f.Code = strings.TrimSpace(c.FormValue("code"))
	}
	if f.DiscountKind != discountPercent {
		f.DiscountKind = discountAmount
	}
	in := models.RewardInput{Code: &f.Code, Name: &f.Name, CostPoints: formInt(f.CostPoints), Active: &f.Active}
	switch {
	case f.Discount == "":
		if !f.New {
			f.Errors["discount"] = "is required"
		}
	case f.DiscountKind == discountPercent:
		in.DiscountPercent = formFloat(strings.TrimSuffix(f.Discount, "%"), "discount", "must be a number such as 10 or 12.5", f.Errors)
	default:
		in.DiscountMinor = formAmount(f.Discount, templates.MinorDigits(v.Currency))
	}
	if f.New {
		_, err = cn.s.db.CreateReward(ctx, in)
	} else if len(f.Errors) == 0 {
		_, err = cn.s.db.UpdateReward(ctx, code, in)
	}
	if err == nil && len(f.Errors) == 0 {
		cn.s.log.InfoContext(ctx, "console reward saved", "reward", f.Code, "by", currentConsoleUser(c).Email)
		return c.Redirect(http.StatusSeeOther, "/console/rewards?saved=reward")
	}
	discountField := map[string]string{"discount_minor": "discount", "discount_percent": "discount"}
	if err != nil && !fieldErrorsInto(err, f.Errors, discountField) {
		return err
	}
	v.Error = "The reward was not saved: correct the fields marked below."
	if f.New {
		v.New, v.Failed = f, "new"
	} else {
		v.Failed = code
		for i := range v.Rewards {
			if v.Rewards[i].Code == code {
				f.Stored = v.Rewards[i].Stored
				v.Rewards[i] = f
			}
		}
	}
	return cn.render(c, http.StatusUnprocessableEntity, "rewards", consolePage{Title: "Rewards", Nav: "rewards", Data: v})
}

// fieldErrorsInto adds the field errors of an EINVALID or ECONFLICT error to errs, under the
// names rename gives (the field's own otherwise), keeping an error the form found first. It
// reports false for any other error.
func fieldErrorsInto(err error, errs map[string]string, rename map[string]string) bool {
	var domain *models.Error
	if !errors.As(err, &domain) || (domain.Code != models.EINVALID && domain.Code != models.ECONFLICT) || len(domain.Fields) == 0 {
		return false
	}
	for field, why := range domain.Fields {
		if name, ok := rename[field]; ok {
			field = name
		}
		if _, ok := errs[field]; !ok {
			errs[field] = why
		}
	}
	return true
}

// formInt reads a whole number typed in a form; empty is absent, anything else not a number is
// the model's Bad.
func formInt(s string) models.Int {
	s = strings.TrimSpace(s)
	if s == "" {
		return models.Int{}
	}
	v, err := strconv.ParseInt(strings.NewReplacer(" ", "", "\u00a0", "").Replace(s), 10, 64)
	if err != nil {
		return models.Int{Present: true, Bad: "must be a whole number"}
	}
	return models.Int{Present: true, Value: v}
}

// formAmount reads an amount typed in major units with at most digits decimals as minor units.
func formAmount(s string, digits int) models.Int {
	minor, ok := parseAmount(s, digits)
	if !ok {
		return models.Int{Present: true, Bad: fmt.Sprintf("must be an amount such as 35 or 35.%s", strings.Repeat("5", digits))}
	}
	return models.Int{Present: true, Value: minor}
}

// formFloat reads a decimal number ("0.5", "0,5"); empty is nil. One that is not a number is NaN,
// which the model refuses, and errs[field] says why in the form's words.
func formFloat(s, field, why string, errs map[string]string) *float64 {
	if s = strings.TrimSpace(s); s == "" {
		return nil
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", "."), 64)
	if err != nil || math.IsInf(v, 0) {
		v = math.NaN()
		errs[field] = why
	}
	return &v
}

// parseAmount reads a major amount with at most digits decimals ("5000", "5000.5", "5 000,50")
// as minor units.
func parseAmount(s string, digits int) (int64, bool) {
	s = strings.NewReplacer(" ", "", "\u00a0", "", "\u202f", "", ",", ".").Replace(s)
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" && !hasFrac || len(frac) > digits || (hasFrac && frac == "") {
		return 0, false
	}
	if whole == "" {
		whole = "0"
	}
	if strings.Trim(whole+frac, "0123456789") != "" {
		return 0, false
	}
	scale := int64(math.Pow10(digits))
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > math.MaxInt64/scale-1 {
		return 0, false
	}
	frac += strings.Repeat("0", digits-len(frac))
	var f int64
	if frac != "" {
		f, _ = strconv.ParseInt(frac, 10, 64)
	}
	return w*scale + f, true
}

// formatAmount writes minor units as the major amount a form shows: 350000 with 2 digits is
// "3500.00".
func formatAmount(minor int64, digits int) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	if digits == 0 {
		return sign + strconv.FormatInt(minor, 10)
	}
	scale := int64(math.Pow10(digits))
	return fmt.Sprintf("%s%d.%0*d", sign, minor/scale, digits, minor%scale)
}
