package main

import (
	"strings"
	"testing"
)

// The shop settings of the starter mails: defaults, and a bad value stops the start naming it.
func TestShopSettings(t *testing.T) {
	c, err := loadConfig(func(k string) string {
		return map[string]string{"REGULARS_MAIL_FROM": "Vinyl & Bønner <club@shop.example>"}[k]
	})
	if err != nil || c.validate() != nil {
		t.Fatalf("defaults: %v %v", err, c.validate())
	}
	if c.Shop.Name != "Vinyl & Bønner" || c.Shop.Color != "#1f5fbf" || c.Shop.LogoURL != "" || c.TimezoneGiven {
		t.Errorf("defaults: %+v, zone given %v", c.Shop, c.TimezoneGiven)
	}
	for env, want := range map[string]string{
		"REGULARS_SHOP_COLOR":    "REGULARS_SHOP_COLOR must be a colour",
		"REGULARS_SHOP_LOGO_URL": "REGULARS_SHOP_LOGO_URL must be an http(s) URL",
		"REGULARS_SHOP_URL":      "REGULARS_SHOP_URL must be an http(s) URL",
		"REGULARS_SHOP_NAME":     "REGULARS_SHOP_NAME must be one line",
	} {
		bad := map[string]string{"REGULARS_SHOP_COLOR": "blue", "REGULARS_SHOP_LOGO_URL": "ftp://x.example/logo.png",
			"REGULARS_SHOP_URL": "shop.example", "REGULARS_SHOP_NAME": "{{.Links.Unsubscribe}}"}[env]
		c, err := loadConfig(func(k string) string {
			if k == env {
				return bad
			}
			return ""
		})
		if err == nil {
			err = c.validate()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=%q: %v, want %q", env, bad, err, want)
		}
	}
	if c, _ := loadConfig(func(k string) string { return map[string]string{"REGULARS_TIMEZONE": "UTC"}[k] }); !c.TimezoneGiven {
		t.Error("REGULARS_TIMEZONE=UTC is not taken as given: serve --demo would replace it")
	}
}
