package templates

import (
	"embed"
	"io/fs"
)

//go:embed apidocs
var apiDocsFiles embed.FS

// APIDocs is the API's documentation page, served under /api/docs/: index.html, its script and
// stylesheet, and Swagger UI vendored from npm (apidocs/README.md), so that the page needs
// nothing from the internet.
func APIDocs() fs.FS {
	sub, err := fs.Sub(apiDocsFiles, "apidocs")
	if err != nil {
		panic(err) // the folder is embedded above
	}
	return sub
}
