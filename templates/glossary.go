package templates

// Term is a word of the console a marketer may not know: a one-line explanation beside it
// (a tooltip, the help panels) and the section of the formulas behind it.
type Term struct {
	// Key is the metric's or segment field's name (p_alive, clv_historic), or a word (holdout).
	Key  string
	Name string
	// Short is the one line: what it tells, in the shop's words.
	Short string
	// Doc is the help document (/console/help/<Doc>) and Section the heading there.
	Doc, Section string
}

// Glossary is every explained term, in the order the help page lists them. One home: the
// dashboard's headings, the report's and the help page all read it.
var Glossary = []Term{
	{"p_alive", "P(alive)", "The model's chance that a customer still shops with you, 0–100 %. Below 50 %: probably slipping away.",
		"metrics", "Per-member predictions"},
	{"clv_historic", "CLV historic", "What a customer is worth going by the past: average order value × orders a year × expected years as a customer (1 ÷ churn rate, at most the lifespan cap of 10 years).",
		"metrics", "The figures"},
	{"clv_predicted", "CLV predicted", "What a customer is expected to spend over the next 365 days, by the BG/NBD and Gamma-Gamma models, discounted 1 % a month.",
		"metrics", "Per-member predictions"},
	{"churn_rate", "Churn rate", "Of the customers who bought in the 90 days before the last 90, the share who did not come back in the last 90.",
		"metrics", "The figures"},
	{"repeat_purchase_rate", "Repeat purchase rate", "Of the members who bought in the last 365 days, the share who bought more than once.",
		"metrics", "The figures"},
	{"aov", "AOV", "Average order value: net spend ÷ orders, in the last 365 days.", "metrics", "The figures"},
	{"rfm", "RFM segments", "Members named by how recently (R) and how often (F) they bought: Champions and Loyal buy often and lately; Potential loyalists and New are recent; At risk and Can't lose used to buy often but not lately; Hibernating and Lost have gone quiet.",
		"metrics", "RFM"},
	{"lifespan_cap", "Lifespan cap", "Where hardly anyone churns, 1 ÷ churn rate would be decades: the expected years as a customer stop at the cap (10 years), so such a segment's historic CLV is large by construction.",
		"metrics", "The figures"},
	{"holdout", "Holdout", "Members of the segment drawn at random and not mailed, so that what the mailed members bought can be compared with what they would have bought anyway.",
		"campaign-stats", "Holdout lift"},
	{"lift", "Lift", "How much more each mailed member spent than each held-out member in the days after the mail, with a 95 % interval: an interval above zero means the mail made a difference.",
		"campaign-stats", "Holdout lift"},
	{"gross_margin", "Gross margin", "What the purchases earned over the cost of the goods: their receipt lines' revenue minus the catalogue's cost, counted only over the lines whose cost the catalogue knows (the others are left out, never taken as free).",
		"campaign-stats", "Gross margin"},
}

// Explain is the one line of term key ("" when there is none).
func Explain(key string) string {
	for _, t := range Glossary {
		if t.Key == key {
			return t.Short
		}
	}
	return ""
}

func init() {
	ConsoleFuncs["explain"] = Explain
	ConsoleFuncs["termName"] = func(key string) string {
		for _, t := range Glossary {
			if t.Key == key {
				return t.Name
			}
		}
		return key
	}
	ConsoleFuncs["terms"] = func(keys ...string) []string { return keys }
}
