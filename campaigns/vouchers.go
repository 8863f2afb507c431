package campaigns

import (
	"context"
	"errors"
	htmltemplate "html/template"
	"regexp"
	"time"
)

// VoucherData is a voucher as a mail shows it: {{.Voucher.Code}}, {{.Voucher.Name}} (the
// reward's), {{.Voucher.ExpiresAt}} (its last day, YYYY-MM-DD) and {{.Voucher.Barcode}} (in the
// HTML an inline EAN-13 image of the code, in the subject and text the code).
type VoucherData struct {
	Code      string
	Name      string
	ExpiresAt string

	d *Data // the render it was asked for, to attach its barcode image
}

// Barcode is the voucher's barcode: an <img> of an inline image in the HTML body (added to the
// mail only when a template uses it), the code in the subject and text.
func (v *VoucherData) Barcode() any {
	if v.d == nil || !v.d.html {
		return v.Code
	}
	v.d.voucherImages = append(v.d.voucherImages, v.Code)
	return htmltemplate.HTML(`<img src="cid:` + voucherCID(v.Code) + `" width="400" height="160" alt="` +
		htmltemplate.HTMLEscapeString(v.Code) + `">`)
}

func voucherCID(code string) string { return "voucher-" + code }

// VoucherSource gives a mail its vouchers. reward "" asks for the voucher a flow's voucher step
// issued to the member (the latest unused one of the flow); a reward code asks for a voucher of
// that reward issued to this recipient of this run, once however often the mail is rendered
// (a campaign's {{.Voucher "coffee"}}).
type VoucherSource interface {
	Voucher(ctx context.Context, reward string) (*VoucherData, error)
}

// maxVouchersPerMail bounds the different rewards one mail may issue vouchers for: issuing is
// a database write, and a template must not make thousands of them per recipient.
const maxVouchersPerMail = 3

// rewardCodeRE is the form of a reward code (the rewards table's check).
var rewardCodeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// errNoVoucherSource is a render that cannot issue vouchers (a test send to an address that is
// no member).
var errNoVoucherSource = errors.New("this mail cannot carry a voucher")

// Voucher is the member's voucher: {{.Voucher.Code}} in a flow mail after a voucher step, or
// {{(.Voucher "coffee").Code}} to issue one of reward "coffee" to each recipient of a
// campaign as it is sent. The same reward asked twice in one mail is the same voucher.
func (d *Data) Voucher(reward ...string) (*VoucherData, error) {
	key := ""
	switch len(reward) {
	case 0:
	case 1:
		key = reward[0]
		if !rewardCodeRE.MatchString(key) {
			return nil, errors.New("Voucher takes a reward code such as \"coffee\"")
		}
	default:
		return nil, errors.New("Voucher takes at most one reward code")
	}
	if v, ok := d.shared.vouchers[key]; ok {
		return &VoucherData{Code: v.Code, Name: v.Name, ExpiresAt: v.ExpiresAt, d: d}, nil
	}
	if len(d.shared.vouchers) >= maxVouchersPerMail {
		return nil, errors.New("a mail may carry vouchers of at most 3 rewards")
	}
	if d.shared.source == nil {
		return nil, errNoVoucherSource
	}
	v, err := d.shared.source.Voucher(d.budget.ctx, key)
	if err != nil {
		return nil, err
	}
	if d.shared.vouchers == nil {
		d.shared.vouchers = map[string]VoucherData{}
	}
	d.shared.vouchers[key] = *v
	return &VoucherData{Code: v.Code, Name: v.Name, ExpiresAt: v.ExpiresAt, d: d}, nil
}

// renderShared is what the parts of one mail (subject, text, HTML) share: the vouchers asked
// for, so that all three show the same ones.
type renderShared struct {
	source   VoucherSource
	vouchers map[string]VoucherData
}

// SampleVouchers stand in for real ones when a template is checked or previewed.
type SampleVouchers struct{}

// Voucher implements VoucherSource with a made-up voucher of the reward (or "coffee").
func (SampleVouchers) Voucher(_ context.Context, reward string) (*VoucherData, error) {
	name := "Free coffee"
	if reward != "" && reward != "coffee" {
		name = "Reward " + reward
	}
	return &VoucherData{Code: "2800000000011", Name: name,
		ExpiresAt: time.Now().AddDate(0, 1, 0).Format("2006-01-02")}, nil
}
