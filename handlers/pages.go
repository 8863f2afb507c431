package handlers

// The public club pages: the join form, the double opt-in link, the member's preferences (with
// data download and erasure) and unsubscribing. Server-rendered from templates/pages, in the
// visitor's language, without JavaScript. Handlers parse and render; the rules live in models.
//
// Two kinds of member link reach these pages (models/member_links.go). The preferences and
// unsubscribe links are in every campaign mail, whose HTML a marketer writes, so they are low
// privilege: show the page, change name, language, home store and birthday, withdraw consent,
// unsubscribe.
// Downloading the data, erasing the membership and granting consent again take a link the member
// asks for here and gets by mail, valid an hour and once. Every link a mail carries opens a page
// with one button; only the button's POST changes anything, because link scanners open links.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/templates"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/number"
	"golang.org/x/time/rate"
)

// preferencesTTL is how long a preferences link made by a page stays valid (the policy of
// models/token.go: 90 days).
const preferencesTTL = 90 * 24 * time.Hour

// pageBodyLimit caps a page form's body: the forms are a few short fields.
const pageBodyLimit = 64 << 10

// Evidence sources recorded with consent answers given on the pages.
const (
	sourceJoin        = "join"
	sourceConfirm     = "confirm"
	sourcePreferences = "preferences"
	sourceUnsubscribe = "unsubscribe"
	sourceEmailLink   = "email_link" // consent granted with a link mailed on request
)

// pages holds what the page handlers need beyond the Server: the link secret and the
// middleware of the forms (routes.go).
type pages struct {
	s      *Server
	secret []byte
	// rateLimit limits POST /join per client IP (ClubOptions.JoinRate a minute, 429 beyond).
	rateLimit echo.MiddlewareFunc
	// csrfCheck protects the forms: a token in a cookie and in the form, equal.
	csrfCheck echo.MiddlewareFunc
	// viewCounts lets one IP add at most JoinRate join-form views a minute to the funnel: each
	// new client (IP and user agent) is a stored row, and a visitor who varies the user agent
	// would otherwise add one per request. The page is shown either way.
	viewCounts *middleware.RateLimiterMemoryStore
}

// newPages builds the club pages' middleware from the server's club options.
func newPages(s *Server) *pages {
	o := s.club
	perMinute := o.JoinRate
	retryAfter := strconv.Itoa(int(math.Ceil(60 / float64(perMinute)))) // seconds until one more is allowed
	store := middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
		Rate: rate.Limit(float64(perMinute) / 60), Burst: perMinute, ExpiresIn: 3 * time.Minute,
	})
	viewCounts := middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
		Rate: rate.Limit(float64(perMinute) / 60), Burst: perMinute, ExpiresIn: 3 * time.Minute,
	})
	return &pages{s: s, secret: o.Secret, viewCounts: viewCounts,
		rateLimit: middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
			Store:               store,
			IdentifierExtractor: func(c echo.Context) (string, error) { return c.RealIP(), nil },
			DenyHandler: func(c echo.Context, _ string, _ error) error {
				c.Response().Header().Set("Retry-After", retryAfter)
				return echo.NewHTTPError(http.StatusTooManyRequests, "too many join attempts")
			},
			ErrorHandler: func(c echo.Context, err error) error { return err },
		}),
		csrfCheck: middleware.CSRFWithConfig(middleware.CSRFConfig{
			TokenLookup:    "form:_csrf",
			CookieName:     "_csrf",
			CookiePath:     "/",
			CookieHTTPOnly: true,
			CookieSecure:   strings.HasPrefix(o.BaseURL, "https://"),
			CookieSameSite: http.SameSiteLaxMode,
			// A missing token is Echo's 400; to the visitor both are the same stale or forged form.
			ErrorHandler: func(err error, c echo.Context) error {
				return echo.NewHTTPError(http.StatusForbidden, "invalid csrf token").SetInternal(err)
			},
		}),
	}
}

// verifyToken returns the member a link's token names; without a secret no token is valid.
func (p *pages) verifyToken(purpose, token string, now time.Time) (int64, error) {
	if len(p.secret) == 0 {
		return 0, models.ErrTokenInvalid
	}
	return models.VerifyToken(p.secret, purpose, token, now)
}

// guard sets the headers every page needs, limits the body and parses a posted form, so that
// the language of an error page can be read from it.
func (p *pages) guard(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		pageHeaders(c.Response().Header())
		r := c.Request()
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(c.Response(), r.Body, pageBodyLimit)
			var err error
			if strings.HasPrefix(r.Header.Get(echo.HeaderContentType), echo.MIMEMultipartForm) {
				err = r.ParseMultipartForm(pageBodyLimit)
			} else {
				err = r.ParseForm()
			}
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "form too large")
				}
				return echo.NewHTTPError(http.StatusBadRequest, "unreadable form").SetInternal(err)
			}
		}
		return next(c)
	}
}

