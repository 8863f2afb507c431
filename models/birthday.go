package models

import (
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Birthday is a member's birthday: a day and a month, and the year when the member gave one.
// Every path that takes a birthday (the join form, the preferences page, POST and PATCH
// /members, the members import) parses it with ParseBirthday, and every answer writes it with
// MarshalText: "--MM-DD" without a year (ISO 8601's form), "YYYY-MM-DD" with one.
//
// Stored form: members.birth_date is a date. A birthday without a year is stored in the year 4
// (0004-MM-DD), the first leap year of the proleptic Gregorian calendar that Go and PostgreSQL
// both use, so that --02-29 can be stored; a full date is stored as it is. The two never meet,
// because a full date is at least 1900. Anything that reads birth_date for its year (an age)
// must take year 4 as "not given"; month and day read the same either way.
//
// The zero Birthday is "none" (NULL in the database, left out of JSON).
type Birthday struct {
	year  int // 0: not given
	month time.Month
	day   int
}

// birthdayNoYear is the year a birthday without a year is stored in (see Birthday).
const birthdayNoYear = 4

// minBirthYear is the earliest year a full birthday may have.
const minBirthYear = 1900

// ParseBirthday reads s as "--MM-DD" or "YYYY-MM-DD" (surrounding spaces ignored). The empty
// string is the zero Birthday: none given. The date must exist (--02-29 does, --02-30 and
// 2023-02-29 do not), and a full date must lie between 1900 and today (now's date, give or take
// the time zones). The error's text says what is wrong, for a field error.
func ParseBirthday(s string, now time.Time) (Birthday, error) {
	b, err := parseBirthday(s)
	if err != nil || b.year == 0 {
		return b, err
	}
	switch {
	case b.year < minBirthYear:
		return Birthday{}, fmt.Errorf("must have a year of %d or later, or no year (--MM-DD)", minBirthYear)
	case b.date().After(now.UTC().Add(14 * time.Hour)): // the calendar date where it is latest (UTC+14)
		return Birthday{}, fmt.Errorf("is in the future")
	}
	return b, nil
}

// parseBirthday is ParseBirthday without the range of years: the format and the calendar.
func parseBirthday(s string) (Birthday, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Birthday{}, nil
	}
	var b Birthday
	var md string
	switch {
	case len(s) == 7 && strings.HasPrefix(s, "--"):
		md = s[2:]
	case len(s) == 10 && s[4] == '-':
		y, ok := digits(s[:4])
		if !ok {
			return Birthday{}, errBirthdayFormat
		}
		b.year, md = y, s[5:]
	default:
		return Birthday{}, errBirthdayFormat
	}
	m, okM := digits(md[:2])
	d, okD := digits(md[3:])
	if !okM || !okD || md[2] != '-' {
		return Birthday{}, errBirthdayFormat
	}
	b.month, b.day = time.Month(m), d
	switch {
	case m < 1 || m > 12:
		return Birthday{}, fmt.Errorf("is not a date: there is no month %d", m)
	case d < 1 || b.date().Day() != d:
		in := b.month.String()
		if b.year != 0 {
			in += " " + strconv.Itoa(b.year)
		}
		return Birthday{}, fmt.Errorf("is not a date: %s has no day %d", in, d)
	}
	return b, nil
}

var errBirthdayFormat = fmt.Errorf("must be --MM-DD (day and month, such as --05-17) or YYYY-MM-DD (such as 1990-05-17)")

// digits reads s when it is ASCII digits only (strconv.Atoi also takes signs).
func digits(s string) (int, bool) {
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// date is b's stored form (see Birthday). time.Date normalises a day past the month's end into
// the next month, which parseBirthday uses to find impossible dates.
func (b Birthday) date() time.Time {
	y := b.year
	if y == 0 {
		y = birthdayNoYear
	}
	return time.Date(y, b.month, b.day, 0, 0, 0, 0, time.UTC)
}

// IsZero reports whether no birthday is given.
func (b Birthday) IsZero() bool { return b.month == 0 }

// Year is the year of birth, or 0 when the member gave only the day and month.
func (b Birthday) Year() int { return b.year }

// Month is the month of the birthday.
func (b Birthday) Month() time.Month { return b.month }

// Day is the day of the month of the birthday.
func (b Birthday) Day() int { return b.day }

// String is "--MM-DD" or "YYYY-MM-DD", or "" for none.
func (b Birthday) String() string {
	switch {
	case b.IsZero():
		return ""
	case b.year == 0:
		return fmt.Sprintf("--%02d-%02d", int(b.month), b.day)
	}
	return fmt.Sprintf("%04d-%02d-%02d", b.year, int(b.month), b.day)
}

// MarshalText writes String; JSON uses it too.
func (b Birthday) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText reads what MarshalText wrote. It checks the format and the calendar, not the
// range of years: that is ParseBirthday's, for input.
func (b *Birthday) UnmarshalText(text []byte) error {
	v, err := parseBirthday(string(text))
	if err != nil {
		return fmt.Errorf("birthday %q %w", text, err)
	}
	*b = v
	return nil
}

// Value stores b as a date (NULL for none); see Birthday for the stored form.
func (b Birthday) Value() (driver.Value, error) {
	if b.IsZero() {
		return nil, nil
	}
	return b.date(), nil
}

// Scan reads a stored date (NULL is none).
func (b *Birthday) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*b = Birthday{}
	case time.Time:
		*b = Birthday{year: v.Year(), month: v.Month(), day: v.Day()}
		if b.year == birthdayNoYear {
			b.year = 0
		}
	default:
		return fmt.Errorf("scan birthday: unexpected %T", src)
	}
	return nil
}
