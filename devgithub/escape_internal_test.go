package devgithub

import (
	"encoding/xml"
	"strings"
	"testing"
)

// TestAvatarEscapesText feeds the SVG writer text no login may contain, to
// prove it escapes rather than relies on the route's validation.
func TestAvatarEscapesText(t *testing.T) {
	hostile := `<script>alert("x")</script> & 'q'-"z"`
	var b strings.Builder
	if err := writeAvatar(&b, hostile); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Label string `xml:"aria-label,attr"`
		Title string `xml:"title"`
		Text  string `xml:"text"`
	}
	if err := xml.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatalf("not well-formed: %v\n%s", err, b.String())
	}
	if doc.Label != hostile || doc.Title != hostile {
		t.Errorf("label %q title %q, want the text back unchanged", doc.Label, doc.Title)
	}
	if doc.Text != `<"` {
		t.Errorf("initials %q, want %q", doc.Text, `<"`)
	}
	if strings.Contains(b.String(), "<script") {
		t.Errorf("raw markup in SVG: %s", b.String())
	}
}
