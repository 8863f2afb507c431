package handlers

import (
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/campaigns/feedback"
	"github.com/regulars/regulars/campaigns/providers"
	"github.com/regulars/regulars/campaigns/tracking"
	"github.com/regulars/regulars/models"
)

// bounceWebhook records a bounce reported in the generic format. It is called with a webhook
// (or admin) API token (Authorization: Bearer …); the provider endpoints below check the
// providers' own signatures instead.
func (s *Server) bounceWebhook(c echo.Context) error {
	var in tracking.BounceInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	out, err := feedback.RecordBounce(c.Request().Context(), s.db, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// providerBody reads a webhook's raw body, which signatures are made over (at most
// providers.MaxBody bytes).
func providerBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > providers.MaxBody {
		return nil, models.Errorf(models.ETOOLARGE, "request body is over %d bytes", providers.MaxBody)
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, providers.MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, models.Errorf(models.ETOOLARGE, "request body is over %d bytes", providers.MaxBody)
	}
	return b, err
}

// notConfigured is the answer of a provider endpoint whose secret is not set: 404, naming
// the setting.
func notConfigured(provider, setting string) error {
	return models.Errorf(models.ENOTFOUND, "the %s webhook is not configured: set %s", provider, setting)
}

// recordEvents applies verified events and answers with what changed.
func (s *Server) recordEvents(c echo.Context, events []providers.Event) error {
	out, err := feedback.Record(c.Request().Context(), s.db, events)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// sesWebhook takes Amazon SES notifications through an SNS HTTPS subscription: a subscription
// confirmation is confirmed, a notification applied.
func (s *Server) sesWebhook(c echo.Context) error {
	v := s.providers.SES
	if v == nil {
		return notConfigured("SES", "REGULARS_SES_TOPIC_ARNS")
	}
	body, err := providerBody(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	m, err := v.Verify(ctx, body)
	if err != nil {
		return err
	}
	switch m.Type {
	case providers.SNSSubscribe:
		if err := v.Confirm(ctx, m); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, feedback.Summary{SubscriptionConfirmed: true})
	case providers.SNSNotification:
		events, err := providers.SESEvents(m)
		if err != nil {
			return err
		}
		return s.recordEvents(c, events)
	}
	return c.JSON(http.StatusOK, feedback.Summary{})
}

// sendgridWebhook takes SendGrid's signed Event Webhook.
func (s *Server) sendgridWebhook(c echo.Context) error {
	v := s.providers.SendGrid
	if v == nil {
		return notConfigured("SendGrid", "REGULARS_SENDGRID_WEBHOOK_KEY")
	}
	body, err := providerBody(c)
	if err != nil {
		return err
	}
	h := c.Request().Header
	events, err := v.Events(body, h.Get("X-Twilio-Email-Event-Webhook-Signature"), h.Get("X-Twilio-Email-Event-Webhook-Timestamp"))
	if err != nil {
		return err
	}
	return s.recordEvents(c, events)
}

// mailgunWebhook takes Mailgun's signed webhooks (JSON).
func (s *Server) mailgunWebhook(c echo.Context) error {
	v := s.providers.Mailgun
	if v == nil {
		return notConfigured("Mailgun", "REGULARS_MAILGUN_SIGNING_KEY")
	}
	body, err := providerBody(c)
	if err != nil {
		return err
	}
	events, err := v.Events(body)
	if err != nil {
		return err
	}
	return s.recordEvents(c, events)
}

// postmarkWebhook takes Postmark's bounce and spam complaint webhooks, behind basic auth.
func (s *Server) postmarkWebhook(c echo.Context) error {
	v := s.providers.Postmark
	if v == nil {
		return notConfigured("Postmark", "REGULARS_POSTMARK_WEBHOOK_AUTH")
	}
	body, err := providerBody(c)
	if err != nil {
		return err
	}
	user, pass, ok := c.Request().BasicAuth()
	events, err := v.Events(body, user, pass, ok)
	if err != nil {
		if models.ErrorCode(err) == models.EUNAUTHORIZED {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="regulars webhooks"`)
		}
		return err
	}
	return s.recordEvents(c, events)
}
