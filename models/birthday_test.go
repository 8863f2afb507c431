package models_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

// birthdayNow is the fixed clock of the birthday tests.
var birthdayNow = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func TestParseBirthday(t *testing.T) {
	tests := []struct {
		name, in, want string
		why            string // a part of the error's text; "" when valid
	}{
		{"a day and a month are a birthday without a year", "--05-17", "--05-17", ""},
		{"29 February is a birthday without a year", "--02-29", "--02-29", ""},
		{"a full date is kept with its year", "1990-05-17", "1990-05-17", ""},
		{"a leap day in a leap year is a date", "2000-02-29", "2000-02-29", ""},
		{"spaces around are ignored", " --12-31 ", "--12-31", ""},
		{"nothing is no birthday", "", "", ""},
		{"today is not in the future", "2026-12-06", "2026-12-06", ""},
		{"30 February does not exist", "--02-30", "", "February has no day 30"},
		{"31 April does not exist", "--04-31", "", "April has no day 31"},
		{"29 February 2023 does not exist", "2023-02-29", "", "February 2023 has no day 29"},
		{"month 13 does not exist", "--13-01", "", "no month 13"},
		{"day 0 does not exist", "--01-00", "", "no day 0"},
		{"a year before 1900 is refused", "1899-12-31", "", "1900 or later"},
		{"the year 4 is refused like any other before 1900", "0004-02-29", "", "1900 or later"},
		{"a date after today is in the future", "2026-12-08", "", "in the future"},
		{"a year in the future is in the future", "2027-01-01", "", "in the future"},
		{"a month and day without the dashes is refused", "05-17", "", "--MM-DD"},
		{"one dash is refused", "-05-17", "", "--MM-DD"},
		{"a day first is refused", "17.05.1990", "", "--MM-DD"},
		{"single digits are refused", "1990-5-17", "", "--MM-DD"},
		{"signs are not digits", "--+5-17", "", "--MM-DD"},
		{"a time is refused", "1990-05-17T00:00:00Z", "", "--MM-DD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := models.ParseBirthday(tc.in, birthdayNow)
			switch {
			case tc.why == "" && err != nil:
				t.Fatalf("ParseBirthday(%q): %v", tc.in, err)
			case tc.why != "" && (err == nil || !strings.Contains(err.Error(), tc.why)):
				t.Fatalf("ParseBirthday(%q) = %v, %v; want an error saying %q", tc.in, b, err, tc.why)
			case b.String() != tc.want:
				t.Fatalf("ParseBirthday(%q) = %q, want %q", tc.in, b, tc.want)
			}
		})
	}
}

func TestBirthdayJSON(t *testing.T) {
	type holder struct {
		Birthday models.Birthday `json:"birthday,omitzero"`
	}
	for _, in := range []string{"--02-29", "1990-05-17"} {
		b, err := models.ParseBirthday(in, birthdayNow)
		if err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(holder{b})
		if err != nil || string(out) != `{"birthday":"`+in+`"}` {
			t.Errorf("%s marshals as %s, %v", in, out, err)
		}
		var back holder
		if err := json.Unmarshal(out, &back); err != nil || back.Birthday != b {
			t.Errorf("%s: unmarshalled %v, %v", in, back.Birthday, err)
		}
	}
	if out, _ := json.Marshal(holder{}); string(out) != `{}` {
		t.Errorf("no birthday marshals as %s, want it left out", out)
	}
	var h holder
	if err := json.Unmarshal([]byte(`{"birthday":"--02-30"}`), &h); err == nil {
		t.Error("unmarshalling --02-30 succeeded")
	}
}

// TestBirthdayStoredForm checks the stored form against PostgreSQL itself: a birthday without a
// year is a date in the leap year 4, so 29 February fits, and every form comes back as it went in.
func TestBirthdayStoredForm(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	for in, stored := range map[string]string{"--02-29": "0004-02-29", "--12-31": "0004-12-31", "1990-05-17": "1990-05-17", "": ""} {
		b, err := models.ParseBirthday(in, birthdayNow)
		if err != nil {
			t.Fatal(err)
		}
		var text string
		var back models.Birthday
		if err := db.Pool.QueryRow(ctx, `SELECT coalesce(to_char($1::date, 'YYYY-MM-DD'), ''), $1::date`, b).Scan(&text, &back); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if text != stored || back != b {
			t.Errorf("%q is stored as %q and reads back as %q; want %q", in, text, back, stored)
		}
	}
}
