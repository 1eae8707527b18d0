// Package static holds the files headcount serves under /static/: the style
// sheet, the page script and the icon. They are embedded into the binary so
// the service needs no files beside it at run time.
package static

import "embed"

// FS holds style.css, app.js and favicon.svg, each at the root of the file
// system, for the handlers to serve and fingerprint.
//
//go:embed style.css app.js favicon.svg
var FS embed.FS
