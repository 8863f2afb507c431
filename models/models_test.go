package models_test

import (
	"context"
	"testing"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// fixture makes a store and returns the database and a register principal for it.
func fixture(t *testing.T) (*models.DB, *models.Principal) {
	t.Helper()
	db := dbtest.New(t)
	ctx := context.Background()
	if _, err := db.CreateStore(ctx, models.StoreInput{Code: "oslo-1", Name: "Oslo", Timezone: "Europe/Oslo", Currency: "NOK"}); err != nil {
		t.Fatal(err)
	}
	token, err := db.CreateAPIKey(ctx, models.RoleRegister, "oslo-1", "till-1")
	if err != nil {
		t.Fatal(err)
	}
	p, err := db.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	return db, p
}
