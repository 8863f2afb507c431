package campaigns

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"regexp"
	"strings"
	"testing"

	"github.com/regulars/regulars/models"
)

// A preview is shown in a page, where "cid:" means nothing: its barcodes must be data URIs of
// real PNGs, while the mail itself keeps them as inline parts.
func TestPreviewCarriesBarcodesAsDataURIs(t *testing.T) {
	t.Parallel()
	c, err := Compile(&Campaign{Subject: "s",
		HTML: `<p>{{.Barcode}}</p><p>{{(.Voucher "coffee").Barcode}}</p>`}, testFrom)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Preview(context.Background(), kari(), testLinks)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.HTML, "cid:") {
		t.Errorf("preview still refers to mail parts: %s", out.HTML)
	}
	uris := regexp.MustCompile(`src="data:image/png;base64,([^"]+)"`).FindAllStringSubmatch(out.HTML, -1)
	if len(uris) != 2 {
		t.Fatalf("%d data URIs, want 2 (card and voucher): %s", len(uris), out.HTML)
	}
	for _, u := range uris {
		raw, err := base64.StdEncoding.DecodeString(u[1])
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("not a PNG: %v", err)
		}
		if img.Bounds().Dx() != 400 {
			t.Errorf("barcode width %d, want 400", img.Bounds().Dx())
		}
	}
	msg, err := c.Render(context.Background(), Recipient{To: "kari@example.com", Member: kari(), Links: testLinks, Vouchers: SampleVouchers{}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg.HTML, `src="cid:`+BarcodeCID+`"`) || len(msg.Inline) != 2 {
		t.Errorf("the mail should keep inline parts: %d parts, html %s", len(msg.Inline), msg.HTML)
	}
}

func TestDiscountTextHasThePercentSign(t *testing.T) {
	t.Parallel()
	d := NewMemberData(&models.Member{Name: "Kari Nordmann", Card: "7012345678908"}, nil, 12.5)
	if d.Discount != "12.5" || d.DiscountText != "12.5 %" {
		t.Errorf("Discount %q, DiscountText %q; want 12.5 and \"12.5 %%\"", d.Discount, d.DiscountText)
	}
	if d := NewMemberData(&models.Member{}, nil, 0); d.DiscountText != "" {
		t.Errorf("no discount gives DiscountText %q, want empty", d.DiscountText)
	}
	c, err := Compile(&Campaign{Subject: "{{.Member.DiscountText}} off", Text: "x"}, testFrom)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Preview(context.Background(), SampleMember, testLinks)
	if err != nil {
		t.Fatal(err)
	}
	if out.Subject != "10 % off" {
		t.Errorf("subject %q, want \"10 %% off\"", out.Subject)
	}
}
