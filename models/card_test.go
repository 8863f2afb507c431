package models_test

import (
	"testing"

	"github.com/regulars/regulars/models"
)

func TestValidCard(t *testing.T) {
	for _, tc := range []struct {
		card string
		want bool
	}{
		{"4006381333931", true}, // a retail EAN-13 printed on a real product
		{"7012345678908", true},
		{"7012345678904", false}, // the contract's example: wrong check digit
		{"4006381333932", false},
		{"400638133393", false},   // 12 digits
		{"40063813339310", false}, // 14 digits
		{"40063813339a1", false},
		{"", false},
	} {
		if got := models.ValidCard(tc.card); got != tc.want {
			t.Errorf("ValidCard(%q) = %v, want %v", tc.card, got, tc.want)
		}
	}
}

func TestIssuedCardsAreValidInternalNumbers(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		card, err := models.NewCardNumber()
		if err != nil {
			t.Fatal(err)
		}
		if !models.ValidCard(card) || card[:2] != "29" {
			t.Fatalf("issued card %q is not a valid in-store (29…) EAN-13", card)
		}
		seen[card] = true
	}
	if len(seen) < 199 {
		t.Fatalf("200 issued cards had only %d distinct numbers", len(seen))
	}
	if got := models.WithCheckDigit("400638133393"); got != "4006381333931" {
		t.Fatalf("WithCheckDigit = %s", got)
	}
}