// pageHeaders: no scripts, no framing, and no Referer, because page addresses carry tokens;
// pages are personal (tokens, CSRF), so nothing is cached.
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// isPagePath reports whether errors on path are shown as HTML pages rather than the API's JSON.
func isPagePath(path string) bool {
	switch {
	case path == "/api" || strings.HasPrefix(path, "/api/"),
		path == "/healthz", path == "/readyz", path == "/metrics":
		return false
	}
	return true
}

// pageLanguage is the visitor's language: a supported ?lang= or form field "lang" (the language
// switch), else the best match for Accept-Language. Only an already parsed form is read, so that
// an error page never consumes a body.
func pageLanguage(c echo.Context) string {
	r := c.Request()
	lang := r.URL.Query().Get("lang")
	if r.Form != nil {
		lang = r.Form.Get("lang")
	}
	if templates.Supported(lang) {
		return lang
	}
	return templates.Match(r.Header.Get("Accept-Language"))
}

// view is what every page template gets; each page uses the fields it needs.
type view struct {
	Lang      string
	Languages []langLink // the same page in the other languages
	CSRF      string
	Token     string // the link's token, carried in forms

	Form            formValues
	Errors          map[string]string // field → message, shown by the field
	ErrorList       []fieldError      // the same, in form order, for the summary
	Stores          []option
	LanguageOptions []option
	BirthDays       []option // the birthday's day and month selects (birthdayOptions)
	BirthMonths     []option
	ConsentPending  bool
	ConsentByMail   bool // ticking the box mails a consent link rather than granting
	NoEmail         bool // the member has no address to mail a link to

	MemberName   string
	CardNumber   string
	TierName     string
	Discount     float64
	DiscountText string
	// Points is the member's points on the welcome and preferences pages; nil without a
	// reward program.
	Points *pointsView

	JoinURL, PrefsURL, CardURL, UnsubscribeURL string

	Title, Message string // the error and link pages; Message also a note on a saved page
}

type langLink struct{ Lang, Name, URL string }

type option struct {
	Value, Name string
	Selected    bool
}

// Code and Lang name an option's value in the templates that read better with them.
func (o option) Code() string { return o.Value }
func (o option) Lang() string { return o.Value }

type formValues struct {
	Name, Email, Phone, HomeStore, Language string
	Consent                                 bool
	// The birthday as the form shows it: day and month ("01"…), and a year or nothing.
	BirthDay, BirthMonth, BirthYear string
	// Birthday is what models get: "--MM-DD", "YYYY-MM-DD", "" for none, or what was typed
	// (readBirthday).
	Birthday string
}

type fieldError struct{ Field, Message string }

// formFields are the fields that have a place on the forms, in their order there; an error on any
// other field is shown in the summary only.
var formFields = []string{"name", "email", "phone", "home_store", "birthday", "language", "marketing_consent"}

// fieldMessageIDs are the catalogue ids of the field errors: the models' English messages are
// for the API, the pages say the same in the visitor's language.
var fieldMessageIDs = map[string]string{
	"name":              "error.name",
	"email":             "error.email",
	"phone":             "error.phone",
	"home_store":        "error.home_store",
	"birthday":          "error.birthday",
	"language":          "error.language",
	"marketing_consent": "error.marketing_consent",
}

// newView starts the view of the current page in lang.
func (p *pages) newView(c echo.Context, lang string) *view {
	v := &view{Lang: lang, Errors: map[string]string{}, JoinURL: pageURL("/join", lang, nil)}
	if tok, ok := c.Get("csrf").(string); ok {
		v.CSRF = tok
	}
	r := c.Request()
	for _, other := range templates.Languages() {
		if other == lang {
			continue
		}
		q := r.URL.Query()
		q.Set("lang", other)
		if r.Method == http.MethodPost { // keep the token, drop the rest of what was posted
			if tok := r.Form.Get("token"); tok != "" {
				q.Set("token", tok)
			}
		}
		v.Languages = append(v.Languages, langLink{Lang: other, Name: templates.T(other, "lang.name", nil), URL: r.URL.Path + "?" + q.Encode()})
	}
	return v
}

