// Package feedback applies what mail providers report about sent mail (bounces and spam
// complaints, read by campaigns/providers or posted to the generic webhook) through
// campaigns/tracking, and pauses a campaign or flow whose mail bounces or is complained about
// too often (autopause.go). It sits above the dispatcher and the flows because it pauses both.
package feedback

import (
	"context"
	"fmt"

	"github.com/regulars/regulars/campaigns/providers"
	"github.com/regulars/regulars/campaigns/tracking"
	"github.com/regulars/regulars/models"
)

// Summary is what a provider's request changed.
type Summary struct {
	// Events is the number of bounces and complaints the request held (other events left out).
	Events int `json:"events"`
	// Applied were recorded now; Duplicates had been before (a repeated delivery); Ignored
	// named no usable address.
	Applied    int `json:"applied"`
	Duplicates int `json:"duplicates"`
	Ignored    int `json:"ignored"`
	// SubscriptionConfirmed: the request was an SNS subscription confirmation, now confirmed.
	SubscriptionConfirmed bool `json:"subscription_confirmed,omitempty"`
}

// Record applies events: a bounce through tracking.RecordBounce, a complaint through
// tracking.RecordComplaint, each once (by its keys), and then checks the auto-pause rule for
// every run whose mail was marked. Each event is its own transaction, so that an error leaves
// the applied ones applied and the provider's retry applies only the rest.
func Record(ctx context.Context, db *models.DB, events []providers.Event) (*Summary, error) {
	s := &Summary{Events: len(events)}
	runs := map[int64]bool{}
	for _, e := range events {
		report := tracking.Report{Source: e.Provider, Keys: e.Keys}
		var runID int64
		var duplicate bool
		var err error
		switch e.Kind {
		case providers.HardBounce, providers.SoftBounce:
			var out *tracking.BounceResult
			out, err = tracking.RecordBounce(ctx, db, tracking.BounceInput{Email: e.Email, Type: string(e.Kind),
				Reason: e.Reason, MessageID: e.MessageID, Report: report})
			if err == nil {
				runID, duplicate = out.RunID, out.Duplicate
			}
		case providers.Complaint:
			var out *tracking.ComplaintResult
			out, err = tracking.RecordComplaint(ctx, db, tracking.ComplaintInput{Email: e.Email,
				MessageID: e.MessageID, Reason: e.Reason, Report: report})
			if err == nil {
				runID, duplicate = out.RunID, out.Duplicate
			}
		default:
			return nil, fmt.Errorf("%s event of kind %q", e.Provider, e.Kind)
		}
		switch {
		case models.ErrorCode(err) == models.EINVALID:
			s.Ignored++ // a signed event without a usable address: nothing to apply
		case err != nil:
			return nil, err
		case duplicate:
			s.Duplicates++
		default:
			s.Applied++
		}
		if runID != 0 {
			runs[runID] = true
		}
	}
	for runID := range runs {
		if _, err := CheckRun(ctx, db, runID); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// RecordBounce is tracking.RecordBounce followed by the auto-pause check of the run whose mail
// it marked: the generic webhook's.
func RecordBounce(ctx context.Context, db *models.DB, in tracking.BounceInput) (*tracking.BounceResult, error) {
	out, err := tracking.RecordBounce(ctx, db, in)
	if err != nil {
		return nil, err
	}
	if out.RunID != 0 {
		if _, err := CheckRun(ctx, db, out.RunID); err != nil {
			return nil, err
		}
	}
	return out, nil
}
