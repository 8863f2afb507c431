package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

// TestTheWelcomeAndPreferencesPagesShowTheStampCard: a member of a stamp program (1 point a
// visit, the cheapest reward 10 points) with 3 visits sees 3 filled stamps of 10 and the words
// for them, in each language, on the welcome page and the preferences page.
func TestTheWelcomeAndPreferencesPagesShowTheStampCard(t *testing.T) {
	for _, tc := range []struct{ lang, balance, stamps, full string }{
		{"en", "Points: 3", "3 of 10 stamps", "Your card is full"},
		{"nb", "Poeng: 3", "3 av 10 stempler", "Kortet ditt er fullt"},
	} {
		t.Run("in "+tc.lang, func(t *testing.T) {
			s := newSite(t, ClubOptions{})
			m := confirmed(t, s)
			confirmLink := token(models.TokenConfirm, m.ID, time.Now().Add(time.Hour))
			prefsLink := "/preferences?" + url.Values{"lang": {tc.lang}, "token": {token(models.TokenPreferences, m.ID, time.Now().Add(time.Hour))}}.Encode()
			if p := s.get(t, prefsLink); p.Status != http.StatusOK || strings.Contains(p.Body, `class="card points"`) {
				t.Fatalf("without a program the preferences show points: %d\n%s", p.Status, p.Body)
			}
			stampCard(t, s.db, m.Card, 10, 3)
			form := s.get(t, "/confirm?token="+url.QueryEscape(confirmLink))
			welcome := s.post(t, "/confirm", url.Values{"_csrf": {csrf(t, form)}, "token": {confirmLink}, "lang": {tc.lang}})
			prefs := s.get(t, prefsLink)
			for name, p := range map[string]page{"welcome": welcome, "preferences": prefs} {
				if p.Status != http.StatusOK {
					t.Fatalf("%s: %d\n%s", name, p.Status, p.Body)
				}
				for _, want := range []string{tc.balance, tc.stamps, `<svg class="stamps" aria-hidden="true"`} {
					if !strings.Contains(p.Body, want) {
						t.Errorf("the %s page lacks %q", name, want)
					}
				}
				if filled, all := strings.Count(p.Body, `fill="currentColor"`), strings.Count(p.Body, "<circle "); filled != 3 || all != 10 {
					t.Errorf("the %s page draws %d filled stamps of %d, want 3 of 10", name, filled, all)
				}
				if strings.Contains(p.Body, tc.full) {
					t.Errorf("the %s page calls a card of 3 stamps full", name)
				}
			}
		})
	}
}
