package auth

import (
	"testing"
	"time"
)

// BenchmarkVerify is the cost of checking one bearer token, paid by every
// command-line stream's connect:
//
//	go test -run '^$' -bench Verify -benchmem ./auth
func BenchmarkVerify(b *testing.B) {
	tok := NewTokens(testSecret, time.Hour)
	s, _, err := tok.Issue(NewSession(User{ID: "583231", Login: "octocat", Name: "The Octocat",
		AvatarURL: "https://avatars.githubusercontent.com/u/583231?v=4"}, time.Now()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tok.Verify(s); err != nil {
			b.Fatal(err)
		}
	}
}
