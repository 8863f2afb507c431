package dispatch

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCampaignMailsIssueOneVoucherEach: a campaign whose template asks for a voucher of a
// reward issues one to each recipient as it is sent, shows its code in the subject, text and
// HTML (the same code in all three), and attaches its barcode image; a mail that fails and is
// rendered again shows the voucher issued the first time.
func TestCampaignMailsIssueOneVoucherEach(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO rewards (code, name, cost_points, discount_minor) VALUES ('coffee', 'Free coffee', 10, 3500)`); err != nil {
		t.Fatal(err)
	}
	ids := e.addMembers(t, 6, "kari", "example.com", "active", "confirmed")
	id := e.htmlCampaign(t, "Coffee", `<p>{{with .Voucher "coffee"}}{{.Name}}: {{.Code}} until {{.ExpiresAt}} {{.Barcode}}{{end}}</p>`)
	if _, err := e.db.Pool.Exec(ctx, `UPDATE campaigns SET subject = 'Code {{(.Voucher "coffee").Code}}',
		text = 'Your code: {{(.Voucher "coffee").Code}}' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	start(t, []*Dispatcher{e.dispatcher()}, []*Sender{e.sender(t, 2, 0)})
	waitFor(t, "the campaign to be sent", 20*time.Second, func() bool { return e.campaignStatus(t, id) == "sent" })

	codes := map[string]bool{}
	codeRE := regexp.MustCompile(`Code (28\d{11})`)
	for _, m := range e.smtp.Messages() {
		data := strings.ReplaceAll(string(m.Data), "=\r\n", "")
		sub := codeRE.FindStringSubmatch(data)
		if sub == nil {
			t.Fatalf("no voucher code in the subject:\n%s", data)
		}
		code := sub[1]
		codes[code] = true
		for _, want := range []string{"Your code: " + code, "Free coffee: " + code, "cid:voucher-" + code, "voucher-" + code + ".png"} {
			if !strings.Contains(data, want) {
				t.Errorf("mail with voucher %s lacks %q", code, want)
			}
		}
	}
	if len(codes) != len(ids) {
		t.Errorf("%d distinct voucher codes in %d mails, want one per member (%d)", len(codes), len(e.smtp.Messages()), len(ids))
	}
	var n, members int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT member_id) FROM vouchers WHERE issued_by = 'campaign'`).Scan(&n, &members); err != nil {
		t.Fatal(err)
	}
	if n != len(ids) || members != len(ids) {
		t.Errorf("%d vouchers for %d members, want %d for %d", n, members, len(ids), len(ids))
	}
	// Rendering a recipient's mail again (a retry) gives the same voucher.
	q := &PostgresQueue{DB: e.db}
	var runID int64
	if err := e.db.Pool.QueryRow(ctx, `SELECT id FROM campaign_runs WHERE campaign_id = $1`, id).Scan(&runID); err != nil {
		t.Fatal(err)
	}
	a, err := q.Voucher(ctx, nil, runID, ids[0], "coffee")
	if err != nil {
		t.Fatal(err)
	}
	b, err := q.Voucher(ctx, nil, runID, ids[0], "coffee")
	if err != nil || a.Code != b.Code || !codes[a.Code] {
		t.Errorf("again: %+v %+v %v, want the mailed voucher twice", a, b, err)
	}
	if _, err := q.Voucher(ctx, nil, runID, ids[0], "tea"); err == nil || !strings.Contains(err.Error(), "no active reward") {
		t.Errorf("an unknown reward: %v", err)
	}
	if _, err := q.Voucher(ctx, nil, runID, ids[0], ""); err == nil {
		t.Error("a campaign's {{.Voucher}} without a reward gave a voucher")
	}
}
