// Package static embeds the CSS, the JS and the vendored htmx files, so the
// binary serves them itself: no CDN, no build step.
package static

import "embed"

// Files holds css/, js/ and vendor/.
//
//go:embed css js vendor
var Files embed.FS
