package mailer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestHeaderNamesAreCheckedWhateverTheirCase checks the extra header names validate refuses:
// the fields a Message writes itself, in any case, and names that are no field names.
func TestHeaderNamesAreCheckedWhateverTheirCase(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // "" when accepted
	}{
		{"X-Campaign", ""},
		{"List-Unsubscribe", ""},
		{"Message-ID", "is set from the message's own fields"},
		{"content-TYPE", "is set from the message's own fields"},
		{"DKIM-Signature", "is set from the message's own fields"},
		{"Content-Transfer-Encoding", "is set from the message's own fields"},
		{"X-A-Very-Long-Header-Name-Beyond-Thirty-Two-Bytes", ""},
		{"", "is not a valid field name"},
		{"Bad Name", "is not a valid field name"},
		{"Bad:Name", "is not a valid field name"},
		{"Nämn", "is not a valid field name"},
	} {
		m := &Message{From: "shop@example.com", To: []string{"kari@example.com"}, Text: "hi",
			Headers: []Header{{Name: tc.name, Value: "v"}}}
		err := m.validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("header %q: err %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestSetListUnsubscribe(t *testing.T) {
	for _, tc := range []struct {
		targets []string
		want    []Header
	}{
		{[]string{"https://club.example/u?t=1", "mailto:news@shop.example?subject=unsubscribe"}, []Header{
			{"List-Unsubscribe", "<https://club.example/u?t=1>, <mailto:news@shop.example?subject=unsubscribe>"},
			{"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"}}},
		{[]string{"mailto:news@shop.example"}, []Header{{"List-Unsubscribe", "<mailto:news@shop.example>"}}},
		{[]string{"HTTPS://club.example/u"}, []Header{{"List-Unsubscribe", "<HTTPS://club.example/u>"},
			{"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"}}},
		{[]string{"http://club.example/u"}, []Header{{"List-Unsubscribe", "<http://club.example/u>"}}},
		{nil, nil},
	} {
		var m Message
		m.SetListUnsubscribe(tc.targets...)
		if len(m.Headers) != len(tc.want) {
			t.Errorf("%q: headers %q, want %q", tc.targets, m.Headers, tc.want)
			continue
		}
		for i := range tc.want {
			if m.Headers[i] != tc.want[i] {
				t.Errorf("%q: headers %q, want %q", tc.targets, m.Headers, tc.want)
			}
		}
	}
}

// TestFromIsParsedOncePerAddressButNotShared checks the From cache: each message gets its own
// address, and an address that does not parse is refused every time.
func TestFromIsParsedOncePerAddressButNotShared(t *testing.T) {
	a, err := parseFrom("Vinyl shop <news@shop.example>")
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseFrom("Vinyl shop <news@shop.example>")
	if err != nil {
		t.Fatal(err)
	}
	if a == b || *a != *b || a.Name != "Vinyl shop" || a.Address != "news@shop.example" {
		t.Fatalf("parseFrom = %p %+v and %p %+v", a, a, b, b)
	}
	for range 2 {
		m := &Message{From: "not an address", To: []string{"kari@example.com"}, Text: "hi"}
		if _, err := m.build(time.Now(), nil); err == nil || !strings.Contains(err.Error(), "failed to parse mail address") {
			t.Fatalf("build with a bad From: %v", err)
		}
	}
}

func TestDiscardBuildsAndRefusesAsTheOthers(t *testing.T) {
	d := NewDiscard()
	ctx := context.Background()
	ok := &Message{From: "Vinyl shop <news@shop.example>", To: []string{"kari@example.com"}, Subject: "Hi",
		Text: "hi", HTML: "<p>hi</p>", MessageID: "run-1.member-2@shop.example"}
	ok.SetListUnsubscribe("https://club.example/u?t=1")
	if err := d.Send(ctx, ok); err != nil {
		t.Fatalf("send: %v", err)
	}
	bad := &Message{From: "Vinyl shop <news@shop.example>", To: []string{"kari@example.com"}}
	var se *SendError
	if err := d.Send(ctx, bad); !errors.As(err, &se) || !IsPermanent(err) {
		t.Fatalf("send without a body: %v, want a permanent SendError", err)
	}
}
