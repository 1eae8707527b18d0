package identity

import (
	"io"
	"net"
	"strings"
	"testing"

	"github.com/headcount/headcount/config"
	"github.com/headcount/headcount/devgithub"
)

func TestLoopbackAddr(t *testing.T) {
	for _, tc := range []struct {
		ip   net.IP
		want string
	}{
		{net.IPv4(127, 0, 0, 2), "127.0.0.2:8080"},
		{net.IPv6loopback, "[::1]:8080"},
		{net.IPv4zero, "127.0.0.1:8080"},
		{net.IPv6unspecified, "[::1]:8080"},
	} {
		if got := loopbackAddr(&net.TCPAddr{IP: tc.ip, Port: 8080}); got != tc.want {
			t.Errorf("loopbackAddr(%v) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}

// TestNew checks both providers: GitHub's endpoints as configured, and in
// dev sign-in mode the dev provider's, reached over loopback for the
// server-to-server calls while the browser goes to the public URL.
func TestNew(t *testing.T) {
	mount := Mount{
		PublicURL:          "http://localhost:8080",
		CallbackURL:        "http://localhost:8080/auth/github/callback",
		Listening:          &net.TCPAddr{IP: net.IPv4zero, Port: 8080},
		DevPrefix:          "/dev/github",
		RenderDevAuthorize: func(io.Writer, devgithub.AuthorizePage) error { return nil },
	}
	gh, err := config.Load(func(k string) string {
		return map[string]string{"GITHUB_KEY": "id", "GITHUB_SECRET": "secret", "HEADCOUNT_SESSION_SECRET": strings.Repeat("s", 32),
			"GITHUB_PROFILE_URL": "http://ghe.example/api/v3/user"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	id, err := New(gh, mount)
	if err != nil {
		t.Fatal(err)
	}
	defer id.Close()
	if id.Dev != nil || id.ProfileURL != "http://ghe.example/api/v3/user" || id.Provider.ClientKey != "id" {
		t.Errorf("GitHub mode: dev %v, profile %q, client %q", id.Dev, id.ProfileURL, id.Provider.ClientKey)
	}

	dev, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	id, err = New(dev, mount)
	if err != nil {
		t.Fatal(err)
	}
	defer id.Close()
	if id.Dev == nil || id.ProfileURL != "http://127.0.0.1:8080/dev/github/user" {
		t.Errorf("dev mode: dev %v, profile %q, want the dev provider over loopback", id.Dev, id.ProfileURL)
	}
	sess, err := id.Provider.BeginAuth("state")
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := sess.GetAuthURL(); !strings.HasPrefix(u, "http://localhost:8080/dev/github/") {
		t.Errorf("dev mode: the browser is sent to %q, want the public URL's dev provider", u)
	}

	mount.Listening = nil
	if _, err := New(dev, mount); err == nil {
		t.Error("dev mode without a listening address: no error")
	}
}
