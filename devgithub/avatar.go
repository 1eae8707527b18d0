package devgithub

import (
	"fmt"
	"hash/fnv"
	"html"
	"io"
	"math"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// serveAvatar draws an avatar for any valid login, so the page shows a
// picture without any request leaving the machine.
func (p *Provider) serveAvatar(w http.ResponseWriter, r *http.Request) {
	login, ok := strings.CutSuffix(r.PathValue("file"), ".svg")
	if !ok || !validLogin(login) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml")
	// The picture is a pure function of the login.
	h.Set("Cache-Control", "public, max-age=86400")
	// An SVG opened on its own is a document; it must never run anything.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("X-Content-Type-Options", "nosniff")
	_ = writeAvatar(w, login)
}

// writeAvatar writes an SVG with up to two initials of label on a
// background colour derived from it. Every piece of label is escaped, so
// the function stays safe even for text that is not a valid login.
func writeAvatar(w io.Writer, label string) error {
	_, err := fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128" viewBox="0 0 128 128" role="img" aria-label="%s">`+
		`<title>%s</title>`+
		`<rect width="128" height="128" fill="%s"/>`+
		`<text x="64" y="64" dy="0.35em" text-anchor="middle" font-family="system-ui, sans-serif" font-size="52" font-weight="600" fill="#ffffff">%s</text>`+
		"</svg>\n",
		html.EscapeString(label), html.EscapeString(label), colour(label), html.EscapeString(initials(label)))
	return err
}

// initials takes the upper-cased first letter of each of the first two
// hyphen-separated parts: "mary-jane" is "MJ", "alice" is "A".
func initials(label string) string {
	var out []rune
	for _, part := range strings.FieldsFunc(label, func(r rune) bool { return r == '-' }) {
		r, _ := utf8.DecodeRuneInString(part)
		out = append(out, unicode.ToUpper(r))
		if len(out) == 2 {
			break
		}
	}
	return string(out)
}

// colour is a mid-dark hue from the label's hash, dark enough for white
// text on it.
func colour(label string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(strings.ToLower(label)))
	hue := float64(h.Sum32() % 360)
	r, g, b := hslToRGB(hue, 0.55, 0.42)
	return fmt.Sprintf("#%02x%02x%02x", r, g, b)
}

func hslToRGB(hue, sat, light float64) (r, g, b uint8) {
	c := (1 - math.Abs(2*light-1)) * sat
	x := c * (1 - math.Abs(math.Mod(hue/60, 2)-1))
	m := light - c/2
	var rf, gf, bf float64
	switch {
	case hue < 60:
		rf, gf, bf = c, x, 0
	case hue < 120:
		rf, gf, bf = x, c, 0
	case hue < 180:
		rf, gf, bf = 0, c, x
	case hue < 240:
		rf, gf, bf = 0, x, c
	case hue < 300:
		rf, gf, bf = x, 0, c
	default:
		rf, gf, bf = c, 0, x
	}
	scale := func(v float64) uint8 { return uint8(math.Round((v + m) * 255)) }
	return scale(rf), scale(gf), scale(bf)
}
