package campaigns

import "testing"

func TestParseMessageID(t *testing.T) {
	run, member, ok := ParseMessageID("<" + MessageID(12, 345, "shop.example") + ">")
	if !ok || run != 12 || member != 345 {
		t.Fatalf("round trip: %d %d %v", run, member, ok)
	}
	for _, id := range []string{"", "club-1.confirm@shop.example", "run-1.member-x@a", "run-0.member-1@a",
		"run-1.member-2", "run--1.member-2@a", "abc@def"} {
		if _, _, ok := ParseMessageID(id); ok {
			t.Errorf("%q parsed", id)
		}
	}
}
