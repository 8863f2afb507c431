package segments

import (
	"context"
	"encoding/json"
	"testing"
)

func TestNames(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	s, err := Create(ctx, f.db, SavedInput{Name: "Bergen", Rules: json.RawMessage(`{"field": "home_store", "op": "eq", "value": "bergen-1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	names, err := Names(ctx, f.db)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[s.ID] != "Bergen" {
		t.Errorf("names %v, want only %d: Bergen", names, s.ID)
	}
}