// fieldErrors fills v's errors from an EINVALID error; it reports false for any other error.
func (v *view) fieldErrors(err error) bool {
	var me *models.Error
	if !errors.As(err, &me) || me.Code != models.EINVALID {
		return false
	}
	for _, f := range formFields {
		if _, bad := me.Fields[f]; bad {
			msg := templates.T(v.Lang, fieldMessageIDs[f], nil)
			v.Errors[f] = msg
			v.ErrorList = append(v.ErrorList, fieldError{Field: f, Message: msg})
		}
	}
	if len(v.ErrorList) == 0 { // a rule about no field on the form
		v.ErrorList = append(v.ErrorList, fieldError{Field: "main", Message: templates.T(v.Lang, "error.other", nil)})
	}
	return true
}

// render writes page name with status.
func (p *pages) render(c echo.Context, status int, name string, v *view) error {
	var buf bytes.Buffer
	if err := p.s.templates.Page(&buf, name, v.Lang, v); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// pageURL is path?query with lang added, for links that keep the visitor's language.
func pageURL(path, lang string, q url.Values) string {
	if q == nil {
		q = url.Values{}
	}
	q.Set("lang", lang)
	return path + "?" + q.Encode()
}

func tokenURL(path, lang, token string) string {
	return pageURL(path, lang, url.Values{"token": {token}})
}

func evidence(c echo.Context, source string) models.ConsentEvidence {
	return models.ConsentEvidence{Source: source, IP: c.RealIP(), UserAgent: c.Request().UserAgent()}
}

// storeOptions lists the stores for a select, selected preselected.
func (p *pages) storeOptions(c echo.Context, selected string) ([]option, error) {
	stores, err := p.s.db.FindStores(c.Request().Context())
	if err != nil {
		return nil, err
	}
	opts := make([]option, len(stores))
	for i, st := range stores {
		opts[i] = option{Value: st.Code, Name: st.Name, Selected: st.Code == selected}
	}
	return opts, nil
}

// birthdayFields are the birthday's form fields: the page's day, month and year, and birthday, the
// contract's single field ("--MM-DD" or "YYYY-MM-DD") for a form posted by other means.
var birthdayFields = []string{"birthday_day", "birthday_month", "birthday_year", "birthday"}

// readBirthday reads the birthday fields into f. The page asks for a day and a month, which are
// enough, and an optional year: a customer who would rather not tell their age can still get a
// birthday treat. It reports false when the form has none of the fields (a form from before they
// existed), so that saving it leaves the birthday as it is.
//
// The parts become the string models parse: no day, month or year is no birthday, a day and a
// month are "--MM-DD", with a year "YYYY-MM-DD". Anything partial makes a string that models
// refuse, which puts the error by the field.
func readBirthday(c echo.Context, f *formValues) bool {
	form, _ := c.FormParams()
	present := false
	for _, name := range birthdayFields {
		_, ok := form[name]
		present = present || ok
	}
	f.BirthDay = strings.TrimSpace(form.Get("birthday_day"))
	f.BirthMonth = strings.TrimSpace(form.Get("birthday_month"))
	f.BirthYear = strings.TrimSpace(form.Get("birthday_year"))
	switch {
	case f.BirthDay == "" && f.BirthMonth == "" && f.BirthYear == "":
		f.Birthday = strings.TrimSpace(form.Get("birthday"))
	case f.BirthYear == "":
		f.Birthday = "--" + f.BirthMonth + "-" + f.BirthDay
	default:
		f.Birthday = f.BirthYear + "-" + f.BirthMonth + "-" + f.BirthDay
	}
	return present
}

// birthdayForm is the form's birthday parts for b.
func birthdayForm(f *formValues, b models.Birthday) {
	if b.IsZero() {
		return
	}
	f.BirthDay, f.BirthMonth = fmt.Sprintf("%02d", b.Day()), fmt.Sprintf("%02d", int(b.Month()))
	if b.Year() != 0 {
		f.BirthYear = strconv.Itoa(b.Year())
	}
}

// birthdayOptions fills the day (1–31) and month selects, f's chosen ones selected; the month
// names are the catalogue's.
func (v *view) birthdayOptions(f formValues) {
	v.BirthDays, v.BirthMonths = make([]option, 31), make([]option, 12)
	for d := range v.BirthDays {
		val := fmt.Sprintf("%02d", d+1)
		v.BirthDays[d] = option{Value: val, Name: strconv.Itoa(d + 1), Selected: val == f.BirthDay}
	}
	for m := range v.BirthMonths {
		val := fmt.Sprintf("%02d", m+1)
		v.BirthMonths[m] = option{Value: val, Name: templates.T(v.Lang, "form.birthday.month."+val, nil), Selected: val == f.BirthMonth}
	}
}

// consentVersion is the version of the consent text shown in lang. It comes from the catalogue,
// never from the form, so the record names the wording that was really on the page.
func consentVersion(lang string) string { return templates.T(lang, "join.consent.version", nil) }

// joinForm shows the join form, counting the view for the funnel.
func (p *pages) joinForm(c echo.Context) error {
	lang := pageLanguage(c)
	store := c.QueryParam("store")
	if ok, _ := p.viewCounts.Allow(c.RealIP()); ok {
		if err := p.s.db.CountJoinView(c.Request().Context(), store, c.RealIP(), c.Request().UserAgent()); err != nil {
			return err
		}
	}
	return p.renderJoin(c, http.StatusOK, p.newView(c, lang), formValues{HomeStore: store})
}

func (p *pages) renderJoin(c echo.Context, status int, v *view, f formValues) error {
	stores, err := p.storeOptions(c, f.HomeStore)
	if err != nil {
		return err
	}
	v.Form, v.Stores = f, stores
	v.birthdayOptions(f)
	return p.render(c, status, "join", v)
}

// join takes a sign-up. Whatever the outcome (new, pending or already a member) the visitor is
// sent to the same "check your inbox" page: the form never tells who is a member.
func (p *pages) join(c echo.Context) error {
	lang := pageLanguage(c)
	sent := pageURL("/join/sent", lang, nil)
	if c.FormValue("website") != "" { // the honeypot: a bot; look the same, keep nothing
		return c.Redirect(http.StatusSeeOther, sent)
	}
	f := formValues{
		Name:      strings.TrimSpace(c.FormValue("name")),
		Email:     strings.TrimSpace(c.FormValue("email")),
		Phone:     strings.TrimSpace(c.FormValue("phone")),
		HomeStore: strings.TrimSpace(c.FormValue("home_store")),
		Consent:   c.FormValue("marketing_consent") != "",
	}
	readBirthday(c, &f)
	_, err := p.s.db.Join(c.Request().Context(), models.JoinInput{
		Name: f.Name, Email: f.Email, Phone: f.Phone, HomeStore: f.HomeStore, Birthday: f.Birthday,
		MarketingConsent: f.Consent, Language: lang, ConsentTextVersion: consentVersion(lang),
	}, evidence(c, sourceJoin))
	if err != nil {
		v := p.newView(c, lang)
		if v.fieldErrors(err) {
			return p.renderJoin(c, http.StatusUnprocessableEntity, v, f)
		}
		return err
	}
	if p.s.club.MailQueued != nil {
		p.s.club.MailQueued()
	}
	return c.Redirect(http.StatusSeeOther, sent)
}

func (p *pages) joinSent(c echo.Context) error {
	return p.render(c, http.StatusOK, "join_sent", p.newView(c, pageLanguage(c)))
}

// member verifies the request's token for purpose. On a bad token it renders the page that says
// so and returns ok false; the caller then returns err (nil once the page is written).
func (p *pages) member(c echo.Context, purpose string) (id int64, ok bool, err error) {
	id, verr := p.verifyToken(purpose, c.FormValue("token"), time.Now())
	switch {
	case verr == nil:
		return id, true, nil
	case errors.Is(verr, models.ErrTokenExpired):
		return 0, false, p.linkExpired(c)
	default:
		return 0, false, p.linkInvalid(c)
	}
}

func (p *pages) linkInvalid(c echo.Context) error {
	return p.render(c, http.StatusBadRequest, "link_invalid", p.newView(c, pageLanguage(c)))
}

func (p *pages) linkExpired(c echo.Context) error {
	return p.render(c, http.StatusGone, "link_expired", p.newView(c, pageLanguage(c)))
}

// erased is the page for a link of a member who erased themselves.
func (p *pages) erased(c echo.Context, status int) error {
	return p.render(c, status, "erased", p.newView(c, pageLanguage(c)))
}

func isNotFound(err error) bool { return models.ErrorCode(err) == models.ENOTFOUND }

// confirmForm is the page the confirmation link opens: one button that posts the token. Opening
// it changes nothing, because mail gateways' link scanners open every link in a mail, and a
// sign-up typed in with someone else's address must not be confirmed by them.
func (p *pages) confirmForm(c echo.Context) error {
	if _, ok, err := p.member(c, models.TokenConfirm); !ok {
		return err
	}
	v := p.newView(c, pageLanguage(c))
	v.Token = c.FormValue("token")
	return p.render(c, http.StatusOK, "confirm", v)
}

// confirm completes the double opt-in (the button of confirmForm) and welcomes the member with
// their card. A second click shows the same page.
func (p *pages) confirm(c echo.Context) error {
	id, ok, err := p.member(c, models.TokenConfirm)
	if !ok {
		return err
	}
	m, _, err := p.s.db.ConfirmMember(c.Request().Context(), id, evidence(c, sourceConfirm))
	if isNotFound(err) { // purged or erased: the link leads nowhere any more
		return p.linkInvalid(c)
	}
	if err != nil {
		return err
	}
	if p.s.club.MailQueued != nil {
		p.s.club.MailQueued()
	}
	tier, discount, err := p.s.db.FindMemberTier(c.Request().Context(), m.ID)
	if err != nil {
		return err
	}
	lang := pageLanguage(c)
	v := p.newView(c, lang)
	prefs := models.SignToken(p.secret, models.TokenPreferences, m.ID, time.Now().Add(preferencesTTL))
	v.MemberName, v.CardNumber = m.Name, m.Card
	if tier != nil {
		v.TierName = *tier
	}
	v.Discount, v.DiscountText = discount, formatPercent(lang, discount)
	v.CardURL = "/card.png?" + url.Values{"token": {prefs}}.Encode()
	v.PrefsURL = tokenURL("/preferences", lang, prefs)
	if v.Points, err = p.memberPoints(c, m.ID, lang); err != nil {
		return err
	}
	return p.render(c, http.StatusOK, "welcome", v)
}

// maxStampsDrawn is the largest stamp card drawn as a row of stamps; a larger one is told in
// words only.
const maxStampsDrawn = 50

// stampsPerRow is how many stamps one row of the card holds (narrow enough for a phone).
const stampsPerRow = 10

// pointsView is the points part of the welcome and preferences pages: the balance and, for a
// stamp program, the card (Size stamps, Filled of them filled; Stamps is what is drawn).
type pointsView struct {
	Balance      int
	BalanceText  string
	Filled, Size int
	Stamps       []stampView
	Width        int // of the drawing, in px
	Height       int
}

// stampView is one stamp of the drawing: its centre and whether it is filled.
type stampView struct {
	X, Y   int
	Filled bool
}

// stampCell is the side of the square each stamp (a circle of radius 11) is drawn in, in px.
const stampCell = 28

// memberPoints is member id's points as the pages show them in lang, nil without a program.
func (p *pages) memberPoints(c echo.Context, id int64, lang string) (*pointsView, error) {
	s, err := p.s.db.FindPointsSummary(c.Request().Context(), id)
	if err != nil || !s.Program {
		return nil, err
	}
	v := &pointsView{Balance: s.Balance, Size: s.StampCost, Filled: s.Stamps(),
		BalanceText: message.NewPrinter(language.Make(lang)).Sprint(number.Decimal(s.Balance))}
	if v.Size > 0 && v.Size <= maxStampsDrawn {
		for i := range v.Size {
			v.Stamps = append(v.Stamps, stampView{X: (i%stampsPerRow)*stampCell + stampCell/2,
				Y: (i/stampsPerRow)*stampCell + stampCell/2, Filled: i < v.Filled})
		}
		v.Width = min(v.Size, stampsPerRow) * stampCell
		v.Height = ((v.Size + stampsPerRow - 1) / stampsPerRow) * stampCell
	}
	return v, nil
}

// formatPercent writes a discount the way lang writes numbers (7.5 / 7,5).
func formatPercent(lang string, pct float64) string {
	return message.NewPrinter(language.Make(lang)).Sprint(number.Decimal(pct, number.MaxFractionDigits(2)))
}

// cardImage is the barcode of the member's card, for the welcome page.
func (p *pages) cardImage(c echo.Context) error {
	id, ok, err := p.member(c, models.TokenPreferences)
	if !ok {
		return err
	}
	m, err := p.s.db.FindMemberByID(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if m.Status == models.StatusErased || m.Card == "" {
		return echo.ErrNotFound
	}
	png, err := templates.BarcodePNG(m.Card, 300, 120)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "image/png", png)
}

// preferencesMember is the member a preferences link names, or ok false with the page written
// that says why there is none.
func (p *pages) preferencesMember(c echo.Context) (m *models.Member, ok bool, err error) {
	id, ok, err := p.member(c, models.TokenPreferences)
	if !ok {
		return nil, false, err
	}
	return p.liveMember(c, id)
}

// liveMember is member id, or ok false with the page written that says why a link to them leads
// nowhere (missing or erased).
func (p *pages) liveMember(c echo.Context, id int64) (m *models.Member, ok bool, err error) {
	m, err = p.s.db.FindMemberByID(c.Request().Context(), id)
	switch {
	case isNotFound(err):
		return nil, false, p.linkInvalid(c)
	case err != nil:
		return nil, false, err
	case m.Status == models.StatusErased:
		return nil, false, p.erased(c, http.StatusGone)
	}
	return m, true, nil
}

func (p *pages) preferencesForm(c echo.Context) error {
	m, ok, err := p.preferencesMember(c)
	if !ok {
		return err
	}
	f := formValues{Name: m.Name, HomeStore: m.HomeStore, Language: m.Language, Consent: hasConsent(m)}
	birthdayForm(&f, m.Birthday)
	return p.renderPreferences(c, http.StatusOK, p.newView(c, pageLanguage(c)), m, f)
}

func (p *pages) renderPreferences(c echo.Context, status int, v *view, m *models.Member, f formValues) error {
	stores, err := p.storeOptions(c, f.HomeStore)
	if err != nil {
		return err
	}
	token := c.FormValue("token")
	v.Form, v.Stores, v.Token, v.CardNumber = f, stores, token, m.Card
	v.ConsentPending = m.MarketingConsent == models.ConsentPending
	v.NoEmail = m.Email == nil || *m.Email == ""
	v.ConsentByMail = !hasConsent(m) && !v.NoEmail
	v.birthdayOptions(f)
	if v.Points, err = p.memberPoints(c, m.ID, v.Lang); err != nil {
		return err
	}
	for _, l := range templates.Languages() {
		v.LanguageOptions = append(v.LanguageOptions, option{Value: l, Name: templates.T(l, "lang.name", nil), Selected: l == f.Language})
	}
	return p.render(c, status, "preferences", v)
}

// hasConsent reports whether m's marketing consent is given (confirmed, or waiting for its
// confirmation).
func hasConsent(m *models.Member) bool {
	return m.MarketingConsent == models.ConsentPending || m.MarketingConsent == models.ConsentConfirmed
}

// savePreferences saves the whole form: every field is on it, so each is set (an empty birthday
// clears it). Unticking the consent box withdraws consent at once; ticking it while consent is
// withdrawn or was never given grants nothing (this page's link is low privilege) but mails the
// member a consent link.
func (p *pages) savePreferences(c echo.Context) error {
	m, ok, err := p.preferencesMember(c)
	if !ok {
		return err
	}
	lang := pageLanguage(c)
	f := formValues{
		Name:      strings.TrimSpace(c.FormValue("name")),
		HomeStore: strings.TrimSpace(c.FormValue("home_store")),
		Language:  c.FormValue("language"),
		Consent:   c.FormValue("marketing_consent") != "",
	}
	var birthday *string // nil: unchanged
	if readBirthday(c, &f) {
		birthday = &f.Birthday
	}
	var consent *bool // nil: unchanged
	askConsent := f.Consent && !hasConsent(m)
	if !f.Consent && hasConsent(m) {
		consent = &f.Consent
	}
	if askConsent && (m.Email == nil || *m.Email == "") {
		v := p.newView(c, lang)
		msg := templates.T(lang, "error.consent_no_email", nil)
		v.Errors["marketing_consent"] = msg
		v.ErrorList = append(v.ErrorList, fieldError{Field: "marketing_consent", Message: msg})
		return p.renderPreferences(c, http.StatusUnprocessableEntity, v, m, f)
	}
	ctx := c.Request().Context()
	_, err = p.s.db.UpdatePreferences(ctx, m.ID, models.PreferencesInput{
		Name: &f.Name, HomeStore: &f.HomeStore, Language: &f.Language, Birthday: birthday, MarketingConsent: consent,
		ConsentTextVersion: consentVersion(lang),
	}, evidence(c, sourcePreferences))
	if err != nil {
		v := p.newView(c, lang)
		if v.fieldErrors(err) {
			return p.renderPreferences(c, http.StatusUnprocessableEntity, v, m, f)
		}
		if isNotFound(err) {
			return p.erased(c, http.StatusGone)
		}
		return err
	}
	if templates.Supported(f.Language) { // answer in the language just chosen
		lang = f.Language
	}
	v := p.newView(c, lang)
	v.Lang = lang
	v.PrefsURL = tokenURL("/preferences", lang, c.FormValue("token"))
	if askConsent {
		if err := p.mailLink(c, m.ID, models.LinkConsent, lang); err != nil {
			return err
		}
		v.Message = templates.T(lang, "link_sent.consent", nil)
	}
	return p.render(c, http.StatusOK, "preferences_saved", v)
}

// mailLink queues a link for action to member id's own address (nothing beyond the mailbox's
// hourly cap, which the visitor is not told).
func (p *pages) mailLink(c echo.Context, id int64, action, lang string) error {
	req, err := p.s.db.RequestMemberLink(c.Request().Context(), id, action, lang)
	if err != nil {
		return err
	}
	if req.Queued && p.s.club.MailQueued != nil {
		p.s.club.MailQueued()
	}
	return nil
}

// requestLink is the preferences page's "Download my data" and "Erase my membership": it mails
// the member a link that does it, and says so.
func (p *pages) requestLink(c echo.Context) error {
	m, ok, err := p.preferencesMember(c)
	if !ok {
		return err
	}
	action := c.FormValue("action")
	if action != models.LinkExport && action != models.LinkErase {
		return echo.NewHTTPError(http.StatusBadRequest, "no such request")
	}
	lang := pageLanguage(c)
	v := p.newView(c, lang)
	v.PrefsURL = tokenURL("/preferences", lang, c.FormValue("token"))
	err = p.mailLink(c, m.ID, action, lang)
	switch {
	case models.ErrorCode(err) == models.EINVALID: // no email address
		return p.render(c, http.StatusUnprocessableEntity, "link_no_email", v)
	case isNotFound(err):
		return p.erased(c, http.StatusGone)
	case err != nil:
		return err
	}
	v.Message = templates.T(lang, "link_sent."+action, nil)
	return p.render(c, http.StatusOK, "link_sent", v)
}

// memberLink verifies the request's token as a mailed link for action, and that the link is still
// unused and fresh. On a bad link it renders the page that says so and returns ok false; the
// caller then returns err (nil once the page is written). Only the POST that uses the link makes
// it used: the check here is for the page with the button.
func (p *pages) memberLink(c echo.Context, action string) (l *models.MemberLink, ok bool, err error) {
	now := p.s.db.Now()
	id, verr := p.verifyToken(models.LinkTokenPurpose(action), c.FormValue("token"), now)
	switch {
	case errors.Is(verr, models.ErrTokenExpired):
		return nil, false, p.linkGone(c, models.ErrTokenExpired)
	case verr != nil:
		return nil, false, p.linkInvalid(c)
	}
	l, err = p.s.db.FindMemberLink(c.Request().Context(), id)
	switch {
	case isNotFound(err):
		return nil, false, p.linkInvalid(c)
	case err != nil:
		return nil, false, err
	case l.Action != action:
		return nil, false, p.linkInvalid(c)
	}
	if err := l.Usable(now); err != nil {
		return nil, false, p.linkGone(c, err)
	}
	if _, ok, err := p.liveMember(c, l.MemberID); !ok {
		return nil, false, err
	}
	return l, true, nil
}

// linkGone is the page for a mailed link that is used (models.ErrLinkUsed) or expired.
func (p *pages) linkGone(c echo.Context, why error) error {
	v := p.newView(c, pageLanguage(c))
	key := "link_gone.expired"
	if errors.Is(why, models.ErrLinkUsed) {
		key = "link_gone.used"
	}
	v.Title, v.Message = templates.T(v.Lang, key+".title", nil), templates.T(v.Lang, key+".text", nil)
	return p.render(c, http.StatusGone, "link_gone", v)
}

// linkUseFailed renders the page for a link that could not be used; for other errors it returns
// them.
func (p *pages) linkUseFailed(c echo.Context, err error) error {
	switch {
	case errors.Is(err, models.ErrLinkUsed), errors.Is(err, models.ErrTokenExpired):
		return p.linkGone(c, err)
	case isNotFound(err): // the member was erased meanwhile
		return p.erased(c, http.StatusGone)
	}
	return err
}

// linkPage renders the one-button page of a mailed link. Its way back to the preferences is a
// fresh preferences link: the member has just shown they read their own mail.
func (p *pages) linkPage(c echo.Context, l *models.MemberLink, name string) error {
	lang := pageLanguage(c)
	v := p.newView(c, lang)
	v.Token = c.FormValue("token")
	v.PrefsURL = tokenURL("/preferences", lang, models.SignToken(p.secret, models.TokenPreferences, l.MemberID, p.s.db.Now().Add(preferencesTTL)))
	return p.render(c, http.StatusOK, name, v)
}

// linkForm is the GET of a mailed link for action: its one-button page, which changes nothing
// (link scanners follow GETs).
func (p *pages) linkForm(action, page string) echo.HandlerFunc {
	return func(c echo.Context) error {
		l, ok, err := p.memberLink(c, action)
		if !ok {
			return err
		}
		return p.linkPage(c, l, page)
	}
}

// export sends everything held about the member as a JSON download, using the link.
func (p *pages) export(c echo.Context) error {
	l, ok, err := p.memberLink(c, models.LinkExport)
	if !ok {
		return err
	}
	x, err := p.s.db.ExportMemberByLink(c.Request().Context(), l.ID)
	if err != nil {
		return p.linkUseFailed(c, err)
	}
	body, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		return fmt.Errorf("export member %d: %w", l.MemberID, err)
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="regulars-membership-`+x.Member.Card+`.json"`)
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
}

func (p *pages) erase(c echo.Context) error {
	l, ok, err := p.memberLink(c, models.LinkErase)
	if !ok {
		return err
	}
	if err := p.s.db.EraseMemberByLink(c.Request().Context(), l.ID); err != nil {
		return p.linkUseFailed(c, err)
	}
	return p.erased(c, http.StatusOK)
}

// grantConsent records marketing consent as the member's own act: they asked for the link on
// the preferences page, opened it from their mailbox and pressed the button next to the wording.
func (p *pages) grantConsent(c echo.Context) error {
	l, ok, err := p.memberLink(c, models.LinkConsent)
	if !ok {
		return err
	}
	lang := pageLanguage(c)
	_, err = p.s.db.GrantConsentByLink(c.Request().Context(), l.ID, consentVersion(lang), evidence(c, sourceEmailLink))
	if err != nil {
		if models.ErrorCode(err) == models.EINVALID { // the address was removed meanwhile
			return p.render(c, http.StatusUnprocessableEntity, "link_no_email", p.newView(c, lang))
		}
		return p.linkUseFailed(c, err)
	}
	return p.linkPage(c, l, "consent_given")
}

// unsubscribeForm is the one-button page; opening it changes nothing (link checkers and mail
// scanners open links).
func (p *pages) unsubscribeForm(c echo.Context) error {
	if _, ok, err := p.member(c, models.TokenUnsubscribe); !ok {
		return err
	}
	lang := pageLanguage(c)
	v := p.newView(c, lang)
	v.UnsubscribeURL = tokenURL("/unsubscribe", lang, c.FormValue("token"))
	return p.render(c, http.StatusOK, "unsubscribe", v)
}

// unsubscribe withdraws marketing consent at once: from the page's button, or as the RFC 8058
// one-click POST of a mail provider (body List-Unsubscribe=One-Click), which gets a short text.
func (p *pages) unsubscribe(c echo.Context) error {
	id, ok, err := p.member(c, models.TokenUnsubscribe)
	if !ok {
		return err
	}
	// A purged member is mailed nothing any more: unsubscribed either way.
	if _, err := p.s.db.Unsubscribe(c.Request().Context(), id, evidence(c, sourceUnsubscribe)); err != nil && !isNotFound(err) {
		return err
	}
	lang := pageLanguage(c)
	if c.FormValue("List-Unsubscribe") == "One-Click" {
		return c.String(http.StatusOK, templates.T(lang, "unsubscribed.one_click", nil))
	}
	v := p.newView(c, lang)
	prefs := models.SignToken(p.secret, models.TokenPreferences, id, time.Now().Add(preferencesTTL))
	v.PrefsURL = tokenURL("/preferences", lang, prefs)
	return p.render(c, http.StatusOK, "unsubscribed", v)
}

// static serves the stylesheet and images the pages link to.
func (p *pages) static(c echo.Context) error {
	h := c.Response().Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "public, max-age=3600")
	name := c.Param("file")
	if _, err := fs.Stat(templates.Static(), name); err != nil || !fs.ValidPath(name) {
		return echo.ErrNotFound
	}
	http.ServeFileFS(c.Response(), c.Request(), templates.Static(), name)
	return nil
}

// pageStatusIDs are the statuses with their own error text; others show as 500's.
var pageStatusIDs = map[int]string{400: "error.400", 403: "error.403", 404: "error.404", 405: "error.405",
	413: "error.413", 429: "error.429", 500: "error.500", 503: "error.503"}

// renderPageFailure shows a failed request as an HTML page in the visitor's language.
func (s *Server) renderPageFailure(c echo.Context, f failure) error {
	h := c.Response().Header()
	pageHeaders(h)
	if c.Request().Method == http.MethodHead {
		return c.NoContent(f.status)
	}
	lang := pageLanguage(c)
	id, ok := pageStatusIDs[f.status]
	if !ok {
		id = pageStatusIDs[http.StatusInternalServerError]
	}
	data := map[string]string{"RetryAfter": h.Get("Retry-After")}
	v := &view{Lang: lang, Title: templates.T(lang, id+".title", nil), Message: templates.T(lang, id+".text", data),
		JoinURL: pageURL("/join", lang, nil)}
	var buf bytes.Buffer
	if err := s.templates.Page(&buf, "error", lang, v); err != nil {
		return err
	}
	return c.HTMLBlob(f.status, buf.Bytes())
}
