package devgithub_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/headcount/headcount/devgithub"
)

func TestNewValidatesConfig(t *testing.T) {
	good := func() devgithub.Config {
		return devgithub.Config{
			BaseURL:      "http://localhost:8080",
			Prefix:       "/dev/github",
			ClientID:     "id",
			ClientSecret: "secret",
			CallbackURL:  "http://localhost:8080/auth/github/callback",
			Key:          bytes.Repeat([]byte{7}, 32),
			Render:       func(io.Writer, devgithub.AuthorizePage) error { return nil },
		}
	}
	if _, err := devgithub.New(good()); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	for name, spoil := range map[string]func(*devgithub.Config){
		"relative base URL":  func(c *devgithub.Config) { c.BaseURL = "localhost:8080" },
		"ftp base URL":       func(c *devgithub.Config) { c.BaseURL = "ftp://localhost" },
		"no callback":        func(c *devgithub.Config) { c.CallbackURL = "" },
		"relative callback":  func(c *devgithub.Config) { c.CallbackURL = "/auth/github/callback" },
		"empty prefix":       func(c *devgithub.Config) { c.Prefix = "" },
		"prefix without /":   func(c *devgithub.Config) { c.Prefix = "dev/github" },
		"prefix ending in /": func(c *devgithub.Config) { c.Prefix = "/dev/github/" },
		"unclean prefix":     func(c *devgithub.Config) { c.Prefix = "/dev/../github" },
		"pattern in prefix":  func(c *devgithub.Config) { c.Prefix = "/dev/{x}" },
		"no client id":       func(c *devgithub.Config) { c.ClientID = "" },
		"no secret":          func(c *devgithub.Config) { c.ClientSecret = "" },
		"short key":          func(c *devgithub.Config) { c.Key = c.Key[:31] },
		"no renderer":        func(c *devgithub.Config) { c.Render = nil },
	} {
		cfg := good()
		spoil(&cfg)
		if _, err := devgithub.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestRenderFailureIsNotHalfAPage checks that a template error answers 500
// with no part of the page, rather than a truncated form behind a 200.
func TestRenderFailureIsNotHalfAPage(t *testing.T) {
	cfg := devgithub.Config{
		BaseURL:      "http://localhost:8080",
		Prefix:       "/dev/github",
		ClientID:     "id",
		ClientSecret: "secret",
		CallbackURL:  "http://localhost:8080/cb",
		Key:          bytes.Repeat([]byte{7}, 32),
		Render: func(w io.Writer, _ devgithub.AuthorizePage) error {
			_, _ = io.WriteString(w, "<form>half")
			return errors.New("template broke")
		},
	}
	idp, err := devgithub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(idp)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/dev/github/login/oauth/authorize?client_id=id")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(string(body), "half") {
		t.Errorf("%d %q, want 500 without the partial page", resp.StatusCode, body)
	}
}
