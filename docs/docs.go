// Package docs embeds the documents the console's help pages show (/console/help/<name>), so
// that a marketer reads the formulas of the figures from the server itself.
package docs

import (
	"embed"
	"io/fs"
)

//go:embed metrics.md campaign-stats.md
var files embed.FS

// Help are the documents the console serves, by name: "metrics" is metrics.md.
var Help = []struct{ Name, File, Title string }{
	{"metrics", "metrics.md", "Segment metrics: the formulas"},
	{"campaign-stats", "campaign-stats.md", "Campaign statistics: attribution, holdout and lift"},
}

// Files are the embedded documents.
func Files() fs.FS { return files }
