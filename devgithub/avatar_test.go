package devgithub_test

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestAvatar(t *testing.T) {
	rg := newRig(t)
	fill := regexp.MustCompile(`<rect [^>]*fill="(#[0-9a-f]{6})"`)
	colours := map[string]string{}
	for _, tc := range []struct{ login, initials string }{
		{"mary-jane", "MJ"},
		{"Mary-Jane", "MJ"},
		{"alice", "A"},
		{"a-b-c", "AB"},
		{"9lives", "9"},
	} {
		resp, body := rg.get(rg.idpURL + prefix + "/avatars/" + tc.login + ".svg")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", tc.login, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "image/svg+xml" {
			t.Errorf("%s: Content-Type %q", tc.login, ct)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
			t.Errorf("%s: Cache-Control %q", tc.login, cc)
		}
		texts := svgText(t, body)
		if texts["text"] != tc.initials || texts["title"] != tc.login {
			t.Errorf("%s: text %q title %q, want initials %q", tc.login, texts["text"], texts["title"], tc.initials)
		}
		m := fill.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("%s: no background colour in %s", tc.login, body)
		}
		colours[strings.ToLower(tc.login)] = m[1]
	}
	if len(colours) != 4 {
		t.Errorf("colours %v: case variants should share one, others differ", colours)
	}

	for _, bad := range []string{"bad_name.svg", "-x.svg", "x.png", "x", "%3Cscript%3E.svg", strings.Repeat("a", 40) + ".svg"} {
		if resp, _ := rg.get(rg.idpURL + prefix + "/avatars/" + bad); resp.StatusCode != http.StatusNotFound {
			t.Errorf("avatar %q: %d, want 404", bad, resp.StatusCode)
		}
	}
}

// svgText checks that doc is well-formed XML and returns the character
// data of each element by name.
func svgText(t *testing.T, doc string) map[string]string {
	t.Helper()
	texts := map[string]string{}
	dec := xml.NewDecoder(strings.NewReader(doc))
	var open string
	for range 1000 {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return texts
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			open = tok.Name.Local
		case xml.CharData:
			texts[open] += string(tok)
		case xml.EndElement:
			open = ""
		}
	}
	t.Fatalf("SVG has too many tokens: %s", doc)
	return nil
}
