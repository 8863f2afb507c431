package flows

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/models"
)

// Preview renders mail step step (its index in the flow's Program, as flow_entries.step and
// campaigns.flow_step count) of flow flowID as member memberID would get it, with placeholder
// member links; memberID 0 is a made-up sample member. A step that is not a mail step of the
// saved flow is EINVALID on "step", a member that does not exist EINVALID on "member_id".
func Preview(ctx context.Context, db *models.DB, cfg campaigns.Config, flowID int64, step int, memberID int64) (*campaigns.Rendered, error) {
	if _, err := FindFlowByID(ctx, db, flowID); err != nil {
		return nil, err
	}
	c := &campaigns.Campaign{}
	err := db.Pool.QueryRow(ctx, `SELECT name, subject, html, text FROM campaigns WHERE flow_id = $1 AND flow_step = $2`,
		flowID, step).Scan(&c.Name, &c.Subject, &c.HTML, &c.Text)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &models.Error{Code: models.EINVALID, Message: "invalid preview",
			Fields: map[string]string{"step": "step " + strconv.Itoa(step) + " is not a mail step of the saved flow"}}
	}
	if err != nil {
		return nil, fmt.Errorf("preview flow %d step %d: %w", flowID, step, err)
	}
	from := cfg.DefaultFrom
	if from == "" {
		from = validationFrom
	}
	compiled, err := campaigns.Compile(c, from)
	if err != nil {
		return nil, err
	}
	member := campaigns.SampleMember // memberID 0: the made-up member
	if memberID != 0 {
		if member, err = campaigns.FindMemberData(ctx, db, memberID, "member_id"); err != nil {
			return nil, err
		}
	}
	return compiled.Preview(ctx, member, campaigns.PlaceholderLinks(cfg.BaseURL))
}
