package campaigns

import "context"

// otherSampleMember differs from sampleMember in every field, so that a link built from member
// data comes out differently for the two (see SampleHTML).
var otherSampleMember = MemberData{FirstName: "Ola", Name: "Ola Hansen", Card: "7098765432103",
	HomeStore: "bergen-2", Tier: "Silver", Discount: "5", DiscountText: "5 %", Language: sampleMember.Language}

// SampleHTML renders c's HTML body for two sample members who differ in every field, with the
// placeholder links of baseURL. A link that is the same in both is the template's own; one that
// differs is built from member data. Click tracking registers only the former, so that no URL
// made for one recipient is ever stored or shown to a marketer. Both are "" without an HTML body.
func (c *Compiled) SampleHTML(ctx context.Context, baseURL string) (a, b string, err error) {
	if c.html == nil {
		return "", "", nil
	}
	links := PlaceholderLinks(baseURL)
	ra, err := c.execute(ctx, sampleMember, links, SampleVouchers{})
	if err != nil {
		return "", "", err
	}
	rb, err := c.execute(ctx, otherSampleMember, links, SampleVouchers{})
	if err != nil {
		return "", "", err
	}
	return ra.HTML, rb.HTML, nil
}
