package main

import (
	"strings"
	"testing"

	"github.com/regulars/regulars/campaigns/providers/providertest"
)

// TestWebhookSettings: the providers' settings are read, and one that cannot be used stops the
// start naming it.
func TestWebhookSettings(t *testing.T) {
	sg, err := providertest.NewSendGrid()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"REGULARS_SES_TOPIC_ARNS":        " arn:aws:sns:eu-west-1:1:a , arn:aws:sns:eu-west-1:1:b,",
		"REGULARS_SENDGRID_WEBHOOK_KEY":  sg.PublicKey,
		"REGULARS_MAILGUN_SIGNING_KEY":   "key-1",
		"REGULARS_POSTMARK_WEBHOOK_AUTH": "postmark:a-long-enough-password",
	}
	c, err := loadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Webhooks; len(w.SESTopicARNs) != 2 || w.SESTopicARNs[1] != "arn:aws:sns:eu-west-1:1:b" ||
		w.SendGridKey != sg.PublicKey || w.MailgunKey != "key-1" || w.PostmarkAuth != "postmark:a-long-enough-password" {
		t.Errorf("webhooks %+v", w)
	}
	for setting, bad := range map[string]string{
		"REGULARS_SENDGRID_WEBHOOK_KEY":  "bm90IGEga2V5",
		"REGULARS_POSTMARK_WEBHOOK_AUTH": "no-colon",
	} {
		_, err := loadConfig(func(k string) string {
			if k == setting {
				return bad
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), setting) {
			t.Errorf("%s=%q: %v", setting, bad, err)
		}
	}
}
